//! Patch writer tests: random dbs (deep trees, inline buckets, nested buckets) and random
//! edits; the patched file must pass the check and read back as the model and as the
//! compacting rewrite's output; a single put must cost O(depth) pages.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;

use proptest::prelude::*;

use super::super::write::{Built, Ctx, Sink, TreeBuilder};
use super::super::{
    check, rewrite, BoltDb, BucketRef, Edits, NodeView, RewriteStats, BUCKET_LEAF_FLAG,
    FREELIST_PAGE, PAGE_HEADER_SIZE,
};
use super::patch;
use crate::error::DiskError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum V {
    Plain(Vec<u8>),
    Sub(BTreeMap<Vec<u8>, Vec<u8>>),
}
type Bucket = BTreeMap<Vec<u8>, V>;
type Model = BTreeMap<Vec<u8>, Bucket>;

fn ok<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn bucket_value(b: Built, seq: u64) -> Vec<u8> {
    let mut v = Vec::new();
    match b {
        Built::Root(p) => {
            v.extend_from_slice(&p.to_le_bytes());
            v.extend_from_slice(&seq.to_le_bytes());
        }
        Built::Inline(img) => {
            v.extend_from_slice(&0u64.to_le_bytes());
            v.extend_from_slice(&seq.to_le_bytes());
            v.extend_from_slice(&img);
        }
    }
    v
}

/// Write `model` as a fresh db (nested buckets included, which `Edits` cannot express). Each
/// bucket's sequence is its name's length, to see sequences carried over.
fn build(model: &Model, path: &Path) {
    let f = ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path));
    let ps = 4096usize;
    let mut ctx = Ctx {
        src: None,
        sink: Sink::new(&f, path, ps, 2),
        stats: RewriteStats::default(),
        patch: false,
    };
    let mut root = TreeBuilder::new(ps);
    for (name, kv) in model {
        let mut tb = TreeBuilder::new(ps);
        for (k, v) in kv {
            match v {
                V::Plain(x) => ok(tb.add(&mut ctx.sink, k, x, 0)),
                V::Sub(m) => {
                    let keys = m
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect();
                    let val = ok(ctx.build_bucket(None, Some(&keys), 2));
                    ok(tb.add(&mut ctx.sink, k, &val, BUCKET_LEAF_FLAG));
                }
            }
        }
        let val = bucket_value(ok(tb.finish(&mut ctx.sink, true)), name.len() as u64);
        ok(root.add(&mut ctx.sink, name, &val, BUCKET_LEAF_FLAG));
    }
    let Built::Root(r) = ok(root.finish(&mut ctx.sink, false)) else {
        panic!("root inlined")
    };
    ok(ctx.finish_file(r, ps as u32));
}

fn read_bucket(db: &BoltDb, b: &BucketRef) -> Bucket {
    let mut out = Bucket::new();
    let mut subs = Vec::new();
    let mut c = db.cursor(b);
    while let Some((it, voff)) = ok(c.next_with_offset()) {
        if it.is_bucket() {
            subs.push((
                it.key.to_vec(),
                ok(BucketRef::from_value(db.path(), it.value, voff)),
            ));
        } else {
            out.insert(it.key.to_vec(), V::Plain(it.value.to_vec()));
        }
    }
    for (k, sb) in subs {
        let mut m = BTreeMap::new();
        for (kk, vv) in read_bucket(db, &sb) {
            match vv {
                V::Plain(x) => m.insert(kk, x),
                V::Sub(_) => panic!("bucket nested twice"),
            };
        }
        out.insert(k, V::Sub(m));
    }
    out
}

/// Content and each top-level bucket's sequence.
fn read_all(path: &Path) -> (Model, BTreeMap<Vec<u8>, u64>) {
    let db = ok(BoltDb::open(path));
    let r = ok(check(&db));
    assert!(r.is_ok(), "{path:?}: {:?}", r.problems);
    assert_eq!(ok(std::fs::metadata(path)).len(), db.image_size());
    let mut refs = Vec::new();
    let mut top = db.buckets();
    while let Some((it, voff)) = ok(top.next_with_offset()) {
        refs.push((
            it.key.to_vec(),
            ok(BucketRef::from_value(db.path(), it.value, voff)),
        ));
    }
    let mut m = Model::new();
    let mut seqs = BTreeMap::new();
    for (name, b) in refs {
        seqs.insert(name.clone(), b.sequence);
        m.insert(name, read_bucket(&db, &b));
    }
    (m, seqs)
}

/// Height of a bucket's tree (1 = a single leaf).
fn depth(db: &BoltDb, b: &BucketRef) -> usize {
    let mut pgid = b.root;
    let mut buf = Vec::new();
    for d in 1..64 {
        ok(db.read_page(pgid, &mut buf));
        let n = ok(NodeView::new(db.path(), &buf, 0));
        if n.is_leaf() {
            return d;
        }
        pgid = ok(n.branch(db.path(), 0)).1;
    }
    panic!("too deep")
}

/// The rightmost root-to-leaf path of a bucket's tree: page ids, root first.
fn rightmost_path(db: &BoltDb, b: &BucketRef) -> Vec<u64> {
    let mut pgid = b.root;
    let mut buf = Vec::new();
    let mut path = vec![pgid];
    loop {
        ok(db.read_page(pgid, &mut buf));
        let n = ok(NodeView::new(db.path(), &buf, 0));
        if n.is_leaf() {
            return path;
        }
        pgid = ok(n.branch(db.path(), n.count() - 1)).1;
        path.push(pgid);
    }
}

fn big_key(i: u64) -> Vec<u8> {
    let mut k = format!("k{:08}", i * 10).into_bytes();
    k.resize(100, b'p');
    k
}
fn big_value(i: u64) -> Vec<u8> {
    if i % 97 == 5 {
        vec![(i % 251) as u8; 5000 + (i as usize % 3000)]
    } else {
        vec![(i % 251) as u8; (i as usize * 7) % 40]
    }
}

/// A db with: `key` (100-byte keys, `n` of them: depth 3 from ~1100), `meta` (inline),
/// `mid` (a couple of leaves), `nest` (plain keys plus an inline and a rooted sub-bucket).
fn base_model(n: u64) -> Model {
    let mut m = Model::new();
    m.insert(
        b"key".to_vec(),
        (0..n)
            .map(|i| (big_key(i), V::Plain(big_value(i))))
            .collect(),
    );
    m.insert(
        b"meta".to_vec(),
        BTreeMap::from([
            (
                b"consistent_index".to_vec(),
                V::Plain(9u64.to_be_bytes().to_vec()),
            ),
            (b"term".to_vec(), V::Plain(2u64.to_be_bytes().to_vec())),
        ]),
    );
    m.insert(
        b"mid".to_vec(),
        (0..150u32)
            .map(|i| {
                (
                    format!("m{:04}", i * 10).into_bytes(),
                    V::Plain(vec![1u8; 30]),
                )
            })
            .collect(),
    );
    let rooted: BTreeMap<Vec<u8>, Vec<u8>> = (0..400u32)
        .map(|i| (format!("r{i:05}").into_bytes(), vec![2u8; 20]))
        .collect();
    m.insert(
        b"nest".to_vec(),
        BTreeMap::from([
            (b"a".to_vec(), V::Plain(b"plain".to_vec())),
            (
                b"inl".to_vec(),
                V::Sub(BTreeMap::from([(b"x".to_vec(), b"y".to_vec())])),
            ),
            (b"m".to_vec(), V::Plain(vec![3u8; 100])),
            (b"rooted".to_vec(), V::Sub(rooted)),
        ]),
    );
    m
}

#[derive(Debug, Clone)]
enum KeyAt {
    Before(Vec<u8>),
    Existing(usize),
    After(usize),
    End(Vec<u8>),
    Any(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Op {
    Put(usize, KeyAt, Vec<u8>),
    Del(usize, KeyAt),
    Clear(usize),
    DeleteBucket(usize),
    CreateBucket(usize),
}

const BUCKETS: [&[u8]; 7] = [b"key", b"key", b"meta", b"mid", b"nest", b"new1", b"new2"];

fn key_at() -> impl Strategy<Value = KeyAt> {
    let tail = prop::collection::vec(any::<u8>(), 0..6);
    prop_oneof![
        2 => tail.clone().prop_map(|t| KeyAt::Before([b"A".as_slice(), &t].concat())),
        4 => any::<usize>().prop_map(KeyAt::Existing),
        4 => any::<usize>().prop_map(KeyAt::After),
        3 => tail.clone().prop_map(|t| KeyAt::End([b"zz".as_slice(), &t].concat())),
        1 => prop::collection::vec(any::<u8>(), 1..12).prop_map(KeyAt::Any),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        10 => prop::collection::vec(any::<u8>(), 0..80),
        1 => (0usize..9000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ]
}

fn op(puts_only: bool) -> impl Strategy<Value = Op> {
    let b = 0..BUCKETS.len();
    if puts_only {
        prop_oneof![
            20 => (b.clone(), key_at(), value()).prop_map(|(b, k, v)| Op::Put(b, k, v)),
            1 => b.prop_map(Op::CreateBucket),
        ]
        .boxed()
    } else {
        prop_oneof![
            12 => (b.clone(), key_at(), value()).prop_map(|(b, k, v)| Op::Put(b, k, v)),
            4 => (b.clone(), key_at()).prop_map(|(b, k)| Op::Del(b, k)),
            1 => b.clone().prop_map(Op::Clear),
            1 => b.clone().prop_map(Op::DeleteBucket),
            1 => b.prop_map(Op::CreateBucket),
        ]
        .boxed()
    }
}

fn resolve(model: &Model, bucket: &[u8], k: &KeyAt) -> Vec<u8> {
    let keys = model.get(bucket);
    let nth = |i: usize| {
        keys.filter(|m| !m.is_empty())
            .and_then(|m| m.keys().nth(i % m.len()).cloned())
    };
    match k {
        KeyAt::Before(x) | KeyAt::End(x) | KeyAt::Any(x) => x.clone(),
        KeyAt::Existing(i) => nth(*i).unwrap_or_else(|| b"e".to_vec()),
        KeyAt::After(i) => {
            let mut x = nth(*i).unwrap_or_else(|| b"f".to_vec());
            x.push(0);
            x
        }
    }
}

/// Apply `ops` to both the model and an `Edits`.
fn apply(model: &mut Model, ops: &[Op]) -> Edits {
    let mut e = Edits::new();
    for o in ops {
        match o {
            Op::Put(b, k, v) => {
                let b = BUCKETS[*b];
                let k = resolve(model, b, k);
                ok(e.put(b, &k, v));
                model
                    .entry(b.to_vec())
                    .or_default()
                    .insert(k, V::Plain(v.clone()));
            }
            Op::Del(b, k) => {
                let b = BUCKETS[*b];
                let k = resolve(model, b, k);
                ok(e.delete(b, &k));
                if let Some(m) = model.get_mut(b) {
                    m.remove(&k);
                }
            }
            Op::Clear(b) => {
                ok(e.clear_bucket(BUCKETS[*b]));
                model.insert(BUCKETS[*b].to_vec(), Bucket::new());
            }
            Op::DeleteBucket(b) => {
                ok(e.delete_bucket(BUCKETS[*b]));
                model.remove(BUCKETS[*b]);
            }
            Op::CreateBucket(b) => {
                ok(e.create_bucket(BUCKETS[*b]));
                model.entry(BUCKETS[*b].to_vec()).or_default();
            }
        }
    }
    e
}

/// Patch and rewrite `src_path` with `e`; both must match `model` (and each other's bucket
/// sequences). Returns the patched file's path.
fn patch_and_compare(
    dir: &Path,
    src_path: &Path,
    e: &Edits,
    model: &Model,
    tag: &str,
) -> std::path::PathBuf {
    let src = ok(BoltDb::open(src_path));
    let pp = dir.join(format!("patched{tag}"));
    let rp = dir.join(format!("rewritten{tag}"));
    let st = ok(patch(&src, e, &pp));
    ok(rewrite(&src, e, &rp));
    assert!(st.pages >= src.meta().pgid, "the patch only appends");
    assert_eq!(st.txid, src.meta().txid + 1);
    let (pm, ps) = read_all(&pp);
    let (rm, rs) = read_all(&rp);
    assert!(pm == *model, "patched content differs from the model");
    assert!(rm == *model, "rewritten content differs from the model");
    assert_eq!(ps, rs, "bucket sequences");
    let db = ok(BoltDb::open(&pp));
    for (t, slot) in db.metas().iter().enumerate() {
        assert!(slot.error.is_none());
        assert_eq!(
            slot.meta.root,
            db.meta().root,
            "meta {t} names the new root"
        );
        assert_eq!(slot.meta.pgid, st.pages);
    }
    pp
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, .. ProptestConfig::default() })]

    #[test]
    fn patch_matches_model_and_rewrite(
        n in 1200u64..2600,
        puts_only in any::<bool>(),
        ops1 in prop::collection::vec(op(false), 0..30),
        ops2 in prop::collection::vec(op(true), 0..30),
        ops3 in prop::collection::vec(op(false), 0..30),
    ) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("db");
        let mut model = base_model(n);
        build(&model, &p);
        {
            let db = ok(BoltDb::open(&p));
            let kb = ok(db.bucket(b"key")).unwrap_or_else(|| panic!("key"));
            prop_assert!(depth(&db, &kb) >= 3);
            prop_assert!(ok(db.bucket(b"meta")).is_some_and(|b| b.inline.is_some()));
        }
        // first round: mixed edits, or puts only (path copies everywhere)
        let first = if puts_only { &ops2 } else { &ops1 };
        let e = apply(&mut model, first);
        let p1 = patch_and_compare(dir.path(), &p, &e, &model, "1");
        // second round on the patched file (free pages in the source, patched paths):
        // puts only, then mixed
        let e = apply(&mut model, &ops2);
        let p2 = patch_and_compare(dir.path(), &p1, &e, &model, "2");
        let e = apply(&mut model, &ops3);
        patch_and_compare(dir.path(), &p2, &e, &model, "3");
    }
}

#[test]
fn unedited_buckets_are_referenced_not_rebuilt() {
    let dir = ok(tempfile::tempdir());
    let p = dir.path().join("db");
    let model = base_model(1500);
    build(&model, &p);
    let src = ok(BoltDb::open(&p));
    let mut e = Edits::new();
    ok(e.put(b"meta", b"term", &1u64.to_be_bytes()));
    ok(e.put(b"nest", b"b", b"v"));
    let out = dir.path().join("out");
    let st = ok(patch(&src, &e, &out));
    let db = ok(BoltDb::open(&out));
    // `key` and `mid` keep their root pages; `nest` is path-copied but its rooted sub-bucket
    // keeps its root page
    for name in [b"key".as_slice(), b"mid"] {
        let a = ok(src.bucket(name)).unwrap_or_else(|| panic!("src"));
        let b = ok(db.bucket(name)).unwrap_or_else(|| panic!("out"));
        assert_eq!(a, b);
    }
    let sn = ok(src.bucket(b"nest")).unwrap_or_else(|| panic!("nest"));
    let dn = ok(db.bucket(b"nest")).unwrap_or_else(|| panic!("nest"));
    assert_ne!(sn.root, dn.root);
    assert_eq!(
        ok(src.bucket_in(&sn, b"rooted")),
        ok(db.bucket_in(&dn, b"rooted"))
    );
    // appended: the new nest leaf, the new meta (inline, so inside the root bucket's page)
    // and the root bucket: a few pages
    assert!(st.pages - src.meta().pgid <= 3, "{st:?}");
    let mut expect = model;
    expect
        .entry(b"meta".to_vec())
        .or_default()
        .insert(b"term".to_vec(), V::Plain(1u64.to_be_bytes().to_vec()));
    expect
        .entry(b"nest".to_vec())
        .or_default()
        .insert(b"b".to_vec(), V::Plain(b"v".to_vec()));
    assert!(read_all(&out).0 == expect);
}

/// The restore case: one put after the last key of a bucket of a few hundred thousand keys
/// writes O(depth) pages, also when every page on the way is full.
#[test]
fn single_put_costs_o_depth_pages() {
    let dir = ok(tempfile::tempdir());
    let p = dir.path().join("db");
    let mut e = Edits::new();
    for i in 0..300_000u32 {
        ok(e.put(b"key", &(u64::from(i) * 2).to_be_bytes(), b"v"));
    }
    ok(e.put(b"meta", b"consistent_index", &5u64.to_be_bytes()));
    ok(e.clear_bucket(b"members"));
    ok(crate::bolt::create(4096, &e, &p));
    let src = ok(BoltDb::open(&p));
    let kb = ok(src.bucket(b"key")).unwrap_or_else(|| panic!("key"));
    let d = depth(&src, &kb);
    assert!(d >= 3, "depth {d}");
    let n_before = 300_000usize;
    for (what, key) in [
        ("after the last", u64::MAX.to_be_bytes().to_vec()),
        ("in the middle", 300_001u64.to_be_bytes().to_vec()),
        ("before the first", vec![0u8]),
        ("over an existing key", 4242u64.to_be_bytes().to_vec()),
    ] {
        let mut e = Edits::new();
        ok(e.put(b"key", &key, b"new"));
        ok(e.put(b"members", b"1", b"{}"));
        let out = dir.path().join("out");
        let st = ok(patch(&src, &e, &out));
        let added = st.pages - src.meta().pgid;
        // each level's page and at most one split sibling, a new root level, the root bucket
        assert!(
            added <= 2 * d as u64 + 2,
            "{what}: {added} pages appended for depth {d}"
        );
        let db = ok(BoltDb::open(&out));
        let r = ok(check(&db));
        assert!(r.is_ok(), "{what}: {:?}", r.problems);
        let kb2 = ok(db.bucket(b"key")).unwrap_or_else(|| panic!("key"));
        assert_eq!(ok(db.get(&kb2, &key)), Some(b"new".to_vec()), "{what}");
        let mut n = 0usize;
        ok(db.for_each(&kb2, |_| {
            n += 1;
            Ok(())
        }));
        let existed = what == "over an existing key";
        assert_eq!(n, n_before + usize::from(!existed), "{what}");
        assert_eq!(ok(db.last(&kb2)).map(|x| x.0 >= key), Some(true));
    }
}

/// Many puts after the last key: the rightmost leaves split into many, the tree grows.
#[test]
fn many_appends_grow_the_tree() {
    let dir = ok(tempfile::tempdir());
    let p = dir.path().join("db");
    let mut e = Edits::new();
    ok(e.put(b"key", b"k000000", b"v"));
    ok(crate::bolt::create(4096, &e, &p));
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    model.insert(b"k000000".to_vec(), b"v".to_vec());
    let mut cur = p.clone();
    // rounds of appends: a leaf root, then a branch root, then a new root level
    for round in 0..4u32 {
        let src = ok(BoltDb::open(&cur));
        let mut e = Edits::new();
        for i in 0..(40u32 * 5u32.pow(round)) {
            let mut k = format!("k{round}{i:05}").into_bytes();
            k.resize(60, b'p');
            let v = vec![round as u8; 60];
            ok(e.put(b"key", &k, &v));
            model.insert(k, v);
        }
        let out = dir.path().join(format!("r{round}"));
        ok(patch(&src, &e, &out));
        let (m, _) = read_all(&out);
        let got: BTreeMap<Vec<u8>, Vec<u8>> = m
            .get(b"key".as_slice())
            .unwrap_or_else(|| panic!("key"))
            .iter()
            .map(|(k, v)| match v {
                V::Plain(x) => (k.clone(), x.clone()),
                V::Sub(_) => panic!("sub"),
            })
            .collect();
        assert!(got == model, "round {round}");
        cur = out;
    }
    let db = ok(BoltDb::open(&cur));
    let kb = ok(db.bucket(b"key")).unwrap_or_else(|| panic!("key"));
    assert!(depth(&db, &kb) >= 3);
}

/// Keys near bbolt's 32 KiB limit: branch nodes of two children (with overflow) still
/// converge to one root, in both writers.
#[test]
fn huge_keys_converge() {
    let dir = ok(tempfile::tempdir());
    let p = dir.path().join("db");
    let mut e = Edits::new();
    for i in 0..9u8 {
        ok(e.put(b"b", &vec![b'a' + i; 20_000], b"v"));
    }
    ok(crate::bolt::create(4096, &e, &p));
    let src = ok(BoltDb::open(&p));
    let mut e = Edits::new();
    for i in 0..9u8 {
        ok(e.put(b"b", &vec![b'a' + i; 30_000], b"w"));
    }
    let out = dir.path().join("out");
    ok(patch(&src, &e, &out));
    let (m, _) = read_all(&out);
    assert_eq!(m.get(b"b".as_slice()).map(|b| b.len()), Some(18));
}

/// A snapshot-like source: the image is a byte range of a larger file.
#[test]
fn source_at_an_offset() {
    let dir = ok(tempfile::tempdir());
    let p = dir.path().join("db");
    let model = base_model(1200);
    build(&model, &p);
    let img = ok(std::fs::read(&p));
    let wrapped = dir.path().join("wrapped");
    let base = 12_345usize;
    let mut bytes = vec![0xAAu8; base];
    bytes.extend_from_slice(&img);
    bytes.extend_from_slice(&[0x55u8; 32]);
    ok(std::fs::write(&wrapped, &bytes));
    let src = ok(BoltDb::open_range(&wrapped, base as u64, img.len() as u64));
    let mut e = Edits::new();
    ok(e.put(b"key", b"zzz", b"last"));
    let out = dir.path().join("out");
    ok(patch(&src, &e, &out));
    let mut expect = model;
    expect
        .entry(b"key".to_vec())
        .or_default()
        .insert(b"zzz".to_vec(), V::Plain(b"last".to_vec()));
    assert!(read_all(&out).0 == expect);
}

/// Corrupt pages on the patched path are errors naming the file and the offset; the `.part`
/// is removed.
#[test]
fn corrupt_path_pages_are_errors() {
    let dir = ok(tempfile::tempdir());
    let p = dir.path().join("db");
    build(&base_model(1500), &p);
    let (leaf, leaf_off) = {
        let db = ok(BoltDb::open(&p));
        let kb = ok(db.bucket(b"key")).unwrap_or_else(|| panic!("key"));
        let path = rightmost_path(&db, &kb);
        let leaf = *path.last().unwrap_or_else(|| panic!("path"));
        (leaf, db.page_offset(leaf))
    };
    let good = ok(std::fs::read(&p));
    let mut e = Edits::new();
    ok(e.put(b"key", b"zzz", b"v"));
    let out = dir.path().join("out");
    let run = |bytes: &[u8]| {
        let bad = dir.path().join("bad");
        ok(std::fs::write(&bad, bytes));
        let src = ok(BoltDb::open(&bad));
        let r = patch(&src, &e, &out);
        assert!(!dir.path().join("out.part").exists());
        match r {
            Err(DiskError::Corrupt { path, offset, msg }) => {
                assert_eq!(path, bad);
                (offset, msg)
            }
            other => panic!("{other:?}"),
        }
    };
    // the leaf's type
    let mut b = good.clone();
    let o = leaf_off as usize;
    b[o + 8..o + 10].copy_from_slice(&FREELIST_PAGE.to_le_bytes());
    let (off, msg) = run(&b);
    assert_eq!(off, leaf_off, "{msg}");
    assert!(msg.contains(&format!("page {leaf}")), "{msg}");
    // keys out of order: the leaf's first key made larger than the second
    let mut b = good.clone();
    let pos = u32::from_le_bytes([
        b[o + PAGE_HEADER_SIZE + 4],
        b[o + PAGE_HEADER_SIZE + 5],
        b[o + PAGE_HEADER_SIZE + 6],
        b[o + PAGE_HEADER_SIZE + 7],
    ]) as usize;
    b[o + PAGE_HEADER_SIZE + pos] = b'z';
    let (off, msg) = run(&b);
    assert_eq!(off, leaf_off + (PAGE_HEADER_SIZE + 16) as u64, "{msg}");
    assert!(msg.contains("not greater than the previous key"), "{msg}");
}
