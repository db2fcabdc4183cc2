//! A consistent copy of a running member's bbolt db, taken from disk without a lock.
//!
//! etcd holds an exclusive `flock` on `member/snap/db`, so bbolt's own API (which takes a
//! shared lock) cannot open it while etcd runs; the lock is advisory and the file is readable.
//! A byte copy is consistent because of how bbolt commits (copy-on-write, bbolt 1.3.x as in
//! etcd 3.4 and 3.5):
//! - a write transaction writes its pages only into pages that are free in the last committed
//!   tree (pages it frees itself stay pending until the *next* transaction), then fsyncs, then
//!   writes its meta page (the other of the two meta slots), then fsyncs;
//! - so while the newest committed meta stays at txid `T`, no page reachable from meta `T` is
//!   written to, and pages past `T`'s high-water mark are not part of its tree.
//!
//! The copy: read the newest valid meta (txid `T`, high-water mark `pgid`), copy
//! `[0, pgid × page size)` with the kernel ([`etcd_disk::copy::copy_range`]), then read the
//! metas again: if the newest is still `T`, the file is still the same inode (no defrag
//! swapped it), and the copy's own newest meta is `T`, the copy holds exactly the tree of
//! commit `T` (other pages may hold half-written data of a commit that had not finished: they
//! are free pages of `T`). Otherwise the copy is discarded and taken again; after
//! [`ATTEMPTS`] the caller falls back to the member's snapshot stream.
//!
//! The sha256 for the manifest is computed on another thread that reads the copy as it lands,
//! so hashing costs no wall time beyond the copy where two cores are free.

use crate::{Error, Result};
use etcd_disk::bolt::BoltDb;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How many copies are tried before giving up (each races with at most one commit).
pub const ATTEMPTS: u32 = 3;

/// At most this much is mapped at once by the hash thread (a multiple of the page size).
const MAP_AT_ONCE: u64 = 8 << 20;

/// A copy that held still.
#[derive(Debug)]
pub struct LiveCopy {
    /// The committed transaction the copy holds.
    pub txid: u64,
    /// Bytes copied (= the copy's size).
    pub size: u64,
    /// Copies tried (1 = the first held).
    pub attempts: u32,
    /// The sha256 of the copy, being computed.
    pub hash: HashJob,
}

/// The sha256 of a file being written, computed by a thread that follows the writer.
#[derive(Debug)]
pub struct HashJob {
    progress: Arc<Progress>,
    handle: Option<std::thread::JoinHandle<Result<Option<Sha256>>>>,
}

#[derive(Debug, Default)]
struct Progress {
    /// Bytes written so far (readable).
    written: AtomicU64,
    /// Set when `written` is final.
    done: AtomicBool,
    /// Set to stop the hasher (the copy is discarded: the job is dropped).
    abort: AtomicBool,
}

impl HashJob {
    fn start(path: &Path) -> Result<HashJob> {
        let f = File::open(path)
            .map_err(|e| Error::io(format!("cannot open {}: {e}", path.display())))?;
        let progress = Arc::new(Progress::default());
        let p = Arc::clone(&progress);
        let path: PathBuf = path.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("db-sha256".into())
            .spawn(move || follow_and_hash(&f, &path, &p))
            .map_err(|e| Error::internal(format!("cannot start the hash thread: {e}")))?;
        Ok(HashJob {
            progress,
            handle: Some(handle),
        })
    }

    fn advance(&self, written: u64) {
        self.progress.written.store(written, Ordering::Release);
    }

    fn finish_input(&self) {
        self.progress.done.store(true, Ordering::Release);
    }

    /// Wait for the hash of everything written.
    pub fn wait(self) -> Result<String> {
        Ok(etcd_disk::snapshot::hex(&self.wait_state()?.finalize()))
    }

    /// Wait for the hasher that has consumed everything written (not finalized: a caller
    /// that appends bytes, e.g. a snapshot's sha256 trailer, goes on hashing from it).
    pub fn wait_state(mut self) -> Result<Sha256> {
        self.finish_input();
        let h = self
            .handle
            .take()
            .ok_or_else(|| Error::internal("hash thread already joined"))?;
        h.join()
            .map_err(|_| Error::internal("hash thread panicked"))??
            .ok_or_else(|| Error::internal("hash aborted"))
    }
}

impl Drop for HashJob {
    fn drop(&mut self) {
        self.progress.abort.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn follow_and_hash(f: &File, path: &Path, p: &Progress) -> Result<Option<Sha256>> {
    let mut h = Sha256::new();
    let mut off = 0u64;
    loop {
        if p.abort.load(Ordering::Acquire) {
            return Ok(None);
        }
        // `done` is read before `written`: once done, `written` is final.
        let done = p.done.load(Ordering::Acquire);
        let avail = p.written.load(Ordering::Acquire);
        if off < avail {
            // Hash the new bytes through a read-only map of them (no copy into a buffer:
            // ~12% faster than pread here). Only this process writes the file, and never
            // shortens it, so the mapped range stays valid.
            let n = (avail - off).min(MAP_AT_ONCE);
            let len = usize::try_from(n)
                .map_err(|_| Error::internal("map length does not fit in memory"))?;
            // SAFETY: the range [off, off+n) of our own file is written and never truncated
            // while mapped (see above).
            let map = unsafe { memmap2::MmapOptions::new().offset(off).len(len).map(f) }
                .map_err(|e| Error::io(format!("cannot map {}: {e}", path.display())))?;
            h.update(&map[..]);
            off += n;
            continue;
        }
        if done {
            return Ok(Some(h));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Why a copy did not hold still.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// A commit finished during the copy (newest txid before → after).
    Committed(u64, u64),
    /// The file was replaced (defragmentation renames a new file over it).
    Replaced,
}

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Moved::Committed(a, b) => write!(f, "a commit landed during the copy (txid {a} → {b})"),
            Moved::Replaced => write!(
                f,
                "the db file was replaced during the copy (defragmented?)"
            ),
        }
    }
}

/// The reasons of [`copy_live_db`]'s attempts, in one line.
pub fn describe(moved: &[Moved]) -> String {
    moved
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Copy the live db at `src` into `dst` (created 0600, must not exist). `between` runs after
/// each copy and before its check (tests use it to commit in the middle). Returns the copy, or
/// the reasons each attempt moved (`dst` is then removed).
pub fn copy_live_db(
    src: &Path,
    dst: &Path,
    between: impl FnMut(u32),
) -> Result<std::result::Result<LiveCopy, Vec<Moved>>> {
    let out = crate::atomic::create_new(dst, 0o600)?;
    let r = copy_live_db_into(src, &out, dst, between);
    if !matches!(r, Ok(Ok(_))) {
        drop(out);
        match &r {
            Ok(_) => remove(dst)?,
            Err(_) => {
                let _ = remove(dst);
            }
        }
    }
    r
}

/// [`copy_live_db`] into a file the caller opened (and owns, e.g. an
/// [`AtomicFile`](crate::atomic::AtomicFile)'s `.part`): `out` is truncated before each attempt,
/// and holds the image (`[0, size)`) when a copy held still. On failure its content is
/// unspecified: the caller discards it.
pub fn copy_live_db_into(
    src: &Path,
    out: &File,
    dst: &Path,
    mut between: impl FnMut(u32),
) -> Result<std::result::Result<LiveCopy, Vec<Moved>>> {
    let mut moved = Vec::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            out.set_len(0)
                .map_err(|e| Error::io(format!("cannot truncate {}: {e}", dst.display())))?;
        }
        match copy_once(src, out, dst, attempt, &mut between)? {
            Ok(c) => return Ok(Ok(c)),
            Err(m) => {
                crate::diag::debug(&format!("db copy attempt {attempt}: {m}"));
                moved.push(m);
            }
        }
    }
    Ok(Err(moved))
}

fn remove(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}: {e}", p.display()))),
    }
}

fn copy_once(
    src: &Path,
    out: &File,
    dst: &Path,
    attempt: u32,
    between: &mut impl FnMut(u32),
) -> Result<std::result::Result<LiveCopy, Moved>> {
    let before = BoltDb::open(src)?;
    let txid = before.meta().txid;
    let len = before
        .meta()
        .pgid
        .checked_mul(u64::from(before.page_size()))
        .ok_or_else(|| Error::bad_input(format!("{}: meta page count overflows", src.display())))?;
    // One descriptor for the reads and the inode: the file the meta above was read from.
    let input = before.file();
    let ino = input
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}: {e}", src.display())))?
        .ino();
    let hash = HashJob::start(dst)?;
    let mut off = 0u64;
    while off < len {
        // A signal stops the copy here (the caller removes `dst`).
        crate::atomic::check_cancelled()?;
        let n = (len - off).min(etcd_disk::copy::CHUNK);
        etcd_disk::copy::copy_range(input, src, off, out, dst, off, n)?;
        off += n;
        hash.advance(off);
    }
    between(attempt);
    // The checks: same newest commit, same file, and the copy's newest meta is that commit.
    let after = BoltDb::open(src)?;
    let same_file = std::fs::metadata(src)
        .map(|m| m.ino() == ino)
        .unwrap_or(false);
    if after.meta().txid != txid {
        return Ok(Err(Moved::Committed(txid, after.meta().txid)));
    }
    if !same_file {
        return Ok(Err(Moved::Replaced));
    }
    let copy = BoltDb::open(dst)?;
    if copy.meta().txid != txid {
        return Ok(Err(Moved::Committed(txid, copy.meta().txid)));
    }
    out.sync_all()
        .map_err(|e| Error::io(format!("cannot fsync {}: {e}", dst.display())))?;
    hash.finish_input();
    Ok(Ok(LiveCopy {
        txid,
        size: len,
        attempts: attempt,
        hash,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use etcd_disk::bolt::{self, Edits};
    use std::fs::OpenOptions;
    use std::os::unix::fs::FileExt;

    fn db_with(path: &Path, n: u32) {
        let mut e = Edits::new();
        for i in 0..n {
            e.put(b"key", &i.to_be_bytes(), &[7u8; 300]).unwrap();
        }
        e.put(b"meta", b"consistent_index", &9u64.to_be_bytes())
            .unwrap();
        bolt::create(4096, &e, path).unwrap();
    }

    #[test]
    fn a_still_db_is_copied_once_and_hashed() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("db");
        db_with(&src, 5000);
        let dst = d.path().join("copy");
        let c = copy_live_db(&src, &dst, |_| {}).unwrap().unwrap();
        assert_eq!(c.attempts, 1);
        let bytes = std::fs::read(&dst).unwrap();
        assert_eq!(bytes, std::fs::read(&src).unwrap());
        assert_eq!(c.size, bytes.len() as u64);
        let want = etcd_disk::snapshot::hex(&Sha256::digest(&bytes));
        assert_eq!(c.hash.wait().unwrap(), want);
    }

    #[test]
    fn a_commit_during_the_copy_is_detected_and_retried() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("db");
        db_with(&src, 3000);
        let dst = d.path().join("copy");
        // Commit (a rewrite renames a new file in: a new inode and txid + 1) during attempt 1.
        let src2 = src.clone();
        let c = copy_live_db(&src, &dst, move |a| {
            if a == 1 {
                let db = BoltDb::open(&src2).unwrap();
                let mut e = Edits::new();
                e.put(b"key", b"zz", b"new").unwrap();
                bolt::rewrite(&db, &e, &src2).unwrap();
            }
        })
        .unwrap()
        .unwrap();
        assert_eq!(c.attempts, 2);
        let copy = BoltDb::open(&dst).unwrap();
        let kb = copy.bucket(b"key").unwrap().unwrap();
        assert_eq!(copy.get(&kb, b"zz").unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(
            c.hash.wait().unwrap(),
            etcd_disk::snapshot::hex(&Sha256::digest(std::fs::read(&dst).unwrap()))
        );
    }

    #[test]
    fn a_db_that_never_holds_still_gives_up_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("db");
        db_with(&src, 100);
        let dst = d.path().join("copy");
        let src2 = src.clone();
        let r = copy_live_db(&src, &dst, move |_| {
            // bump the txid in place: write the newest meta again with txid + 1 in the other slot
            let db = BoltDb::open(&src2).unwrap();
            let m = *db.meta();
            let next = etcd_disk::bolt::Meta {
                txid: m.txid + 1,
                checksum: 0,
                ..m
            }
            .with_checksum();
            let f = OpenOptions::new().write(true).open(&src2).unwrap();
            let slot = next.txid % 2;
            f.write_all_at(&next.encode(), slot * 4096 + 16).unwrap();
        })
        .unwrap();
        let moved = r.unwrap_err();
        assert_eq!(moved.len(), ATTEMPTS as usize);
        assert!(matches!(moved[0], Moved::Committed(a, b) if b == a + 1));
        assert!(!dst.exists());
    }

    #[test]
    fn a_torn_source_is_an_error_not_a_copy() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("db");
        db_with(&src, 2000);
        let f = OpenOptions::new().write(true).open(&src).unwrap();
        f.set_len(8192).unwrap();
        let dst = d.path().join("copy");
        let e = copy_live_db(&src, &dst, |_| {}).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::BadInput, "{e}");
        assert!(!dst.exists());
    }
}
