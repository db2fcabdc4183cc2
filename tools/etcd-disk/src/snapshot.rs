//! The v3 snapshot file (spec §6) and `snapshot status` (spec §5.7).
//!
//! A v3 snapshot file is a bbolt image followed by the SHA-256 of that image (32 bytes); the
//! trailer is present exactly when `size % 512 == 32` (the rule etcdctl and etcd's restore use).
//! A raw `member/snap/db` copy has no trailer. Everything here streams with a fixed buffer.
//!
//! [`status`] reproduces `etcdctl snapshot status` (3.4.23) / `etcdutl snapshot status` (3.5.1):
//! the bbolt consistency check, then CRC-32C over every top-level bucket name and its keys and
//! values in order, the revision (main of the last `key` bucket key), the total element count of
//! all top-level buckets, and size = high-water mark × page size. It reads the file once (check
//! and hash in one pass) and also collects facts operators need (members, cluster version,
//! consistent index, term, key-bucket revisions and tombstones).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bolt::{self, BoltDb, ScanEvent};
use crate::error::{DiskError, Result};

/// Length of the SHA-256 trailer.
pub const TRAILER_LEN: u64 = 32;
/// Streaming buffer size.
const BUF: usize = 1 << 20;

/// The presence rule: a trailer exists iff `size % 512 == 32`.
pub fn has_trailer(size: u64) -> bool {
    size % 512 == 32
}

/// Where the bbolt image is inside a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub file_size: u64,
    pub has_trailer: bool,
    /// Bytes of bbolt image (file size, minus 32 with a trailer).
    pub image_len: u64,
}

impl Layout {
    pub fn of_size(file_size: u64) -> Layout {
        let has_trailer = has_trailer(file_size);
        Layout {
            file_size,
            has_trailer,
            image_len: if has_trailer {
                file_size - TRAILER_LEN
            } else {
                file_size
            },
        }
    }
    pub fn of_file(path: &Path) -> Result<Layout> {
        let md = std::fs::metadata(path).map_err(|e| DiskError::io(path, e))?;
        if !md.is_file() {
            return Err(DiskError::layout(path, "not a regular file"));
        }
        Ok(Layout::of_size(md.len()))
    }
}

/// Open the bbolt image of a snapshot file or raw db (trailer excluded).
pub fn open_db(path: impl AsRef<Path>) -> Result<(BoltDb, Layout)> {
    let path = path.as_ref();
    let file = crate::error::open_regular(path)?;
    let md = file.metadata().map_err(|e| DiskError::io(path, e))?;
    let layout = Layout::of_size(md.len());
    let db = BoltDb::from_file(file, path, 0, layout.image_len)?;
    Ok((db, layout))
}

/// Result of comparing the trailer with the image's SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailerCheck {
    pub expected: [u8; 32],
    pub actual: [u8; 32],
}

impl TrailerCheck {
    pub fn matches(&self) -> bool {
        self.expected == self.actual
    }
    /// One line naming both digests in hex (etcd prints them as decimal byte arrays, which no
    /// one can compare with `sha256sum`).
    pub fn etcd_message(&self) -> String {
        format!(
            "sha256 mismatch: the trailer says {}, the data hashes to {}",
            hex(&self.expected),
            hex(&self.actual)
        )
    }
}

/// Hex of a digest.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Stream-hash the image of `path` and compare with its trailer. `Ok(None)` if it has none.
pub fn verify_trailer(path: impl AsRef<Path>) -> Result<Option<TrailerCheck>> {
    let path = path.as_ref();
    let file = crate::error::open_regular(path)?;
    let layout = Layout::of_size(file.metadata().map_err(|e| DiskError::io(path, e))?.len());
    if !layout.has_trailer {
        return Ok(None);
    }
    let actual = sha256_range(&file, path, 0, layout.image_len)?;
    let mut expected = [0u8; 32];
    file.read_exact_at(&mut expected, layout.image_len)
        .map_err(|e| DiskError::io(path, e))?;
    Ok(Some(TrailerCheck { expected, actual }))
}

/// SHA-256 of `len` bytes of `file` from `start`, streamed.
pub fn sha256_range(file: &File, path: &Path, start: u64, len: u64) -> Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut off = start;
    let end = start.saturating_add(len);
    while off < end {
        let n = ((end - off) as usize).min(BUF);
        let chunk = buf.get_mut(..n).unwrap_or_default();
        file.read_exact_at(chunk, off)
            .map_err(|e| DiskError::io(path, e))?;
        h.update(&*chunk);
        off += n as u64;
    }
    Ok(h.finalize().into())
}

/// What [`copy_image`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOutcome {
    /// Bytes read from the source.
    pub bytes_in: u64,
    /// Bytes of image written (trailer excluded).
    pub image_len: u64,
    /// SHA-256 of the image written.
    pub image_sha256: [u8; 32],
    /// The trailer, if the total length followed the presence rule.
    pub trailer: Option<[u8; 32]>,
}

impl CopyOutcome {
    /// `None` without trailer; else whether the trailer matched.
    pub fn trailer_check(&self) -> Option<TrailerCheck> {
        self.trailer.map(|expected| TrailerCheck {
            expected,
            actual: self.image_sha256,
        })
    }
}

/// Copy a snapshot stream (length not known in advance, e.g. a gunzipped `.gz`) to `w`,
/// stripping the trailer when the total length says there is one, hashing the image on the way.
/// The last 32 bytes are held back until EOF decides. `src_name` names the input in errors.
pub fn copy_image<R: Read, W: Write>(
    mut r: R,
    mut w: W,
    src_name: &Path,
    dst_name: &Path,
) -> Result<CopyOutcome> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUF + TRAILER_LEN as usize];
    let mut held = 0usize; // bytes at the start of buf not yet written (≤ 32 after each round)
    let mut total = 0u64;
    let mut written = 0u64;
    loop {
        let n = match r.read(buf.get_mut(held..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DiskError::io(src_name, e)),
        };
        total += n as u64;
        let have = held + n;
        if have > TRAILER_LEN as usize {
            let out = have - TRAILER_LEN as usize;
            let chunk = buf.get(..out).unwrap_or_default();
            h.update(chunk);
            w.write_all(chunk).map_err(|e| DiskError::io(dst_name, e))?;
            written += out as u64;
            buf.copy_within(out..have, 0);
            held = TRAILER_LEN as usize;
        } else {
            held = have;
        }
    }
    let tail = buf.get(..held).unwrap_or_default();
    let trailer = if has_trailer(total) && held == TRAILER_LEN as usize {
        let mut t = [0u8; 32];
        t.copy_from_slice(tail);
        Some(t)
    } else {
        h.update(tail);
        w.write_all(tail).map_err(|e| DiskError::io(dst_name, e))?;
        written += held as u64;
        None
    };
    w.flush().map_err(|e| DiskError::io(dst_name, e))?;
    Ok(CopyOutcome {
        bytes_in: total,
        image_len: written,
        image_sha256: h.finalize().into(),
        trailer,
    })
}

/// etcdctl's `snapshot status -w json` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EtcdctlStatus {
    pub hash: u32,
    pub revision: i64,
    #[serde(rename = "totalKey")]
    pub total_key: u64,
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

impl EtcdctlStatus {
    /// The JSON line etcdctl prints (`{"hash":…,"revision":…,"totalKey":…,"totalSize":…}`).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}",
            self.hash, self.revision, self.total_key, self.total_size
        )
    }
    /// etcdctl's default (simple) output: `16bd5ed1, 8, 12, 20 kB`.
    pub fn simple(&self) -> String {
        format!(
            "{:x}, {}, {}, {}",
            self.hash,
            self.revision,
            self.total_key,
            humanize_bytes(self.total_size)
        )
    }
}

/// go-humanize `Bytes` (SI units), as etcdctl prints sizes.
pub fn humanize_bytes(n: u64) -> String {
    if n < 10 {
        return format!("{n} B");
    }
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let nf = n as f64;
    let e = (nf.ln() / 1000f64.ln()).floor();
    let e = e.clamp(0.0, 6.0);
    let unit = units.get(e as usize).copied().unwrap_or("EB");
    let v = (nf / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// A member recorded in the `members` bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedMember {
    /// 16-digit lowercase hex.
    pub id: String,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// Per-bucket element count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketCount {
    pub name: String,
    pub keys: u64,
}

/// Everything `status` computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// What etcdctl prints.
    pub etcdctl: EtcdctlStatus,
    pub page_size: u32,
    pub txid: u64,
    /// Entries in bucket `key` (one per revision, tombstones included).
    pub key_revisions: u64,
    /// Tombstone entries in bucket `key` (deletions).
    pub tombstones: u64,
    /// Largest `main` revision among tombstones-excluded puts is not tracked; see `etcdctl.revision`.
    pub buckets: Vec<BucketCount>,
    pub members: Vec<RecordedMember>,
    /// Member IDs (hex) in `members_removed`.
    pub members_removed: Vec<String>,
    pub cluster_version: Option<String>,
    pub consistent_index: Option<u64>,
    pub term: Option<u64>,
    pub conf_state: Option<String>,
    pub scheduled_compact_rev: Option<i64>,
    pub finished_compact_rev: Option<i64>,
    /// Pages free inside the image (unreachable below the high-water mark).
    pub free_pages: u64,
}

/// Bound on members parsed (the bucket is tiny in practice).
const MAX_MEMBERS: usize = 10_000;

fn be_u64(v: &[u8]) -> Option<u64> {
    let a: [u8; 8] = v.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(a))
}

/// Run the integrity check and compute the status. A failed check is a
/// [`DiskError::Corrupt`] naming the first offending page and offset.
pub fn status(db: &BoltDb) -> Result<Status> {
    let mut crc = 0u32;
    let mut total_key = 0u64;
    let mut revision = 0i64;
    let mut cur: Vec<u8> = Vec::new();
    let mut key_revisions = 0u64;
    let mut tombstones = 0u64;
    let mut buckets: Vec<BucketCount> = Vec::new();
    let mut members = Vec::new();
    let mut members_removed = Vec::new();
    let mut cluster_version = None;
    let mut consistent_index = None;
    let mut term = None;
    let mut conf_state = None;
    let mut scheduled = None;
    let mut finished = None;
    let report = bolt::scan(db, &mut |ev| {
        match ev {
            ScanEvent::Bucket(name) => {
                crc = crc32c::crc32c_append(crc, name);
                cur.clear();
                cur.extend_from_slice(name);
                if buckets.len() < 10_000 {
                    buckets.push(BucketCount {
                        name: String::from_utf8_lossy(name).into_owned(),
                        keys: 0,
                    });
                }
            }
            ScanEvent::Kv { key, value, .. } => {
                crc = crc32c::crc32c_append(crc, key);
                crc = crc32c::crc32c_append(crc, value);
                total_key += 1;
                if let Some(b) = buckets.last_mut() {
                    b.keys += 1;
                }
                match cur.as_slice() {
                    b"key" => {
                        revision = be_u64(key).unwrap_or(0) as i64;
                        key_revisions += 1;
                        if key.len() == 18 && key.last() == Some(&b't') {
                            tombstones += 1;
                        }
                    }
                    b"meta" => match key {
                        b"consistent_index" => consistent_index = be_u64(value),
                        b"term" => term = be_u64(value),
                        b"confState" => {
                            conf_state = Some(String::from_utf8_lossy(value).into_owned())
                        }
                        b"scheduledCompactRev" => scheduled = be_u64(value).map(|x| x as i64),
                        b"finishedCompactRev" => finished = be_u64(value).map(|x| x as i64),
                        _ => {}
                    },
                    b"cluster" if key == b"clusterVersion" => {
                        cluster_version = Some(String::from_utf8_lossy(value).into_owned())
                    }
                    b"members" if members.len() < MAX_MEMBERS => {
                        members.push(parse_member(key, value))
                    }
                    b"members_removed" if members_removed.len() < MAX_MEMBERS => {
                        members_removed.push(hex_id(key))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    })?;
    if let Some(e) = report.to_error(db) {
        return Err(e);
    }
    Ok(Status {
        etcdctl: EtcdctlStatus {
            hash: crc,
            revision,
            total_key,
            total_size: db.image_size(),
        },
        page_size: db.page_size(),
        txid: db.meta().txid,
        key_revisions,
        tombstones,
        buckets,
        members,
        members_removed,
        cluster_version,
        consistent_index,
        term,
        conf_state,
        scheduled_compact_rev: scheduled,
        finished_compact_rev: finished,
        free_pages: report.pages_free,
    })
}

/// `status` of a snapshot file or raw db path (trailer ignored, as etcdctl does).
pub fn status_of(path: impl AsRef<Path>) -> Result<(Status, Layout)> {
    let (db, layout) = open_db(path)?;
    Ok((status(&db)?, layout))
}

fn hex_id(key: &[u8]) -> String {
    let s = String::from_utf8_lossy(key);
    match u64::from_str_radix(&s, 16) {
        Ok(v) => format!("{v:016x}"),
        Err(_) => s.into_owned(),
    }
}

fn parse_member(key: &[u8], value: &[u8]) -> RecordedMember {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct M {
        name: String,
        #[serde(rename = "peerURLs")]
        peer_urls: Vec<String>,
        #[serde(rename = "clientURLs")]
        client_urls: Vec<String>,
        #[serde(rename = "isLearner")]
        is_learner: bool,
    }
    let m: M = serde_json::from_slice(value).unwrap_or_default();
    RecordedMember {
        id: hex_id(key),
        name: m.name,
        peer_urls: m.peer_urls,
        client_urls: m.client_urls,
        is_learner: m.is_learner,
    }
}

/// The db changes `snapshot restore` makes (spec §7.5, 3.5.1 semantics, which 3.4 servers also
/// accept), optionally with §7.6's revision bump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePlan {
    /// New members: ID and the JSON etcd stores (`{"id":…,"peerURLs":[…],"name":"…"}`).
    pub members: Vec<(u64, String)>,
    /// `meta/consistent_index` (the number of members, N).
    pub consistent_index: u64,
    /// `meta/term` (1).
    pub term: u64,
    /// `--bump-revision X --mark-compacted`.
    pub bump_revision: Option<u64>,
}

/// 17-byte revision key: BE main ‖ `_` ‖ BE sub.
pub fn revision_bytes(main: i64, sub: i64) -> [u8; 17] {
    let mut b = [0u8; 17];
    b[..8].copy_from_slice(&main.to_be_bytes());
    b[8] = b'_';
    b[9..].copy_from_slice(&sub.to_be_bytes());
    b
}

/// Build the [`bolt::Edits`] for a restore: clear `members` and `members_removed`, ensure
/// `cluster`, put the new members (key = lowercase hex ID), set `meta/consistent_index` and
/// `meta/term` (8-byte BE); with a bump, put an empty value at revision (main of the last `key`
/// entry + X, 0) and set `meta/scheduledCompactRev` to it. Returns the edits and the bumped
/// revision. Apply them with [`bolt::patch_into`] (what restore does) or [`bolt::rewrite`]
/// (source = the snapshot image).
pub fn restore_edits(db: &BoltDb, plan: &RestorePlan) -> Result<(bolt::Edits, Option<i64>)> {
    let mut e = bolt::Edits::new();
    e.clear_bucket(b"members")?;
    e.clear_bucket(b"members_removed")?;
    e.create_bucket(b"cluster")?;
    for (id, json) in &plan.members {
        e.put(b"members", format!("{id:x}").as_bytes(), json.as_bytes())?;
    }
    e.put(
        b"meta",
        b"consistent_index",
        &plan.consistent_index.to_be_bytes(),
    )?;
    e.put(b"meta", b"term", &plan.term.to_be_bytes())?;
    // The new members as voters, as the restored .snap's conf_state says (etcd's restore keeps
    // the source cluster's voters here until the next membership change).
    let voters: Vec<u64> = plan.members.iter().map(|(id, _)| *id).collect();
    e.put(
        b"meta",
        b"confState",
        crate::membership::conf_state_json(&voters, &[]).as_bytes(),
    )?;
    let mut bumped = None;
    if let Some(x) = plan.bump_revision {
        let main = match db.bucket(b"key")? {
            Some(kb) => match db.last(&kb)? {
                Some((k, _, _)) => be_u64(&k).unwrap_or(0) as i64,
                None => 0,
            },
            None => 0,
        };
        let x = i64::try_from(x)
            .map_err(|_| DiskError::Invalid(format!("bump revision {x} too large")))?;
        let new = main
            .checked_add(x)
            .ok_or_else(|| DiskError::Invalid(format!("revision {main} + {x} overflows")))?;
        let rev = revision_bytes(new, 0);
        e.put(b"key", &rev, b"")?;
        e.put(b"meta", b"scheduledCompactRev", &rev)?;
        bumped = Some(new);
    }
    Ok((e, bumped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_matches_go_humanize() {
        assert_eq!(humanize_bytes(0), "0 B");
        assert_eq!(humanize_bytes(9), "9 B");
        assert_eq!(humanize_bytes(20480), "20 kB");
        assert_eq!(humanize_bytes(4096), "4.1 kB");
        assert_eq!(humanize_bytes(81_000_000), "81 MB");
        assert_eq!(humanize_bytes(2_711_552), "2.7 MB");
    }

    #[test]
    fn restore_edits_trim_members_and_bump() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("db");
        let mut e = bolt::Edits::new();
        for r in 1..=300i64 {
            e.put(b"key", &revision_bytes(r, 0), b"kv")
                .unwrap_or_else(|e| panic!("{e}"));
        }
        e.put(b"members", b"1234", b"{}")
            .unwrap_or_else(|e| panic!("{e}"));
        e.put(b"members_removed", b"99", b"removed")
            .unwrap_or_else(|e| panic!("{e}"));
        e.put(b"meta", b"consistent_index", &77u64.to_be_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        bolt::create(4096, &e, &p).unwrap_or_else(|e| panic!("{e}"));
        let db = BoltDb::open(&p).unwrap_or_else(|e| panic!("{e}"));
        let plan = RestorePlan {
            members: vec![(
                0xa000429f37de1964,
                r#"{"id":11529288297673005412,"peerURLs":["http://10.0.0.2:2380"],"name":"b"}"#
                    .into(),
            )],
            consistent_index: 1,
            term: 1,
            bump_revision: Some(1000),
        };
        let (edits, bumped) = restore_edits(&db, &plan).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bumped, Some(1300));
        // the compacting rewrite and the copy-on-write patch (what restore uses) agree
        let out = dir.path().join("out");
        bolt::rewrite(&db, &edits, &out).unwrap_or_else(|e| panic!("{e}"));
        let patched = dir.path().join("patched");
        bolt::patch(&db, &edits, &patched).unwrap_or_else(|e| panic!("{e}"));
        for out in [&out, &patched] {
            let (st, _) = status_of(out).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(st.etcdctl.revision, 1300);
            assert_eq!(st.members.len(), 1);
            assert_eq!(st.members[0].id, "a000429f37de1964");
            assert!(st.members_removed.is_empty());
            assert_eq!((st.consistent_index, st.term), (Some(1), Some(1)));
            assert_eq!(
                st.conf_state.as_deref(),
                Some(r#"{"voters":[11529288297673005412],"auto_leave":false}"#)
            );
            assert_eq!(st.scheduled_compact_rev, Some(1300));
            assert_eq!(st.key_revisions, 301);
            assert!(st.buckets.iter().any(|b| b.name == "cluster"));
        }
    }

    #[test]
    fn trailer_rule() {
        assert!(has_trailer(20512));
        assert!(!has_trailer(20480));
        assert_eq!(Layout::of_size(20512).image_len, 20480);
    }

    #[test]
    fn json_shape() {
        let s = EtcdctlStatus {
            hash: 381509329,
            revision: 8,
            total_key: 12,
            total_size: 20480,
        };
        assert_eq!(
            s.to_json(),
            r#"{"hash":381509329,"revision":8,"totalKey":12,"totalSize":20480}"#
        );
        assert_eq!(serde_json::to_string(&s).unwrap_or_default(), s.to_json());
        assert_eq!(s.simple(), "16bd5ed1, 8, 12, 20 kB");
    }

    #[test]
    fn copy_image_strips_and_hashes() {
        let img: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let digest: [u8; 32] = Sha256::digest(&img).into();
        let mut file = img.clone();
        file.extend_from_slice(&digest);
        let mut out = Vec::new();
        // small reads to exercise the hold-back
        let r = std::io::BufReader::with_capacity(7, &file[..]);
        let o = copy_image(r, &mut out, Path::new("in"), Path::new("out"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, img);
        assert_eq!(o.trailer, Some(digest));
        assert!(o.trailer_check().is_some_and(|c| c.matches()));
        // no trailer: everything copied
        let mut out2 = Vec::new();
        let o2 = copy_image(&img[..100], &mut out2, Path::new("in"), Path::new("out"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out2, &img[..100]);
        assert!(o2.trailer.is_none());
    }
}
