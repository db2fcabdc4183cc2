//! Writer → reader round trips (proptest) and random edits applied to a db.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::Path;

use etcd_disk::bolt::{self, BoltDb, BucketRef, Edits};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

fn read_all(db: &BoltDb) -> Model {
    let mut m = Model::new();
    let mut top = db.buckets();
    while let Some(b) = top.next().unwrap() {
        assert!(b.is_bucket());
        let name = b.key.to_vec();
        let bref = BucketRef::from_value(db.path(), b.value, 0).unwrap();
        let mut kv = BTreeMap::new();
        let mut c = db.cursor(&bref);
        let mut last: Option<Vec<u8>> = None;
        while let Some(it) = c.next().unwrap() {
            assert!(!it.is_bucket());
            if let Some(l) = &last {
                assert!(l.as_slice() < it.key, "cursor order");
            }
            last = Some(it.key.to_vec());
            kv.insert(it.key.to_vec(), it.value.to_vec());
        }
        m.insert(name, kv);
    }
    m
}

fn verify(path: &Path, model: &Model) {
    let db = BoltDb::open(path).unwrap();
    let r = bolt::check(&db).unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!(r.pages_free, 0, "a fresh rewrite is compact");
    assert_eq!(&read_all(&db), model);
    // point lookups
    for (b, kv) in model {
        let bref = db.bucket(b).unwrap().expect("bucket");
        for (k, v) in kv.iter().step_by(7) {
            assert_eq!(db.get(&bref, k).unwrap().as_ref(), Some(v));
        }
        let mut missing = kv.keys().next_back().cloned().unwrap_or_default();
        missing.push(0xff);
        assert_eq!(db.get(&bref, &missing).unwrap(), None);
    }
    assert_eq!(std::fs::metadata(path).unwrap().len(), db.image_size());
}

fn edits_of(model: &Model) -> Edits {
    let mut e = Edits::new();
    for (b, kv) in model {
        e.create_bucket(b).unwrap();
        for (k, v) in kv {
            e.put(b, k, v).unwrap();
        }
    }
    e
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..24)
}
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(any::<u8>(), 0..9000),
    ]
}
fn model() -> impl Strategy<Value = Model> {
    prop::collection::btree_map(
        prop::collection::vec(b'a'..=b'e', 1..4),
        prop::collection::btree_map(key(), value(), 0..400),
        0..5,
    )
}

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>, Vec<u8>),
    Del(Vec<u8>, Vec<u8>),
    DelExisting(usize, usize),
    DropBucket(Vec<u8>),
    ClearBucket(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let b = prop::collection::vec(b'a'..=b'f', 1..3);
    prop_oneof![
        6 => (b.clone(), key(), value()).prop_map(|(b, k, v)| Op::Put(b, k, v)),
        2 => (b.clone(), key()).prop_map(|(b, k)| Op::Del(b, k)),
        4 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::DelExisting(a, b)),
        1 => b.clone().prop_map(Op::DropBucket),
        1 => b.prop_map(Op::ClearBucket),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn write_then_read(m in model(), ps in prop::sample::select(vec![4096u32, 16384])) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        bolt::create(ps, &edits_of(&m), &p).unwrap();
        verify(&p, &m);
    }

    #[test]
    fn random_edits(m in model(), ops in prop::collection::vec(op(), 0..60)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        bolt::create(4096, &edits_of(&m), &p).unwrap();
        let mut model = m.clone();
        let mut e = Edits::new();
        for o in ops {
            match o {
                Op::Put(b, k, v) => { e.put(&b, &k, &v).unwrap(); model.entry(b).or_default().insert(k, v); }
                Op::Del(b, k) => { e.delete(&b, &k).unwrap(); if let Some(kv) = model.get_mut(&b) { kv.remove(&k); } }
                Op::DelExisting(i, j) => {
                    if model.is_empty() { continue; }
                    let b = model.keys().nth(i % model.len()).cloned().unwrap();
                    let kv = model.get_mut(&b).unwrap();
                    if kv.is_empty() { continue; }
                    let k = kv.keys().nth(j % kv.len()).cloned().unwrap();
                    kv.remove(&k);
                    e.delete(&b, &k).unwrap();
                }
                Op::DropBucket(b) => { e.delete_bucket(&b).unwrap(); model.remove(&b); }
                Op::ClearBucket(b) => { e.clear_bucket(&b).unwrap(); model.insert(b, BTreeMap::new()); }
            }
        }
        let src = BoltDb::open(&p).unwrap();
        let out = dir.path().join("db2");
        bolt::rewrite(&src, &e, &out).unwrap();
        verify(&out, &model);
        // identity rewrite of the result gives the same content and the same bytes past meta
        let src2 = BoltDb::open(&out).unwrap();
        let out3 = dir.path().join("db3");
        bolt::rewrite(&src2, &Edits::new(), &out3).unwrap();
        let a = std::fs::read(&out).unwrap();
        let b = std::fs::read(&out3).unwrap();
        prop_assert_eq!(a.len(), b.len());
        prop_assert!(a[8192..] == b[8192..]);
    }
}

#[test]
fn empty_db_and_many_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty");
    bolt::create(4096, &Edits::new(), &p).unwrap();
    verify(&p, &Model::new());
    let db = BoltDb::open(&p).unwrap();
    assert_eq!(db.meta().pgid, 3);
    // multi-level: 60k keys forces branch pages over branch pages
    let mut m = Model::new();
    let kv: BTreeMap<Vec<u8>, Vec<u8>> = (0..60_000u32)
        .map(|i| (format!("key/{i:08}").into_bytes(), i.to_be_bytes().to_vec()))
        .collect();
    m.insert(b"key".to_vec(), kv);
    m.insert(
        b"small".to_vec(),
        BTreeMap::from([(b"a".to_vec(), b"b".to_vec())]),
    );
    let p2 = dir.path().join("big");
    bolt::create(4096, &edits_of(&m), &p2).unwrap();
    verify(&p2, &m);
    let db = BoltDb::open(&p2).unwrap();
    // "small" is inline, "key" is not
    let small = db.bucket(b"small").unwrap().unwrap();
    assert!(small.inline.is_some());
    let key = db.bucket(b"key").unwrap().unwrap();
    assert!(key.inline.is_none());
}

#[test]
fn bad_edits_are_refused() {
    let mut e = Edits::new();
    assert!(e.put(b"b", b"", b"v").is_err());
    assert!(e.put(b"", b"k", b"v").is_err());
    assert!(e.put(b"b", &vec![1u8; 40_000], b"v").is_err());
}
