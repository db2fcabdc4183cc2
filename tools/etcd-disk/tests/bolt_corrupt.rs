//! Corrupt and truncated inputs give errors (or check problems), never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;

use etcd_disk::bolt::{self, BoltDb, BucketRef, Edits};
use etcd_disk::snapshot;
use proptest::prelude::*;

fn sample_db() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    let mut e = Edits::new();
    for i in 0..600u32 {
        e.put(
            b"key",
            format!("k{i:05}").as_bytes(),
            &vec![b'x'; (i as usize * 37) % 700],
        )
        .unwrap();
    }
    e.put(b"key", b"zbig", &vec![7u8; 9000]).unwrap();
    e.put(b"meta", b"consistent_index", &5u64.to_be_bytes())
        .unwrap();
    e.create_bucket(b"alarm").unwrap();
    bolt::create(4096, &e, &p).unwrap();
    std::fs::read(&p).unwrap()
}

/// Exercise every reading path; returns Err on the first error.
fn exercise(bytes: &[u8]) -> Result<(), etcd_disk::DiskError> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    std::fs::write(&p, bytes).unwrap();
    let db = BoltDb::open(&p)?;
    let _ = bolt::check(&db)?;
    let _ = snapshot::status(&db);
    let mut top = db.buckets();
    let mut refs = Vec::new();
    while let Some(b) = top.next()? {
        if b.is_bucket() {
            refs.push((
                b.key.to_vec(),
                BucketRef::from_value(db.path(), b.value, 0)?,
            ));
        }
    }
    for (name, r) in refs {
        let mut c = db.cursor(&r);
        while c.next()?.is_some() {}
        let _ = db.get(&r, b"k00042")?;
        let _ = db.bucket(&name)?;
        // the writer must refuse or copy, never panic
        let out = dir.path().join("out");
        let _ = bolt::rewrite(&db, &Edits::new(), &out);
        // so must the patch writer's path copy (puts into the one bucket with its own pages)
        if name == b"key" {
            let mut e = Edits::new();
            e.put(&name, b"k00042x", b"v").unwrap();
            e.put(&name, b"zzz", b"v").unwrap();
            let _ = bolt::patch(&db, &e, &out);
        }
    }
    Ok(())
}

#[test]
fn sample_is_good() {
    let b = sample_db();
    exercise(&b).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    std::fs::write(&p, &b).unwrap();
    let db = BoltDb::open(&p).unwrap();
    assert!(bolt::check(&db).unwrap().is_ok());
}

#[test]
fn truncation_is_an_error() {
    let b = sample_db();
    for len in [
        0usize,
        100,
        4095,
        4096,
        8191,
        8192,
        b.len() / 2,
        b.len() - 4096,
        b.len() - 1,
    ] {
        let r = exercise(&b[..len]);
        assert!(r.is_err(), "len {len} accepted");
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("offset"), "{msg}");
    }
}

#[test]
fn flipped_meta_falls_back_then_fails() {
    let b = sample_db();
    let mut c = b.clone();
    // meta txid 1 is on page 1: break it, meta 0 must be used
    c[4096 + 16 + 20] ^= 0xff;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    std::fs::write(&p, &c).unwrap();
    let db = BoltDb::open(&p).unwrap();
    assert_eq!(db.meta_index(), 0);
    assert!(db.metas()[1].error.is_some());
    c[16 + 20] ^= 0xff;
    std::fs::write(&p, &c).unwrap();
    let e = BoltDb::open(&p).unwrap_err().to_string();
    assert!(e.contains("both meta pages invalid"), "{e}");
}

#[test]
fn check_reports_page_and_offset() {
    let b = sample_db();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    let db = {
        std::fs::write(&p, &b).unwrap();
        BoltDb::open(&p).unwrap()
    };
    // find a leaf of "key" and break its type
    let kb = db.bucket(b"key").unwrap().unwrap();
    let root = kb.root;
    drop(db);
    let mut c = b.clone();
    let off = root as usize * 4096 + 8;
    c[off] = 0x20; // unknown page type
    std::fs::write(&p, &c).unwrap();
    let db = BoltDb::open(&p).unwrap();
    let r = bolt::check(&db).unwrap();
    assert!(!r.is_ok());
    assert_eq!(r.problems[0].pgid, root);
    assert_eq!(r.problems[0].offset, root * 4096);
    assert!(
        r.problems[0].msg.contains("invalid type"),
        "{:?}",
        r.problems
    );
    let e = snapshot::status(&db).unwrap_err().to_string();
    assert!(e.contains(&format!("offset {}", root * 4096)), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]
    #[test]
    fn random_flips_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        thread_local!(static BASE: Vec<u8> = sample_db());
        let mut b = BASE.with(|b| b.clone());
        let n = b.len();
        for (i, x) in flips { let i = i.index(n); b[i] ^= x | 1; }
        let _ = exercise(&b);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..20000), hdr in any::<bool>()) {
        let mut b = bytes;
        if hdr && b.len() >= 8192 {
            // valid-looking metas over garbage pages
            let meta = |txid: u64, id: u64| {
                let m = bolt::Meta { magic: bolt::MAGIC, version: 2, page_size: 4096, flags: 0, root: 2,
                    sequence: 0, freelist: u64::MAX, pgid: (b.len() / 4096) as u64, txid, checksum: 0 }.with_checksum();
                let mut p = vec![0u8; 80];
                p[..16].copy_from_slice(&bolt::PageHeader { id, flags: 4, count: 0, overflow: 0 }.encode());
                p[16..].copy_from_slice(&m.encode());
                p
            };
            let (m0, m1) = (meta(2, 0), meta(1, 1));
            b[..80].copy_from_slice(&m0);
            b[4096..4096 + 80].copy_from_slice(&m1);
        }
        let _ = exercise(&b);
    }
}

#[test]
fn unused_import_guard() {
    let _ = BTreeMap::<u8, u8>::new();
}
