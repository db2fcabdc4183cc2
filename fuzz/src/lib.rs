//! What the fuzz targets do with one input, shared with the regression tests
//! (`tools/etcd-disk/tests/fuzz_regressions.rs` includes this file). Every reader is driven to
//! the end of what it accepts; errors are fine, panics and unbounded allocations are not (the
//! fuzz binaries install [`LimitAlloc`]). Only `std` and `etcd_disk` are used here.
#![allow(clippy::unwrap_used)]

use etcd_disk::entry;
use etcd_disk::{bolt, snap, snapshot, v2store, wal};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};

/// Largest single allocation an input may cause. The WAL reader holds one record (< 10 MiB)
/// plus a 1 MiB buffer; bbolt reads one page (+ overflow, bounded by the file); the inputs are
/// at most a few MiB. Anything bigger is an allocation sized by a field read from the input.
pub const MAX_ALLOC: usize = 32 << 20;

/// A global allocator that aborts (via `handle_alloc_error`, which libFuzzer reports as a
/// crash with the input saved) when one allocation exceeds [`MAX_ALLOC`].
pub struct LimitAlloc;

// SAFETY: forwards to the system allocator; refusing an allocation (null) is allowed.
unsafe impl GlobalAlloc for LimitAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if l.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: p was allocated by System with layout l.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, new) }
    }
}

/// A per-process scratch dir: `$ETCD_RESCUE_FUZZ_SCRATCH` (set by `cargo xtask fuzz`) or
/// `<tmp>/etcd-rescue-fuzz-<pid>`.
pub fn scratch(name: &str) -> PathBuf {
    let base = std::env::var_os("ETCD_RESCUE_FUZZ_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!("etcd-rescue-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// WAL input format: byte 0 = segment count - 1 (mod 3); then per extra segment a header of
/// `u16 LE length / 8` and `u16 LE first index` (its name); then the segments' bytes, the last
/// one taking the rest. Written as `<dir>/wal/*.wal`; then the full scan, `ReadAll` from the
/// start with every entry read and classified, `ReadAll` at snapshot records, and the raw
/// record/entry decoders.
pub fn wal(dir: &Path, data: &[u8]) {
    let Some((&ctl, mut rest)) = data.split_first() else {
        return;
    };
    let wal_dir = dir.join("wal");
    let _ = std::fs::remove_dir_all(&wal_dir);
    std::fs::create_dir_all(&wal_dir).unwrap();
    let nseg = 1 + usize::from(ctl % 3);
    let mut heads = Vec::new();
    for _ in 1..nseg {
        let Some((h, r)) = rest.split_first_chunk::<4>() else {
            return;
        };
        heads.push((
            usize::from(u16::from_le_bytes([h[0], h[1]])) * 8,
            u64::from(u16::from_le_bytes([h[2], h[3]])),
        ));
        rest = r;
    }
    let body = rest;
    let mut r = rest;
    let mut idx = 0u64;
    for i in 0..nseg {
        let (part, next, next_idx) = match heads.get(i) {
            Some(&(len, nidx)) => {
                let (a, b) = r.split_at(len.min(r.len()));
                (a, b, nidx)
            }
            None => (r, &[][..], 0),
        };
        std::fs::write(wal_dir.join(wal::segment_name(i as u64, idx)), part).unwrap();
        r = next;
        idx = next_idx;
    }
    let rest = body;
    if let Ok(s) = wal::scan(&wal_dir) {
        let _ = s.valid_snapshots();
        for ws in s.snapshots.iter().take(4) {
            if let Ok(c) = wal::read_at(&wal_dir, ws.index, ws.term) {
                let _ = c.require_snapshot();
            }
        }
    }
    if let Ok(c) = wal::read_at(&wal_dir, 0, 0) {
        let mut er = c.entry_reader();
        let mut buf = Vec::new();
        for loc in &c.entries {
            match er.read_data(loc, &mut buf) {
                Ok(has) => {
                    let _ = entry::classify(loc.etype, has.then_some(buf.as_slice()));
                }
                Err(_) => break,
            }
        }
    }
    // The pure decoders on the raw bytes.
    if let Ok(rec) = wal::decode_record(rest) {
        if let Some(d) = rec.data {
            let _ = wal::decode_entry(d);
        }
    }
    let _ = wal::decode_entry(rest);
}

/// snap: `decode_snap` on the bytes; on success the v2 store model of its data; also the v2
/// store parser and the entry classifier straight on the input; and the file path reader.
pub fn snap(dir: &Path, data: &[u8]) {
    let p = dir.join("0000000000000002-0000000000000010.snap");
    if let Ok(s) = snap::decode_snap(&p, data) {
        if let Some(d) = s.data.as_deref() {
            store(d);
        }
    }
    store(data);
    for t in 0..3 {
        let _ = entry::classify(t, Some(data));
    }
    let _ = entry::looks_like_legacy_request(data);
    if data.first() == Some(&0x0a) {
        // only sometimes through the file system (slower)
        std::fs::write(&p, data).unwrap();
        let _ = snap::read_snap(&p);
        let _ = snap::load_newest(dir);
    }
}

fn store(d: &[u8]) {
    if let Ok(st) = v2store::parse_store(d) {
        let _ = st.user_entries();
        let _ = st.members();
        let _ = st.removed_members();
        let _ = st.cluster_version();
        let _ = st.is_meta_store_only();
        let mut out = String::new();
        st.root.write_go_json(&mut out);
    }
}

/// bbolt: open (with and without snapshot trailer handling), the consistency check, `snapshot
/// status`, a cursor walk over every bucket (and nested buckets one level down), point gets.
pub fn bolt(dir: &Path, data: &[u8]) {
    let p = dir.join("db");
    std::fs::write(&p, data).unwrap();
    let _ = snapshot::verify_trailer(&p);
    if let Ok((db, _)) = snapshot::open_db(&p) {
        let _ = snapshot::status(&db);
    }
    let Ok(db) = bolt::BoltDb::open(&p) else {
        return;
    };
    let _ = bolt::check(&db);
    let mut top = db.buckets();
    let mut names = Vec::new();
    while let Ok(Some(it)) = top.next() {
        if it.is_bucket() {
            names.push(it.key.to_vec());
        }
        if names.len() > 64 {
            break;
        }
    }
    for n in &names {
        let Ok(Some(b)) = db.bucket(n) else { continue };
        let _ = db.last(&b);
        let _ = db.get(&b, b"consistent_index");
        let mut c = db.cursor(&b);
        let mut steps = 0u32;
        while let Ok(Some(it)) = c.next() {
            if it.is_bucket() {
                if let Ok(Some(inner)) = db.bucket_in(&b, it.key) {
                    let _ = db.for_each(&inner, |_| Ok(()));
                }
            }
            steps += 1;
            if steps > 100_000 {
                break;
            }
        }
    }
}
