#![allow(clippy::unwrap_used)]
//! Check the raft-side readers against data dirs produced by real etcd.
//!
//! Set `ETCD_DISK_REAL_DIRS` to a `:`-separated list of etcd data dirs (stopped members);
//! without it the test does nothing. The end-to-end crate drives real clusters.

use etcd_disk::entry::{classify, EntryKind};
use etcd_disk::wal::{self, WalTail};
use etcd_disk::{snap, v2store};
use std::collections::BTreeMap;
use std::path::Path;

pub fn check_data_dir(dd: &Path) -> BTreeMap<String, u64> {
    let mut stats = BTreeMap::new();
    let wal_dir = dd.join("member/wal");
    let snap_dir = dd.join("member/snap");
    // 1. every record of every segment, CRC chain across segments
    let scan = wal::scan(&wal_dir).unwrap();
    assert_eq!(scan.tail, WalTail::Clean, "{}", dd.display());
    stats.insert("segments".into(), scan.segments.len() as u64);
    stats.insert("records".into(), scan.records);
    stats.insert("entries".into(), scan.entries);
    stats.insert("commit".into(), scan.hard_state.commit);
    // 2. every entry classifies
    let c0 = wal::read_at(&wal_dir, scan.segments[0].index, 0);
    if let Ok(c) = &c0 {
        let mut r = c.entry_reader();
        for loc in &c.entries {
            let e = r.read(loc).unwrap();
            let k = classify(e.r#type, e.data.as_deref());
            let name = match &k {
                EntryKind::NoOp => "noop".to_string(),
                EntryKind::ConfChange(cc) => format!("confchange_{}", cc.type_name()),
                EntryKind::ConfChangeV2 => "confchange_v2".into(),
                EntryKind::V2(v) if v.is_internal() => format!("v2_internal_{}", v.method),
                EntryKind::V2(v) => format!("v2_{}", v.method),
                EntryKind::V3(v) => format!("v3_{}", v.kind.name()),
                EntryKind::Unknown(m) => panic!("entry {} unknown: {m}", e.index),
            };
            if let Some(d) = e.data.as_deref() {
                let legacy = etcd_disk::entry::looks_like_legacy_request(d);
                assert_eq!(
                    legacy,
                    matches!(k, EntryKind::V2(_)),
                    "cheap rule disagrees at {}",
                    e.index
                );
            }
            *stats.entry(name).or_default() += 1;
        }
    }
    // 3. snapshot selection as etcd does at startup
    let valid = scan.valid_snapshots();
    stats.insert("wal_snapshot_records".into(), scan.snapshots.len() as u64);
    stats.insert(
        "snap_files".into(),
        snap::list_snaps(&snap_dir).unwrap().len() as u64,
    );
    if let Some((info, s)) = snap::load_newest_available(&snap_dir, &valid).unwrap() {
        stats.insert("snap_index".into(), s.metadata.index);
        let st = v2store::parse_store_of(&info.path, s.data.as_deref().unwrap_or(&[])).unwrap();
        stats.insert("v2_user_entries".into(), st.user_entries().len() as u64);
        stats.insert("v2_members".into(), st.members().len() as u64);
        stats.insert("meta_store_only".into(), u64::from(st.is_meta_store_only()));
        let c = wal::read_at(&wal_dir, s.metadata.index, s.metadata.term).unwrap();
        c.require_snapshot().unwrap();
        stats.insert("entries_after_snap".into(), c.entries.len() as u64);
    }
    stats
}

#[test]
fn real_data_dirs() {
    let Ok(dirs) = std::env::var("ETCD_DISK_REAL_DIRS") else {
        return;
    };
    for d in dirs.split(':').filter(|d| !d.is_empty()) {
        let s = check_data_dir(Path::new(d));
        println!("{d}: {s:?}");
    }
}
