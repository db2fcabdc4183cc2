//! Does a data dir hold v2 data? (spec §4.2, §9): one streaming pass over every WAL segment
//! that keeps a compact summary of each entry (etcd's own `check v2store` reads only the
//! `.snap` and misses v2 writes still in the WAL), the `.snap` etcd would load, and a summary
//! of the v3 db (consistent index, revision, live keys). Read-only; takes no lock.

use crate::bolt::BoltDb;
use crate::entry::{self, EntryKind};
use crate::proto::{entry_type, record_type as rt, HardState, Metadata, RaftSnapshot, WalSnapshot};
use crate::snap::{self, SnapFileInfo};
use crate::wal::{self, decode_entry, RecordReader, Segment, WalTail};
use crate::{DiskError, Result};
use prost::Message;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// What an entry is, compactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    NoOp,
    ConfChange,
    /// A legacy v2 request; the details are in [`LogScan::v2_requests`].
    V2,
    /// A v3 request that changes the store or cluster state.
    V3Write,
    /// A v3 request that changes nothing (range, empty).
    V3Other,
    Unknown,
}

/// One entry of the log, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactEntry {
    pub index: u64,
    pub term: u64,
    pub class: Class,
}

/// A v2 request seen in the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Seen {
    pub index: u64,
    pub method: String,
    /// Store path (`/1/...` for user keys).
    pub path: String,
    /// A write a v2 client made (PUT/POST/DELETE outside the two internal writes; not the
    /// leader's SYNC, nor QGET).
    pub user_write: bool,
    /// etcd 3.6 panics replaying it (every v2 request but the two internal PUTs).
    pub rejected_by_36: bool,
}

impl V2Seen {
    /// The key as a v2 client sees it (`/1/foo` → `/foo`).
    pub fn key(&self) -> String {
        user_key(&self.path)
    }
}

/// `/1/foo` → `/foo`; other paths unchanged.
pub fn user_key(path: &str) -> String {
    match path.strip_prefix("/1") {
        Some("") => "/".into(),
        Some(r) if r.starts_with('/') => r.to_string(),
        _ => path.to_string(),
    }
}

/// A membership change seen in the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfChangeSeen {
    pub index: u64,
    /// `ConfChangeType`: 0 AddNode, 1 RemoveNode, 2 UpdateNode, 3 AddLearnerNode.
    pub change: i32,
    pub node_id: u64,
}

/// The result of one pass over every WAL segment.
#[derive(Debug, Clone)]
pub struct LogScan {
    pub dir: PathBuf,
    pub segments: Vec<Segment>,
    pub metadata: Option<Metadata>,
    pub hard_state: HardState,
    pub snapshots: Vec<WalSnapshot>,
    /// Every entry in index order, raft truncation applied (a repeated index drops the suffix).
    pub entries: Vec<CompactEntry>,
    /// v2 requests other than the two internal PUTs, in index order (truncation applied).
    pub v2_requests: Vec<V2Seen>,
    /// Membership changes (`EntryConfChange`), in index order (truncation applied).
    pub conf_changes: Vec<ConfChangeSeen>,
    pub tail: WalTail,
    pub records: u64,
}

/// Classify an entry cheaply: legacy v2 requests are recognised by their top-level field 5
/// of wire type 0 and then decoded in full (etcd's rule gives the same answer on every entry
/// 3.4/3.5 servers write, spec §3.2); v3 requests are told apart by their top-level fields
/// without copying payloads.
pub fn classify_fast(etype: i32, data: Option<&[u8]>) -> (Class, Option<entry::V2Request>) {
    match etype {
        entry_type::NORMAL => {}
        entry_type::CONF_CHANGE | entry_type::CONF_CHANGE_V2 => return (Class::ConfChange, None),
        _ => return (Class::Unknown, None),
    }
    let d = data.unwrap_or(&[]);
    if d.is_empty() {
        return (Class::NoOp, None);
    }
    let mut legacy = false;
    let mut embedded_v2 = false;
    let mut write = false;
    let mut fields = 0u32;
    let scanned = crate::proto::raw::scan(d, |num, v| {
        fields += 1;
        match (num, v) {
            (5, crate::proto::raw::Value::Varint(_)) => legacy = true,
            (2, _) => embedded_v2 = true,
            // range (3) and the header (100) change nothing; everything else does.
            (3, _) | (100, _) | (1, _) => {}
            _ => write = true,
        }
        Ok(())
    });
    if legacy || embedded_v2 || scanned.is_err() {
        return match entry::classify_normal(d) {
            EntryKind::V2(r) => (Class::V2, Some(r)),
            EntryKind::V3(r) => {
                let c = match r.kind {
                    entry::V3Kind::Range | entry::V3Kind::Empty => Class::V3Other,
                    _ => Class::V3Write,
                };
                (c, None)
            }
            EntryKind::NoOp => (Class::NoOp, None),
            _ => (Class::Unknown, None),
        };
    }
    if write {
        (Class::V3Write, None)
    } else {
        (Class::V3Other, None)
    }
}

/// Read every segment of `dir` once (from the first, as etcd's `ValidSnapshotEntries` does),
/// verifying framing and the CRC chain, and summarise every entry.
pub fn scan_log(dir: &Path) -> Result<LogScan> {
    let segs = wal::list_segments(dir)?;
    if segs.is_empty() {
        return Err(DiskError::layout(dir, "wal: no .wal files"));
    }
    wal::check_contiguous(dir, &segs)?;
    let mut r = RecordReader::new(segs.clone());
    let mut s = LogScan {
        dir: dir.to_path_buf(),
        segments: segs,
        metadata: None,
        hard_state: HardState::default(),
        snapshots: Vec::new(),
        entries: Vec::new(),
        v2_requests: Vec::new(),
        conf_changes: Vec::new(),
        tail: WalTail::Clean,
        records: 0,
    };
    let mut md_raw: Option<Vec<u8>> = None;
    while let Some(rec) = r.next_record()? {
        s.records += 1;
        let data = rec.data.unwrap_or(&[]);
        let (seg, off) = (rec.segment, rec.offset);
        let p = |s: &LogScan| {
            s.segments
                .get(seg)
                .map(|x| x.path.clone())
                .unwrap_or_default()
        };
        match rec.rtype {
            rt::ENTRY => {
                let e = decode_entry(data)
                    .map_err(|m| DiskError::corrupt(p(&s), off, format!("entry: {m}")))?;
                // Raft truncation: an index at or below the last one replaces the suffix.
                if let Some(first) = s.entries.first().map(|x| x.index) {
                    if e.index <= s.entries.last().map_or(0, |x| x.index) {
                        let keep = e.index.saturating_sub(first) as usize;
                        s.entries.truncate(keep);
                        s.v2_requests.retain(|v| v.index < e.index);
                        s.conf_changes.retain(|v| v.index < e.index);
                    } else if e.index != s.entries.last().map_or(0, |x| x.index) + 1 {
                        return Err(DiskError::corrupt(
                            p(&s),
                            off,
                            format!(
                                "wal: entry {} follows entry {}: missing entries",
                                e.index,
                                s.entries.last().map_or(0, |x| x.index)
                            ),
                        ));
                    }
                }
                if e.etype == entry_type::CONF_CHANGE {
                    let cc = crate::proto::ConfChange::decode(e.data.unwrap_or(&[]))
                        .map_err(|m| DiskError::corrupt(p(&s), off, format!("conf change: {m}")))?;
                    s.conf_changes.push(ConfChangeSeen {
                        index: e.index,
                        change: cc.r#type,
                        node_id: cc.node_id,
                    });
                }
                let (class, v2) = classify_fast(e.etype, e.data);
                if let Some(v2) = v2 {
                    if !v2.is_internal() {
                        s.v2_requests.push(V2Seen {
                            index: e.index,
                            user_write: v2.is_user_write(),
                            rejected_by_36: v2.rejected_by_36(),
                            method: v2.method,
                            path: v2.path,
                        });
                    }
                }
                s.entries.push(CompactEntry {
                    index: e.index,
                    term: e.term,
                    class,
                });
            }
            rt::STATE => {
                s.hard_state = HardState::decode(data)
                    .map_err(|e| DiskError::corrupt(p(&s), off, format!("state: {e}")))?;
            }
            rt::METADATA => match &md_raw {
                Some(m) if m.as_slice() != data => {
                    return Err(DiskError::corrupt(
                        p(&s),
                        off,
                        "wal: conflicting metadata found",
                    ))
                }
                Some(_) => {}
                None => {
                    s.metadata =
                        Some(Metadata::decode(data).map_err(|e| {
                            DiskError::corrupt(p(&s), off, format!("metadata: {e}"))
                        })?);
                    md_raw = Some(data.to_vec());
                }
            },
            rt::SNAPSHOT => {
                s.snapshots.push(WalSnapshot::decode(data).map_err(|e| {
                    DiskError::corrupt(p(&s), off, format!("snapshot record: {e}"))
                })?);
            }
            _ => {}
        }
    }
    s.tail = r.tail().cloned().unwrap_or(WalTail::Clean);
    Ok(s)
}

impl LogScan {
    /// Snapshot records with `index <= HardState.commit` (etcd's `ValidSnapshotEntries`).
    pub fn valid_snapshots(&self) -> Vec<WalSnapshot> {
        self.snapshots
            .iter()
            .filter(|s| s.index <= self.hard_state.commit)
            .cloned()
            .collect()
    }
    /// Entries after `index`.
    pub fn entries_after(&self, index: u64) -> &[CompactEntry] {
        let pos = self.entries.partition_point(|e| e.index <= index);
        self.entries.get(pos..).unwrap_or(&[])
    }
    /// v2 requests after `index`.
    pub fn v2_after(&self, index: u64) -> &[V2Seen] {
        let pos = self.v2_requests.partition_point(|e| e.index <= index);
        self.v2_requests.get(pos..).unwrap_or(&[])
    }
    pub fn last_index(&self) -> Option<u64> {
        self.entries.last().map(|e| e.index)
    }
    /// `members` after applying the WAL's membership changes above `index` to it (what etcd
    /// replays at startup into a store that holds everything up to `index`).
    pub fn members_after(&self, index: u64, mut members: BTreeSet<u64>) -> BTreeSet<u64> {
        for c in self.conf_changes.iter().filter(|c| c.index > index) {
            match c.change {
                0 | 3 => {
                    members.insert(c.node_id);
                }
                1 => {
                    members.remove(&c.node_id);
                }
                _ => {}
            }
        }
        members
    }
}

/// The member IDs in the db's `members` and `members_removed` buckets (keys are lowercase hex
/// IDs; keys that do not parse are skipped).
pub fn db_membership(db: &BoltDb) -> Result<(BTreeSet<u64>, BTreeSet<u64>)> {
    let mut out = (BTreeSet::new(), BTreeSet::new());
    for (name, set) in [
        (&b"members"[..], &mut out.0),
        (&b"members_removed"[..], &mut out.1),
    ] {
        if let Some(b) = db.bucket(name)? {
            let mut c = db.cursor(&b);
            while let Some(item) = c.next()? {
                if let Some(id) = std::str::from_utf8(item.key)
                    .ok()
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                {
                    set.insert(id);
                }
            }
        }
    }
    Ok(out)
}

/// The `.snap` etcd would load at startup (`LoadNewestAvailable` over the valid snapshot
/// records), plus the files that failed to load.
#[derive(Debug)]
pub struct SnapChoice {
    pub loaded: Option<(SnapFileInfo, RaftSnapshot)>,
    pub skipped: Vec<(PathBuf, DiskError)>,
}

/// Choose the `.snap` as etcd's startup does. A missing snap dir means no snapshot.
pub fn choose_snap(snap_dir: &Path, valid: &[WalSnapshot]) -> Result<SnapChoice> {
    if !snap_dir.is_dir() {
        return Ok(SnapChoice {
            loaded: None,
            skipped: Vec::new(),
        });
    }
    let (loaded, skipped) = snap::load_newest_matching(snap_dir, |s| {
        valid
            .iter()
            .any(|w| w.index == s.metadata.index && w.term == s.metadata.term)
    })?;
    Ok(SnapChoice { loaded, skipped })
}

/// What the v3 db holds, in brief.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbSummary {
    pub consistent_index: Option<u64>,
    /// `meta/term` (3.5+).
    pub term: Option<u64>,
    /// `meta/confState` present (a db last written by 3.5+).
    pub has_conf_state: bool,
    /// Highest main revision in `key` (tombstones included), 0 when empty.
    pub revision: i64,
    /// Keys alive at `revision` (`None` when not counted).
    pub keys: Option<u64>,
    pub cluster_version: Option<String>,
    pub page_size: u32,
    pub image_bytes: u64,
}

fn be_u64(v: &[u8]) -> Option<u64> {
    let a: [u8; 8] = v.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(a))
}

/// The user key of an `mvccpb.KeyValue` (field 1), without decoding the rest.
fn kv_key(v: &[u8]) -> Option<&[u8]> {
    let mut out = None;
    let _ = crate::proto::raw::scan(v, |num, val| {
        if let (1, crate::proto::raw::Value::Bytes(_, s)) = (num, val) {
            out = Some(s);
            return Err(String::new()); // stop early
        }
        Ok(())
    });
    out
}

/// Summarise an open db; `count_keys` walks the whole `key` bucket (memory: the set of live
/// user keys).
pub fn db_summary(db: &BoltDb, count_keys: bool) -> Result<DbSummary> {
    let mut s = DbSummary {
        page_size: db.page_size(),
        image_bytes: db.image_size(),
        ..Default::default()
    };
    if let Some(meta) = db.bucket(b"meta")? {
        s.consistent_index = db.get(&meta, b"consistent_index")?.and_then(|v| be_u64(&v));
        s.term = db.get(&meta, b"term")?.and_then(|v| be_u64(&v));
        s.has_conf_state = db.get(&meta, b"confState")?.is_some();
    }
    if let Some(cl) = db.bucket(b"cluster")? {
        s.cluster_version = db
            .get(&cl, b"clusterVersion")?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
    }
    if let Some(kb) = db.bucket(b"key")? {
        if let Some((k, _, _)) = db.last(&kb)? {
            s.revision = be_u64(&k).map_or(0, |r| r as i64);
        }
        if count_keys {
            let mut live: HashSet<Vec<u8>> = HashSet::new();
            let mut c = db.cursor(&kb);
            while let Some(item) = c.next()? {
                let Some(uk) = kv_key(item.value) else {
                    continue;
                };
                if item.key.len() == 18 && item.key.last() == Some(&b't') {
                    live.remove(uk);
                } else if !live.contains(uk) {
                    live.insert(uk.to_vec());
                }
            }
            s.keys = Some(live.len() as u64);
        }
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::{encode, InternalRaftRequest, PutRequest, Request, RequestHeader};

    #[test]
    fn fast_classification_agrees_with_etcds_rule() {
        let v2 = encode(&Request {
            id: 1,
            method: b"PUT".to_vec(),
            path: b"/1/a".to_vec(),
            ..Default::default()
        });
        let (c, r) = classify_fast(0, Some(&v2));
        assert_eq!(c, Class::V2);
        let r = r.unwrap();
        assert!(r.is_user_write());
        let internal = encode(&Request {
            id: 1,
            method: b"PUT".to_vec(),
            path: b"/0/version".to_vec(),
            ..Default::default()
        });
        assert!(classify_fast(0, Some(&internal)).1.unwrap().is_internal());
        let put = encode(&InternalRaftRequest {
            put: Some(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..Default::default()
            }),
            header: Some(RequestHeader {
                id: 3,
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(classify_fast(0, Some(&put)).0, Class::V3Write);
        assert_eq!(classify_fast(0, None).0, Class::NoOp);
        assert_eq!(classify_fast(1, Some(&[1])).0, Class::ConfChange);
        assert_eq!(user_key("/1/a/b"), "/a/b");
        assert_eq!(user_key("/2/users"), "/2/users");
    }

    #[test]
    fn kv_key_reads_field_one() {
        let kv = encode(&crate::proto::KeyValue {
            key: b"abc".to_vec(),
            create_revision: 2,
            mod_revision: 3,
            version: 1,
            value: b"x".to_vec(),
            lease: 0,
        });
        assert_eq!(kv_key(&kv), Some(&b"abc"[..]));
    }
}
