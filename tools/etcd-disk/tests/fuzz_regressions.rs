#![allow(clippy::unwrap_used)]
//! The fuzz targets' code (`fuzz/src/lib.rs`, included here) on fixed inputs, so that what the
//! fuzzers found stays fixed in plain `cargo test` (no libFuzzer needed):
//! - every file in `tests/fuzz_regressions/<target>/` (crash inputs found by
//!   `cargo xtask fuzz`, copied from `target/fuzz/artifacts/<target>/`);
//! - valid files from this library's writers, cut at many lengths and with bytes flipped: no
//!   panic, no allocation over `MAX_ALLOC`, and every error names the file it read.

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod exercise;

/// The fuzzers' allocation bound holds here too: one allocation over 32 MiB aborts the test.
#[global_allocator]
static ALLOC: exercise::LimitAlloc = exercise::LimitAlloc;

use etcd_disk::bolt::{self, Edits};
use etcd_disk::proto::{encode, Entry, HardState, Metadata, WalSnapshot};
use etcd_disk::wal::{self, WalWriter, WriterOptions};
use etcd_disk::{snap, snapshot, v2store, DiskError};
use std::path::Path;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, Vec<u8>)> = rd
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn saved_crash_inputs() {
    let t = tempfile::tempdir().unwrap();
    for (target, f) in [
        ("wal", exercise::wal as fn(&Path, &[u8])),
        ("snap", exercise::snap),
        ("bolt", exercise::bolt),
    ] {
        for (name, data) in corpus(target) {
            eprintln!("{target}/{name}");
            f(t.path(), &data);
        }
    }
}

/// Deterministic mutations: cut at `cuts` lengths and flip one byte at `flips` positions.
fn mutants(base: &[u8], cuts: usize, flips: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..cuts {
        let n = (next() % (base.len() as u64 + 1)) as usize;
        out.push(base[..n].to_vec());
    }
    for _ in 0..flips {
        let mut b = base.to_vec();
        let i = (next() % base.len() as u64) as usize;
        b[i] ^= (next() % 255 + 1) as u8;
        out.push(b);
    }
    out
}

fn wal_bytes(t: &Path) -> Vec<u8> {
    let md = Metadata {
        node_id: 1,
        cluster_id: 2,
    };
    let opts = WriterOptions {
        segment_size: 1 << 20,
        fsync: false,
    };
    let mut w = WalWriter::create_with(&t.join("w"), &encode(&md), opts).unwrap();
    for i in 1..=12u64 {
        let e = Entry {
            r#type: 0,
            term: 1,
            index: i,
            data: Some(vec![i as u8; (i * 37 % 200) as usize]),
        };
        w.save(
            &HardState {
                term: 1,
                vote: 1,
                commit: i,
            },
            &[e],
        )
        .unwrap();
        if i == 6 {
            w.save_snapshot(&WalSnapshot {
                index: 6,
                term: 1,
                conf_state: None,
            })
            .unwrap();
        }
    }
    let d = w.finish().unwrap();
    let p = wal::list_segments(&d).unwrap()[0].path.clone();
    let mut b = std::fs::read(p).unwrap();
    while b.ends_with(&[0u8; 8]) {
        b.truncate(b.len() - 8);
    }
    b
}

#[test]
fn wal_cut_and_flipped() {
    let t = tempfile::tempdir().unwrap();
    let base = wal_bytes(t.path());
    let dir = t.path().join("w2");
    std::fs::create_dir_all(&dir).unwrap();
    let seg = dir.join(wal::segment_name(0, 0));
    let (mut ok, mut err) = (0, 0);
    for m in mutants(&base, 300, 300) {
        let mut input = vec![0u8];
        input.extend_from_slice(&m);
        exercise::wal(t.path(), &input);
        std::fs::write(&seg, &m).unwrap();
        match wal::scan(&dir) {
            Ok(_) => ok += 1,
            Err(DiskError::Corrupt { path, .. }) | Err(DiskError::Layout { path, .. }) => {
                assert!(path.starts_with(&dir), "{}", path.display());
                err += 1;
            }
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
    assert!(ok > 0 && err > 0, "ok {ok} err {err}");
}

#[test]
fn snap_cut_and_flipped() {
    let t = tempfile::tempdir().unwrap();
    let ms: Vec<etcd_disk::membership::Member> = (0..3)
        .map(|i| etcd_disk::membership::Member {
            id: 100 + i,
            name: format!("m{i}"),
            peer_urls: vec![format!("http://127.0.0.{i}:2380")],
            client_urls: vec![],
            is_learner: false,
        })
        .collect();
    let base = snap::encode_snap(&v2store::restore_snapshot(&ms));
    let p = t.path().join("x.snap");
    for m in mutants(&base, 200, 400) {
        exercise::snap(t.path(), &m);
        if let Err(e) = snap::decode_snap(&p, &m) {
            assert!(e.to_string().contains("x.snap"), "{e}");
        }
    }
}

#[test]
fn bolt_cut_and_flipped() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src.db");
    let mut e = Edits::new();
    for i in 0..300u32 {
        e.put(
            b"key",
            &i.to_be_bytes(),
            &vec![b'v'; (i % 50) as usize * 20],
        )
        .unwrap();
    }
    e.put(b"meta", b"consistent_index", &7u64.to_be_bytes())
        .unwrap();
    bolt::create(4096, &e, &src).unwrap();
    let base = std::fs::read(&src).unwrap();
    let p = t.path().join("db");
    for m in mutants(&base, 60, 400) {
        exercise::bolt(t.path(), &m);
        match snapshot::open_db(&p).and_then(|(db, _)| snapshot::status(&db)) {
            Ok(_) => {}
            Err(DiskError::Corrupt { path, .. }) | Err(DiskError::Layout { path, .. }) => {
                assert_eq!(path, p)
            }
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }
}
