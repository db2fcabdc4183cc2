//! etcd-disk's bbolt reader, `snapshot status` and writer against real etcd 3.4.23 and 3.5.1.
//!
//! Per version, a one-member cluster gets puts, overwrites, deletes, a lease, a txn, values of
//! 5-9 KiB and 1 MB (overflow pages) and ~2,300 keys (multi-level trees); `snapshot save`.
//! Then, with etcd stopped: every key of the raw `db` and of the snapshot file equals what etcd
//! served; our `status` equals `etcdctl snapshot status -w json` (3.4) / `etcdutl` (3.5) on both
//! files. The db is rewritten by `bolt::rewrite` (identity; then with a harmless edit, a
//! `members_removed` entry put and deleted again, `meta/consistent_index` re-put unchanged),
//! etcd is started on it each time and must serve every key unchanged and accept a new write,
//! and etcd's `snapshot status` must accept the file with the same hash/revision/key count.
//! The same for `bolt::patch` (copy-on-write, what restore uses) with content-neutral puts.
#![allow(clippy::unwrap_used)]

mod disk_common;

use disk_common::{assert_db_matches, populate, served, Sizes};
use etcd_disk::bolt::{self, BoltDb, Edits};
use etcd_disk::snapshot;
use etcd_rescue_tests::{Cluster, ClusterOpts, Version};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// `snapshot status -w json` by etcd's own tool of this version (etcdctl for 3.4, etcdutl for
/// 3.5; a missing binary fails the test).
fn etcd_status(c: &Cluster, f: &Path) -> Value {
    let mut cmd = match c.version {
        Version::V34 => c.etcdctl(0),
        _ => c.etcdutl().unwrap(),
    };
    let out = cmd
        .args(["snapshot", "status", "-w", "json"])
        .arg(f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "snapshot status {}: {}",
        f.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn our_status(f: &Path) -> Value {
    let (s, _) = snapshot::status_of(f).unwrap();
    serde_json::from_str(&s.etcdctl.to_json()).unwrap()
}

fn without_size(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("totalSize");
    }
    v
}

async fn bolt_side_on_real_data(v: Version) {
    let t0 = Instant::now();
    let mut c = Cluster::start(v, ClusterOpts::members(1)).await.unwrap();
    populate(
        &c,
        Sizes {
            big: 4,
            medium: 40,
            small_puts: 40,
            small_txn: 2000,
            v2: false,
        },
    )
    .await
    .unwrap();
    let snap = c.dir.join("saved.db");
    let out = c
        .etcdctl(0)
        .args(["snapshot", "save"])
        .arg(&snap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "snapshot save: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = served(&c, 0).await.unwrap();
    assert!(before.len() > 1500, "populate wrote {} keys", before.len());
    c.stop_all().await.unwrap();
    let t_fill = t0.elapsed();

    // Every key, on the raw db and on the snapshot file.
    let db_path = c.members[0].data_dir.join("member/snap/db");
    assert_db_matches(&db_path, &before);
    assert_db_matches(&snap, &before);

    // status equals etcd's on the snapshot file and on the raw db.
    for f in [&snap, &db_path] {
        assert_eq!(
            our_status(f),
            etcd_status(&c, f),
            "status of {}",
            f.display()
        );
    }
    assert!(snapshot::verify_trailer(&snap).unwrap().unwrap().matches());
    assert!(snapshot::verify_trailer(&db_path).unwrap().is_none());
    let orig = our_status(&db_path);
    let (st, _) = snapshot::status_of(&db_path).unwrap();
    assert!(
        st.members.iter().any(|m| m.name == "m0"),
        "{:?}",
        st.members
    );
    assert!(st.consistent_index.unwrap_or(0) > 0);
    assert_eq!(st.term.is_some(), !v.is_34());
    assert!(st.tombstones >= 2);
    assert!(bolt::check(&BoltDb::open(&db_path).unwrap())
        .unwrap()
        .is_ok());

    // 1. Identity rewrite: same content, etcd serves every key unchanged.
    {
        let src = BoltDb::open(&db_path).unwrap();
        bolt::rewrite(&src, &Edits::new(), &db_path).unwrap();
    }
    assert_eq!(without_size(our_status(&db_path)), without_size(orig));
    assert_eq!(our_status(&db_path), etcd_status(&c, &db_path));
    c.start_member(0).await.unwrap();
    assert!(
        served(&c, 0).await.unwrap() == before,
        "keys after identity rewrite"
    );
    c.stop_all().await.unwrap();

    // 2. Rewrite with a harmless edit, then a second rewrite undoing it: the content hash is
    //    back to the pre-edit one (etcd 3.5 advanced meta values while it ran in step 1).
    let pre_edit = our_status(&db_path);
    {
        let src = BoltDb::open(&db_path).unwrap();
        let meta = src.bucket(b"meta").unwrap().unwrap();
        let ci = src.get(&meta, b"consistent_index").unwrap().unwrap();
        let mut e = Edits::new();
        e.put(b"members_removed", b"deadbeef", b"removed").unwrap();
        e.put(b"meta", b"consistent_index", &ci).unwrap();
        bolt::rewrite(&src, &e, &db_path).unwrap();
    }
    let (st, _) = snapshot::status_of(&db_path).unwrap();
    assert_eq!(st.members_removed, vec!["00000000deadbeef".to_string()]);
    assert_eq!(our_status(&db_path), etcd_status(&c, &db_path));
    {
        let src = BoltDb::open(&db_path).unwrap();
        let mut e = Edits::new();
        e.delete(b"members_removed", b"deadbeef").unwrap();
        bolt::rewrite(&src, &e, &db_path).unwrap();
    }
    assert_eq!(without_size(our_status(&db_path)), without_size(pre_edit));
    c.start_member(0).await.unwrap();
    assert!(
        served(&c, 0).await.unwrap() == before,
        "keys after edited rewrite"
    );
    // etcd writes into our file (free list rebuilt from our compact layout).
    let mut cl = c.client(0).await.unwrap();
    cl.put("after-rewrite", "ok", None).await.unwrap();
    let r = cl.get("after-rewrite", None).await.unwrap();
    assert_eq!(r.kvs()[0].value(), b"ok");
    c.stop_all().await.unwrap();
    // After etcd wrote to it, both status computations still agree and the file is sound.
    assert_eq!(our_status(&db_path), etcd_status(&c, &db_path));
    assert!(bolt::check(&BoltDb::open(&db_path).unwrap())
        .unwrap()
        .is_ok());
    let mut after = before.clone();
    let now = served_from_db(&db_path);
    assert!(now.contains_key(b"after-rewrite".as_slice()));
    after.insert(
        b"after-rewrite".to_vec(),
        now[b"after-rewrite".as_slice()].clone(),
    );
    assert!(now == after, "db after etcd's write");

    // 3. Copy-on-write patch (what restore uses) with content-neutral edits: the last `key`
    //    entry re-put unchanged (a path copy down the biggest tree) and `meta/consistent_index`
    //    re-put (an inline bucket rebuilt). etcd's status gives the same hash; etcd serves every
    //    key unchanged and writes into the file (its free list rebuilt from the replaced pages).
    let pre_patch = our_status(&db_path);
    {
        let src = BoltDb::open(&db_path).unwrap();
        let kb = src.bucket(b"key").unwrap().unwrap();
        let (k, val, _) = src.last(&kb).unwrap().unwrap();
        let meta = src.bucket(b"meta").unwrap().unwrap();
        let ci = src.get(&meta, b"consistent_index").unwrap().unwrap();
        let mut e = Edits::new();
        e.put(b"key", &k, &val).unwrap();
        e.put(b"meta", b"consistent_index", &ci).unwrap();
        let st = bolt::patch(&src, &e, &db_path).unwrap();
        // one leaf of `key` (not the ~2,300 entries) and `meta` rewritten: a path copy
        assert!(st.elements < 300 && st.pages > src.meta().pgid, "{st:?}");
    }
    let report = bolt::check(&BoltDb::open(&db_path).unwrap()).unwrap();
    assert!(report.is_ok() && report.pages_free > 0, "{report:?}");
    assert_eq!(without_size(our_status(&db_path)), without_size(pre_patch));
    assert_eq!(our_status(&db_path), etcd_status(&c, &db_path));
    c.start_member(0).await.unwrap();
    assert!(served(&c, 0).await.unwrap() == after, "keys after patch");
    let mut cl = c.client(0).await.unwrap();
    cl.put("after-patch", "ok", None).await.unwrap();
    c.stop_all().await.unwrap();
    assert_eq!(our_status(&db_path), etcd_status(&c, &db_path));
    assert!(bolt::check(&BoltDb::open(&db_path).unwrap())
        .unwrap()
        .is_ok());
    let now = served_from_db(&db_path);
    assert!(now.contains_key(b"after-patch".as_slice()));
    after.insert(
        b"after-patch".to_vec(),
        now[b"after-patch".as_slice()].clone(),
    );
    assert!(now == after, "db after etcd's write into the patched file");
    eprintln!(
        "disk_bolt {v}: fill {:.1}s, total {:.1}s",
        t_fill.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

fn served_from_db(p: &Path) -> std::collections::BTreeMap<Vec<u8>, disk_common::Kv> {
    disk_common::db_latest(&BoltDb::open(p).unwrap())
}

macro_rules! both_versions {
    ($($name:ident),* $(,)?) => {
        etcd_rescue_tests::each_version!($($name),*);
    };
}

both_versions!(bolt_side_on_real_data);
