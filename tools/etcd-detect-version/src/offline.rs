//! Offline detection on a data dir (spec §2.5, §4.2, §9): the `.snap` etcd would load, every
//! WAL entry after it, the db in brief, and what etcd 3.6 would say. Read-only, no locks
//! taken (the two lock probes of `datadir` only query), so it is safe while etcd runs.

use crate::{OfflineTarget, OfflineV2};
use etcd_common::{ids, Error, Result};
use etcd_disk::bolt::BoltDb;
use etcd_disk::datadir;
use etcd_disk::v2scan::{self, Class, LogScan};
use etcd_disk::v2store;
use etcd_disk::wal::WalTail;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapInfo {
    pub file: String,
    pub index: u64,
    pub term: u64,
    pub voters: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct WalWrite {
    pub index: u64,
    pub method: String,
    pub key: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct V2Part {
    /// User keys and dirs (under `/1`, and `/2` for v2 auth) in the loaded `.snap`.
    pub keys: u64,
    pub dirs: u64,
    pub examples: Vec<String>,
    /// etcd's `IsMetaStoreOnly` on the `.snap`.
    pub meta_store_only: bool,
    /// User v2 writes in the WAL after the snapshot.
    pub wal_writes: u64,
    pub wal_write_examples: Vec<WalWrite>,
    /// v2 requests after the snapshot that etcd 3.6 would refuse to replay.
    pub wal_requests_rejected_by_36: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct V3Part {
    pub keys: Option<u64>,
    pub revision: Option<i64>,
    pub consistent_index: Option<u64>,
    pub term: Option<u64>,
    /// v3 writes in the WAL above the db's consistent index (applied at the next start).
    pub wal_writes_pending: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MemberInfo {
    pub id: String,
    pub name: Option<String>,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HardStateInfo {
    pub term: u64,
    pub vote: String,
    pub commit: u64,
}

/// What the offline analysis found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub data_dir: String,
    pub wal_dir: String,
    pub etcd_running: bool,
    pub locks: String,
    pub member_id: Option<String>,
    pub cluster_id: Option<String>,
    pub cluster_version: Option<String>,
    pub hard_state: HardStateInfo,
    pub wal_segments: Vec<String>,
    pub wal_records: u64,
    pub wal_first_index: Option<u64>,
    pub wal_last_index: Option<u64>,
    pub wal_tail: String,
    pub snapshot: Option<SnapInfo>,
    pub skipped_snaps: Vec<String>,
    pub entries_after_snapshot: u64,
    pub entries_above_commit: u64,
    pub v2: V2Part,
    pub v3: V3Part,
    pub members: Vec<MemberInfo>,
    /// Member IDs in the db's `members` bucket (after the WAL's membership changes above its
    /// consistent index).
    pub db_members: Vec<String>,
    pub etcd36_reasons: Vec<String>,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

impl Report {
    /// The observations [`crate::verdict`] decides on.
    pub fn decisive(&self) -> OfflineV2 {
        OfflineV2 {
            snap_keys: self.v2.keys,
            snap_dirs: self.v2.dirs,
            snap_file: self.snapshot.as_ref().map(|s| s.file.clone()),
            wal_writes: self.v2.wal_writes,
            first_wal_write: self
                .v2
                .wal_write_examples
                .first()
                .map(|w| (w.index, w.method.clone(), w.key.clone())),
        }
    }
}

/// Analyse a data dir. While etcd runs, a segment may be purged or a `.snap` written under
/// our feet: the scan is retried a few times before giving up.
pub fn analyze(t: &OfflineTarget, examples: usize, count_keys: bool) -> Result<Report> {
    let ins = datadir::inspect(&t.data_dir, t.wal_dir.as_deref())
        .map_err(|e| Error::bad_input(e.to_string()))?;
    if !ins.data_dir_exists {
        return Err(Error::bad_input(format!(
            "{}: no such data dir",
            t.data_dir.display()
        )));
    }
    if !ins.is_etcd() || ins.wal_segments.is_empty() {
        return Err(Error::bad_input(format!(
            "{}: not an etcd data dir (no WAL segments in {})",
            t.data_dir.display(),
            ins.layout.wal_dir.display()
        )));
    }
    let locks = datadir::probe_locks(&ins).ok();
    let running = locks.as_ref().is_some_and(|l| l.held());
    let mut attempt = 0;
    loop {
        attempt += 1;
        match analyze_once(&ins, examples, count_keys) {
            Ok(mut r) => {
                r.etcd_running = running;
                r.locks = locks
                    .as_ref()
                    .map(|l| {
                        if l.held() {
                            l.describe_held()
                        } else {
                            "free".to_string()
                        }
                    })
                    .unwrap_or_default();
                return Ok(r);
            }
            Err(e) if running && attempt < 3 => {
                etcd_common::diag::debug(&format!(
                    "etcd runs on the dir; retrying after: {}",
                    e.message
                ));
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

fn analyze_once(ins: &datadir::Inspection, examples: usize, count_keys: bool) -> Result<Report> {
    let l = &ins.layout;
    let mut r = Report {
        data_dir: l.data_dir.display().to_string(),
        wal_dir: l.wal_dir.display().to_string(),
        ..Default::default()
    };
    let scan = v2scan::scan_log(&l.wal_dir)?;
    if scan.metadata.is_none() {
        // etcd writes a metadata record at the head of every segment it creates; without one
        // (an all-zero or truncated segment) it refuses the WAL ("failed to read WAL").
        return Err(Error::bad_input(format!(
            "{}: the WAL has no metadata record ({} records read): etcd cannot start from it (zeroed or cut short)",
            l.wal_dir.display(),
            scan.records
        )));
    }
    fill_wal(&mut r, &scan);
    let valid = scan.valid_snapshots();
    let choice = v2scan::choose_snap(&l.snap_dir, &valid)?;
    for (p, e) in &choice.skipped {
        r.skipped_snaps.push(e.to_string());
        r.warnings.push(format!(
            "{} does not load ({e}); etcd skips it",
            p.display()
        ));
    }
    let (snap_index, snap_term) = match &choice.loaded {
        Some((info, s)) => {
            r.snapshot = Some(SnapInfo {
                file: info.path.display().to_string(),
                index: s.metadata.index,
                term: s.metadata.term,
                voters: s
                    .metadata
                    .conf_state
                    .voters
                    .iter()
                    .map(|v| ids::hex(*v))
                    .collect(),
            });
            let store = v2store::parse_store_of(&info.path, s.data.as_deref().unwrap_or(&[]))?;
            let users = store.user_entries();
            r.v2.keys = users.iter().filter(|e| !e.dir).count() as u64;
            r.v2.dirs = users.iter().filter(|e| e.dir).count() as u64;
            r.v2.examples = users
                .iter()
                .take(examples)
                .map(|e| {
                    let k = v2scan::user_key(&e.path);
                    if e.dir {
                        format!("{k}/")
                    } else {
                        k
                    }
                })
                .collect();
            r.v2.meta_store_only = store.is_meta_store_only();
            if !r.v2.meta_store_only {
                r.etcd36_reasons.push(format!(
                    "refuses to start: detected disallowed custom content in v2store ({} holds user v2 data)",
                    info.path.display()
                ));
            }
            r.cluster_version = store.cluster_version();
            r.members = store
                .members()
                .into_iter()
                .map(|m| MemberInfo {
                    id: ids::hex(m.id),
                    name: m.name,
                    peer_urls: m.peer_urls,
                    client_urls: m.client_urls,
                    is_learner: m.is_learner,
                })
                .collect();
            (s.metadata.index, s.metadata.term)
        }
        None => {
            r.v2.meta_store_only = true;
            if valid.iter().any(|s| s.index > 0) {
                r.warnings.push(format!(
                    "no .snap in {} matches the WAL's snapshot records: etcd would not start from this dir",
                    l.snap_dir.display()
                ));
            }
            (0, 0)
        }
    };
    let _ = snap_term;
    let after = scan.entries_after(snap_index);
    r.entries_after_snapshot = after.len() as u64;
    r.entries_above_commit = scan
        .entries_after(scan.hard_state.commit.max(snap_index))
        .len() as u64;
    if scan
        .entries
        .first()
        .is_some_and(|e| e.index > snap_index + 1)
    {
        r.warnings.push(format!(
            "the WAL starts at entry {} but the snapshot is at {snap_index}: entries are missing",
            scan.entries.first().map_or(0, |e| e.index)
        ));
    }
    let v2w = scan.v2_after(snap_index);
    let mut rejected = Vec::new();
    for w in v2w {
        if w.user_write {
            r.v2.wal_writes += 1;
            if r.v2.wal_write_examples.len() < examples.max(1) {
                r.v2.wal_write_examples.push(WalWrite {
                    index: w.index,
                    method: w.method.clone(),
                    key: w.key(),
                });
            }
        }
        if w.rejected_by_36 {
            r.v2.wal_requests_rejected_by_36 += 1;
            rejected.push(w);
        }
    }
    if let Some(first) = rejected.first() {
        let syncs = rejected.iter().filter(|w| w.method == "SYNC").count();
        let users = rejected.iter().filter(|w| w.user_write).count();
        let other = rejected.len() - syncs - users;
        let mut parts = vec![format!("{users} user write(s)")];
        if syncs > 0 {
            parts.push(format!("{syncs} SYNC (the leader's TTL expiry)"));
        }
        if other > 0 {
            parts.push(format!("{other} other"));
        }
        r.etcd36_reasons.push(format!(
            "panics replaying the WAL: detected disallowed v2 WAL for stage --v2-deprecation=write-only ({} v2 request(s) after the snapshot: {}; the first at index {}: {} {})",
            rejected.len(),
            parts.join(", "),
            first.index,
            first.method,
            first.key()
        ));
    }
    // The db.
    if ins.db_exists {
        match BoltDb::open(&l.db).and_then(|db| v2scan::db_summary(&db, count_keys)) {
            Ok(d) => {
                r.v3.keys = d.keys;
                r.v3.revision = Some(d.revision);
                r.v3.consistent_index = d.consistent_index;
                r.v3.term = d.term;
                if d.cluster_version.is_some() {
                    r.cluster_version = d.cluster_version.clone();
                }
                let ci = d.consistent_index.unwrap_or(0);
                r.v3.wal_writes_pending = scan
                    .entries_after(ci)
                    .iter()
                    .filter(|e| e.class == Class::V3Write)
                    .count() as u64;
                match BoltDb::open(&l.db).and_then(|db| v2scan::db_membership(&db)) {
                    Ok((db_members, _)) => {
                        let snap_members = r
                            .members
                            .iter()
                            .filter_map(|m| u64::from_str_radix(&m.id, 16).ok())
                            .collect();
                        let v2 = scan.members_after(snap_index, snap_members);
                        let db = scan.members_after(ci, db_members);
                        r.db_members = db.iter().map(|i| ids::hex(*i)).collect();
                        if let Some(reason) = membership_mismatch(&db, &v2) {
                            r.etcd36_reasons.push(reason);
                        }
                    }
                    Err(e) => r
                        .warnings
                        .push(format!("cannot read the db's members bucket: {e}")),
                }
                if !d.has_conf_state {
                    r.notes.push(
                        "the db has no meta/confState (last written by etcd 3.4): etcd 3.6 only warns at startup"
                            .into(),
                    );
                }
            }
            Err(e) => {
                let msg = e.to_string();
                r.v3.error = Some(msg.clone());
                r.warnings.push(format!("cannot read the db: {msg}"));
            }
        }
    } else {
        r.warnings
            .push(format!("{} does not exist", l.db.display()));
    }
    Ok(r)
}

/// Why etcd 3.6 would have trouble when the db's membership (`members` bucket, with the WAL's
/// membership changes above the db's consistent index) differs from the v2 store's (the
/// `.snap`, with the WAL's changes above the snapshot): 3.6 takes the db as the source of truth
/// and brings back members that are gone (etcd-io/etcd#20967). Both sets are what etcd would
/// hold after replaying the WAL.
pub fn membership_mismatch(
    db: &std::collections::BTreeSet<u64>,
    v2: &std::collections::BTreeSet<u64>,
) -> Option<String> {
    if db == v2 {
        return None;
    }
    let list = |s: Vec<&u64>| {
        s.into_iter()
            .map(|i| ids::hex(*i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let extra: Vec<&u64> = db.difference(v2).collect();
    let missing: Vec<&u64> = v2.difference(db).collect();
    let mut parts = Vec::new();
    if !extra.is_empty() {
        parts.push(format!(
            "{} member(s) only in the db ({})",
            extra.len(),
            list(extra)
        ));
    }
    if !missing.is_empty() {
        parts.push(format!(
            "{} member(s) only in the v2 store/WAL ({})",
            missing.len(),
            list(missing)
        ));
    }
    Some(format!(
        "takes the db's members bucket as the membership, and it differs from the v2 store/WAL membership etcd 3.4/3.5 use: {} (zombie members come back, etcd-io/etcd#20967)",
        parts.join("; ")
    ))
}

fn fill_wal(r: &mut Report, scan: &LogScan) {
    r.member_id = scan.metadata.as_ref().map(|m| ids::hex(m.node_id));
    r.cluster_id = scan.metadata.as_ref().map(|m| ids::hex(m.cluster_id));
    r.hard_state = HardStateInfo {
        term: scan.hard_state.term,
        vote: ids::hex(scan.hard_state.vote),
        commit: scan.hard_state.commit,
    };
    r.wal_segments = scan
        .segments
        .iter()
        .map(|s| s.path.display().to_string())
        .collect();
    r.wal_records = scan.records;
    r.wal_first_index = scan.entries.first().map(|e| e.index);
    r.wal_last_index = scan.last_index();
    r.wal_tail = match &scan.tail {
        WalTail::Clean => "clean".into(),
        WalTail::Torn {
            path,
            offset,
            reason,
        } => format!("torn at {}: offset {offset}: {reason}", path.display()),
    };
}
