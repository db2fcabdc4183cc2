//! etcd-disk's raft-side readers (WAL, entries, `.snap`, v2 store, membership math) on data
//! dirs written by real 3-member etcd 3.4.23 and 3.5.1 clusters: v2 keys and dirs, v3
//! puts/overwrites, a deleted key, a lease, a txn, more than 64 MB of entries (a second WAL
//! segment) and `--snapshot-count=100` (several `.snap` files). After the cluster stops, every
//! WAL record of every member is read with the CRC chain, every entry is classified, the
//! selected snapshot's v2 store lists the keys written, and every member's `db` holds exactly
//! what etcd served.
#![allow(clippy::unwrap_used)]

mod disk_common;

use disk_common::{assert_db_matches, populate, served, Sizes, Written};
use etcd_disk::entry::{classify, looks_like_legacy_request, EntryKind, V3Kind};
use etcd_disk::proto::record_type as rt;
use etcd_disk::wal::{self, RecordReader, WalTail, SEGMENT_SIZE_BYTES};
use etcd_disk::{membership, snap, v2store};
use etcd_rescue_tests::{Cluster, ClusterOpts, Version};
use std::collections::BTreeMap;
use std::time::Instant;

/// What one member's data dir holds, for the cross-member checks and the log.
#[derive(Debug)]
struct MemberFacts {
    node_id: u64,
    cluster_id: u64,
    kinds: BTreeMap<String, u64>,
    segments: usize,
    records: u64,
    snap_files: usize,
    snap_index: u64,
}

fn kind_name(k: &EntryKind) -> String {
    match k {
        EntryKind::NoOp => "noop".into(),
        EntryKind::ConfChange(cc) => format!("confchange_{}", cc.type_name()),
        EntryKind::ConfChangeV2 => "confchange_v2".into(),
        EntryKind::V2(v) if v.is_internal() => format!("v2_internal_{}", v.method),
        EntryKind::V2(v) => format!("v2_{}", v.method),
        EntryKind::V3(v) => format!("v3_{}", v.kind.name()),
        EntryKind::Unknown(m) => format!("unknown: {m}"),
    }
}

fn check_member(
    c: &Cluster,
    i: usize,
    w: &Written,
    served_keys: &BTreeMap<Vec<u8>, disk_common::Kv>,
) -> MemberFacts {
    let m = &c.members[i];
    let dd = &m.data_dir;
    let wal_dir = dd.join("member/wal");
    let snap_dir = dd.join("member/snap");

    // 1. Every record of every segment; the CRC chain across segments (the reader checks
    //    each crc record against the running CRC; here we also see it carried over).
    let scan = wal::scan(&wal_dir).unwrap();
    assert_eq!(scan.tail, WalTail::Clean, "{}", wal_dir.display());
    assert!(
        scan.segments.len() >= 2,
        "{}: want a second WAL segment, got {:?}",
        m.name,
        scan.segments
    );
    assert_eq!(scan.segments[0].index, 0);
    for s in &scan.segments[..scan.segments.len() - 1] {
        let len = std::fs::metadata(&s.path).unwrap().len();
        assert!(
            len >= SEGMENT_SIZE_BYTES,
            "closed segment {} is {len} bytes",
            s.path.display()
        );
    }
    let mut r = RecordReader::new(scan.segments.clone());
    let (mut records, mut crc_records, mut seen_segment) = (0u64, 0u64, usize::MAX);
    loop {
        let before = r.crc();
        let Some(rec) = r.next_record().unwrap() else {
            break;
        };
        records += 1;
        if rec.segment != seen_segment {
            // Every segment opens with a crc record holding the previous segment's last CRC.
            assert_eq!(
                rec.rtype,
                rt::CRC,
                "{}: first record of segment {}",
                m.name,
                rec.segment
            );
            assert_eq!(rec.offset, 0);
            if rec.segment > 0 {
                assert_eq!(
                    rec.crc, before,
                    "{}: crc carried into segment {}",
                    m.name, rec.segment
                );
                assert_ne!(before, 0);
            }
            seen_segment = rec.segment;
        }
        if rec.rtype == rt::CRC {
            crc_records += 1;
        }
    }
    assert_eq!(r.tail(), Some(&WalTail::Clean));
    assert_eq!(records, scan.records);
    assert_eq!(crc_records, scan.segments.len() as u64);
    assert_eq!(r.crc(), scan.last_crc);

    // 2. The whole log as ReadAll at snapshot {0,0} sees it; every entry classifies.
    let all = wal::read_at(&wal_dir, 0, 0).unwrap();
    all.require_snapshot().unwrap();
    assert_eq!(all.records, scan.records);
    assert_eq!(all.last_crc, scan.last_crc);
    assert_eq!(all.hard_state, scan.hard_state);
    assert_eq!(all.entries.first().map(|e| e.index), Some(1));
    assert_eq!(all.entries.last().map(|e| e.index), scan.last_entry_index);
    for (n, e) in all.entries.iter().enumerate() {
        assert_eq!(e.index, n as u64 + 1, "entries contiguous");
    }
    assert!(scan.hard_state.commit <= scan.last_entry_index.unwrap());
    let md = scan.metadata.clone().expect("wal metadata");
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut put_keys: Vec<Vec<u8>> = Vec::new();
    let mut reader = all.entry_reader();
    let mut buf = Vec::new();
    for loc in &all.entries {
        let has = reader.read_data(loc, &mut buf).unwrap();
        let data = has.then_some(buf.as_slice());
        let k = classify(loc.etype, data);
        if let EntryKind::Unknown(msg) = &k {
            panic!("{}: entry {} unknown: {msg}", m.name, loc.index);
        }
        if let Some(d) = data.filter(|d| !d.is_empty()) {
            assert_eq!(
                looks_like_legacy_request(d),
                matches!(k, EntryKind::V2(ref v) if !v.embedded),
                "{}: cheap rule disagrees at {}",
                m.name,
                loc.index
            );
        }
        if let EntryKind::V3(v) = &k {
            if let V3Kind::Put { key } = &v.kind {
                put_keys.push(key.clone());
            }
            if let V3Kind::LeaseGrant { id, ttl } = &v.kind {
                assert_eq!((*id, *ttl), (w.lease, 3600));
            }
        }
        if let EntryKind::ConfChange(cc) = &k {
            // Bootstrap conf changes: AddNode of each member, context = the member JSON.
            assert_eq!(cc.change_type, 0);
            let ctx = cc.context_json().expect("member JSON context");
            let urls: Vec<String> = ctx["peerURLs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap().to_string())
                .collect();
            assert_eq!(cc.node_id, membership::member_id(&urls, &c.token));
        }
        *kinds.entry(kind_name(&k)).or_default() += 1;
    }
    let get = |k: &str| kinds.get(k).copied().unwrap_or(0);
    assert_eq!(
        get("confchange_AddNode"),
        c.members.len() as u64,
        "{kinds:?}"
    );
    assert!(get("noop") >= 1, "{kinds:?}");
    // v2 writes: 6 PUTs (keys and dirs), 1 overwrite PUT, 1 DELETE.
    assert_eq!(get("v2_PUT"), 7, "{kinds:?}");
    assert_eq!(get("v2_DELETE"), 1, "{kinds:?}");
    assert_eq!(get("v3_lease_grant"), 1, "{kinds:?}");
    assert!(get("v3_txn") >= 1, "{kinds:?}");
    assert_eq!(get("v3_delete_range"), 2, "{kinds:?}");
    assert!(get("v3_put") as usize >= w.v3_puts - 1, "{kinds:?}");
    for k in ["foo", "leased", "one/00001"] {
        assert!(put_keys.iter().any(|p| p == k.as_bytes()), "no put of {k}");
    }

    // 3. Snapshots: several .snap files, all readable; the one etcd would load (newest that a
    //    committed WAL snapshot record names) and the entries after it.
    let snaps = snap::list_snaps(&snap_dir).unwrap();
    assert!(
        snaps.len() >= 2,
        "{}: want several .snap files: {snaps:?}",
        m.name
    );
    for s in &snaps {
        let rs = snap::read_snap(&s.path).unwrap();
        assert_eq!((rs.metadata.term, rs.metadata.index), (s.term, s.index));
        v2store::parse_store_of(&s.path, rs.data.as_deref().unwrap()).unwrap();
    }
    let valid = scan.valid_snapshots();
    let (info, s) = snap::load_newest_available(&snap_dir, &valid)
        .unwrap()
        .expect("a loadable snapshot");
    assert_eq!(
        info.path, snaps[0].path,
        "the newest .snap is the one selected"
    );
    assert!(s.metadata.index >= 100);
    let mut voters = s.metadata.conf_state.voters.clone();
    voters.sort();
    let st = v2store::parse_store_of(&info.path, s.data.as_deref().unwrap()).unwrap();
    assert!(!st.is_meta_store_only());
    let members = st.members();
    assert_eq!(members.len(), c.members.len());
    assert_eq!(members.iter().map(|m| m.id).collect::<Vec<_>>(), voters);
    for cm in &c.members {
        let id = membership::member_id(std::slice::from_ref(&cm.peer_url), &c.token);
        let sm = members
            .iter()
            .find(|x| x.id == id)
            .expect("member in store");
        assert_eq!(sm.peer_urls, vec![cm.peer_url.clone()]);
        assert_eq!(sm.name.as_deref(), Some(cm.name.as_str()));
        assert_eq!(sm.client_urls, vec![cm.client_url.clone()]);
    }
    assert_eq!(
        membership::cluster_id(&voters),
        md.cluster_id,
        "cluster ID from member IDs"
    );
    let user = st.user_entries();
    let find = |p: &str| user.iter().find(|e| e.path == format!("/1{p}"));
    for (k, v) in &w.v2_keys {
        let e = find(k).unwrap_or_else(|| panic!("v2 key {k} missing: {user:?}"));
        assert!(!e.dir);
        assert_eq!(&e.value, v);
        assert!(e.expire_time.is_none());
    }
    for d in &w.v2_dirs {
        assert!(find(d).unwrap_or_else(|| panic!("v2 dir {d} missing")).dir);
    }
    for d in &w.v2_deleted {
        assert!(find(d).is_none(), "deleted v2 key {d} listed");
    }
    assert_eq!(
        user.iter().filter(|e| e.path.starts_with("/1/")).count(),
        w.v2_keys.len() + w.v2_dirs.len()
    );
    let after = wal::read_at(&wal_dir, s.metadata.index, s.metadata.term).unwrap();
    after.require_snapshot().unwrap();
    assert_eq!(after.tail, WalTail::Clean);
    assert!(after.segments.len() <= scan.segments.len());
    assert_eq!(after.last_crc, scan.last_crc);
    if let Some(first) = after.entries.first() {
        assert_eq!(first.index, s.metadata.index + 1);
    }
    assert_eq!(
        after
            .entries
            .last()
            .map(|e| e.index)
            .unwrap_or(s.metadata.index),
        scan.last_entry_index.unwrap()
    );

    // 4. The db holds exactly what etcd served.
    assert_db_matches(&dd.join("member/snap/db"), served_keys);

    MemberFacts {
        node_id: md.node_id,
        cluster_id: md.cluster_id,
        kinds,
        segments: scan.segments.len(),
        records: scan.records,
        snap_files: snaps.len(),
        snap_index: s.metadata.index,
    }
}

async fn raft_side_on_real_data(v: Version) {
    let t0 = Instant::now();
    let mut c = Cluster::start(
        v,
        ClusterOpts {
            members: 3,
            enable_v2: true,
            snapshot_count: Some(100),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let w = populate(
        &c,
        Sizes {
            big: 70,
            medium: 10,
            small_puts: 450,
            small_txn: 300,
            v2: true,
        },
    )
    .await
    .unwrap();
    let want = served(&c, 0).await.unwrap();
    let t_fill = t0.elapsed();
    c.stop_all().await.unwrap();
    let t1 = Instant::now();
    let facts: Vec<MemberFacts> = (0..c.members.len())
        .map(|i| check_member(&c, i, &w, &want))
        .collect();
    let ids: Vec<u64> = facts.iter().map(|f| f.node_id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "distinct node IDs");
    assert!(facts.iter().all(|f| f.cluster_id == facts[0].cluster_id));
    for (m, f) in c.members.iter().zip(&facts) {
        eprintln!(
            "disk_raft {v} {}: {} segments, {} records, {} .snap (loaded {}), entries {:?}",
            m.name, f.segments, f.records, f.snap_files, f.snap_index, f.kinds
        );
    }
    eprintln!(
        "disk_raft {v}: fill {:.1}s, checks {:.1}s",
        t_fill.as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
}

macro_rules! both_versions {
    ($($name:ident),* $(,)?) => {
        etcd_rescue_tests::each_version!($($name),*);
    };
}

both_versions!(raft_side_on_real_data);
