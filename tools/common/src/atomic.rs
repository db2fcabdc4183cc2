//! Crash-safe file writing: `NAME.part` → fsync → rename → fsync the directory, and one owner
//! per target.
//!
//! Every `.part` path in flight is registered, so that the runner can remove them when a
//! signal arrives; a dropped (uncommitted) [`AtomicFile`] removes its `.part` itself.
//!
//! - **One owner per target** ([`claim`]): before a tool writes any byte of an output (a
//!   snapshot file, a data dir, a backup dir or archive), it takes `TARGET.lock`, a regular
//!   file beside the target, with `flock(LOCK_EX|LOCK_NB)` held for the whole run and its pid
//!   written in it. A second run on the same target gets exit 7 naming the holder's pid, before
//!   it wrote anything. The kernel drops the lock when its holder dies (even by SIGKILL), so a
//!   `.part` found while holding the claim was left by a dead run: [`Claim::clear_part`]
//!   removes it (a regular file or a directory; anything else is refused). The lock file is
//!   unlinked on release; a run that locked a lock file unlinked meanwhile notices (the path
//!   names another inode) and starts over.
//! - **Never follow, never clobber**: `.part` files are created with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW`, so a planted symlink, FIFO or device node at `.part` makes
//!   the create fail instead of writing through it; [`check_target_file`] refuses a target that
//!   exists and is not a regular file (exit 7), and an existing regular one unless the caller
//!   moves it aside to `NAME.prev` ([`AtomicFile::commit_moving_aside`]).

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

static IN_FLIGHT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Set once a SIGINT/SIGTERM arrived ([`cancel`]): from then on nothing new is created and
/// nothing is renamed into place.
static CANCELLED: AtomicBool = AtomicBool::new(false);
/// Held while something is renamed into place, and by [`cancel`]: a rename into place happens
/// entirely before the cancellation or not at all.
static COMMIT: Mutex<()> = Mutex::new(());
/// Blocking tasks writing partial files ([`Writer`]): the runner waits for them to stop before
/// it removes what they wrote.
static WRITERS: AtomicUsize = AtomicUsize::new(0);

fn commit_lock() -> std::sync::MutexGuard<'static, ()> {
    COMMIT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stop every write in progress (called by the runner on SIGINT/SIGTERM): once it returns, no
/// rename into place ([`rename_noreplace`]) can happen any more, and every checkpoint
/// ([`check_cancelled`], the creation and write primitives of this module) fails, so the
/// writers stop and their partial files can be removed for good.
pub fn cancel() {
    let _g = commit_lock();
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Whether the run was cancelled by a signal.
pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// A checkpoint: fails (kind Interrupted) once the run was cancelled. Long copies call it
/// between chunks.
pub fn check_cancelled() -> Result<()> {
    if cancelled() {
        Err(Error::new(
            crate::error::ErrorKind::Interrupted,
            "interrupted: stopped before finishing",
        ))
    } else {
        Ok(())
    }
}

fn cancelled_io() -> io::Result<()> {
    if cancelled() {
        // Not ErrorKind::Interrupted: write_all and friends retry that forever.
        Err(io::Error::other("interrupted: stopped before finishing"))
    } else {
        Ok(())
    }
}

/// Held by a blocking task while it writes partial files (see [`writer`]).
#[derive(Debug)]
pub struct Writer(());

/// Count the calling task as a writer until the guard is dropped: on a signal the runner waits
/// (boundedly) for every writer to stop at a checkpoint before it removes the partial files,
/// so that none is written again after it was removed.
pub fn writer() -> Writer {
    WRITERS.fetch_add(1, Ordering::SeqCst);
    Writer(())
}

impl Drop for Writer {
    fn drop(&mut self) {
        WRITERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many writers ([`writer`]) are running.
pub fn writers_busy() -> usize {
    WRITERS.load(Ordering::SeqCst)
}

fn register(p: &Path) {
    if let Ok(mut s) = IN_FLIGHT.lock() {
        s.insert(p.to_path_buf());
    }
}

fn unregister(p: &Path) {
    if let Ok(mut s) = IN_FLIGHT.lock() {
        s.remove(p);
    }
}

/// Create a new file (read and write) with exactly `mode`, failing if `path` exists. The file
/// never has a wider mode than `mode`, not even for a moment (it is created with it; the
/// explicit chmod only undoes the umask). The error names the path.
/// Never follows a symlink (`O_NOFOLLOW`): a planted link, FIFO or device node at `path` makes it
/// fail (exit 7) instead of writing through it.
pub fn create_new(path: &Path, mode: u32) -> Result<File> {
    check_cancelled()?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(mode)
        .open(path)
        .map_err(|e| create_error(path, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("cannot chmod {}: {e}", path.display())))?;
    Ok(f)
}

fn create_error(path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::AlreadyExists {
        let what = match std::fs::symlink_metadata(path) {
            Ok(m) => describe_type(&m),
            Err(_) => "something",
        };
        Error::refused(format!(
            "cannot create {}: {what} is already there (never written through; nothing was changed)",
            path.display()
        ))
    } else {
        Error::io(format!("cannot create {}: {e}", path.display()))
    }
}

/// What kind of file a metadata describes, in words.
pub fn describe_type(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_symlink() {
        "a symlink"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else {
        "a special file"
    }
}

/// Open an existing file for reading without following a symlink at its last component, and
/// require a regular file (for the files of a backup, which may have been tampered with).
pub fn open_regular(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                Error::bad_input(format!(
                    "{}: a symlink, not a regular file (refused)",
                    path.display()
                ))
            } else if e.kind() == io::ErrorKind::NotFound {
                Error::bad_input(format!("cannot open {}: {e}", path.display()))
            } else {
                Error::io(format!("cannot open {}: {e}", path.display()))
            }
        })?;
    let m = f
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}: {e}", path.display())))?;
    if !m.is_file() {
        return Err(Error::bad_input(format!(
            "{}: {}, not a regular file (refused)",
            path.display(),
            describe_type(&m)
        )));
    }
    Ok(f)
}

/// What to do with an existing target file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Nothing is there.
    None,
    /// A regular file is there: it is moved to this path (`NAME.prev`) when the new one is
    /// committed.
    MoveAside(PathBuf),
}

/// `NAME.prev`, where an existing target is moved aside.
pub fn prev_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".prev");
    PathBuf::from(s)
}

/// Check an output file's path before writing it: a symlink, directory, FIFO, socket or device
/// node is refused (exit 7: it is never written through nor replaced); an existing regular file
/// is refused unless `force`, which moves it aside to `NAME.prev` at commit.
pub fn check_target_file(path: &Path, force: bool) -> Result<Existing> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::None),
        Err(e) => Err(Error::io(format!("cannot stat {}: {e}", path.display()))),
        Ok(m) if m.is_file() => {
            if force {
                Ok(Existing::MoveAside(prev_path(path)))
            } else {
                Err(Error::refused(format!(
                    "{} exists: give --force to move it aside to {} (nothing was changed)",
                    path.display(),
                    prev_path(path).display()
                )))
            }
        }
        Ok(m) => Err(Error::refused(format!(
            "{} is {}, not a regular file: refusing to write there (nothing was changed)",
            path.display(),
            describe_type(&m)
        ))),
    }
}

/// Create a directory (and its missing parents) with mode exactly 0700, whatever the umask.
/// Existing directories are left as they are.
pub fn mkdir_0700(path: &Path) -> Result<()> {
    mkdir_0700_created(path).map(|_| ())
}

/// [`mkdir_0700`], returning the directories it created (outermost first), for a caller that
/// removes them again when it fails ([`remove_created`]).
pub fn mkdir_0700_created(path: &Path) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    let mut missing = Vec::new();
    let mut p = Some(path);
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::symlink_metadata(d) {
            Ok(_) => break,
            Err(_) => missing.push(d.to_path_buf()),
        }
        p = d.parent();
    }
    for d in missing.iter().rev() {
        check_cancelled()?;
        match std::fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {
                created.push(d.clone());
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| Error::io(format!("cannot chmod {}: {e}", d.display())))?
            }
            // Made by someone else meanwhile: fine if it is a directory.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(Error::io(format!("cannot create {}: {e}", d.display()))),
        }
    }
    if !path.is_dir() {
        return Err(Error::io(format!("{}: not a directory", path.display())));
    }
    Ok(created)
}

/// Remove the directories [`mkdir_0700_created`] made, innermost first, each only if empty.
pub fn remove_created(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// The lock file of a target: `TARGET.lock`, beside it.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Exclusive ownership of one output target for the run (see the module docs). Released (the
/// lock file unlinked, then closed) on drop; the kernel releases it if the process dies.
#[derive(Debug)]
pub struct Claim {
    file: File,
    lock: PathBuf,
    target: PathBuf,
}

fn flock_nb(f: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Take the claim on `target` (exit 7 naming the holder when another run has it).
pub fn claim(target: &Path) -> Result<Claim> {
    let lock = lock_path(target);
    for _ in 0..50 {
        // Never open a FIFO or device planted at the lock path (opening may block or act).
        match std::fs::symlink_metadata(&lock) {
            Ok(m) if !m.is_file() => {
                return Err(Error::refused(format!(
                    "{} is {}, not our lock file: refusing to use {} (nothing was changed)",
                    lock.display(),
                    describe_type(&m),
                    target.display()
                )))
            }
            _ => {}
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&lock)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    Error::refused(format!(
                        "{} is a symlink, not our lock file (nothing was changed)",
                        lock.display()
                    ))
                } else {
                    Error::io(format!("cannot open lock file {}: {e}", lock.display()))
                }
            })?;
        let fm = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}: {e}", lock.display())))?;
        if !fm.is_file() {
            return Err(Error::refused(format!(
                "{} is {}, not our lock file (nothing was changed)",
                lock.display(),
                describe_type(&fm)
            )));
        }
        let got = flock_nb(&file)
            .map_err(|e| Error::io(format!("cannot lock {}: {e}", lock.display())))?;
        if !got {
            // The holder writes its pid right after it locked: give it a moment. A holder
            // that ended meanwhile unlinked the lock file: then this is no refusal, start over.
            let mut pid = None;
            let mut released = false;
            for _ in 0..20 {
                match std::fs::symlink_metadata(&lock) {
                    Ok(m) if m.dev() == fm.dev() && m.ino() == fm.ino() => {}
                    _ => {
                        released = true;
                        break;
                    }
                }
                pid = std::fs::read_to_string(&lock)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok());
                if pid.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if released {
                continue;
            }
            let holder = pid.map_or("a process".to_string(), |p| format!("pid {p}"));
            return Err(Error::refused(format!(
                "{} is being written by another run ({holder}, holding {}): nothing was changed",
                target.display(),
                lock.display()
            )));
        }
        // The lock file may have been released (unlinked) between our open and our lock:
        // then the path names another inode or nothing, and we start over.
        match std::fs::symlink_metadata(&lock) {
            Ok(m) if m.dev() == fm.dev() && m.ino() == fm.ino() => {}
            _ => continue,
        }
        // On SIGINT/SIGTERM the runner exits without dropping us: remove the lock file then.
        register(&lock);
        let c = Claim {
            file,
            lock,
            target: target.to_path_buf(),
        };
        // Fixed width, written in place: a reader never sees a half-replaced number.
        let pid = format!("{:>10}\n", std::process::id());
        let _ = std::os::unix::fs::FileExt::write_all_at(&c.file, pid.as_bytes(), 0);
        return Ok(c);
    }
    Err(Error::refused(format!(
        "{}: could not take {} (other runs keep taking it)",
        target.display(),
        lock.display()
    )))
}

impl Claim {
    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn lock_path(&self) -> &Path {
        &self.lock
    }

    /// Remove `path` (usually the target's `.part`), left by a dead run: only a holder of the
    /// claim may call this, so no live run is writing it. A regular file or a directory is
    /// removed (returned, for a warning); a symlink, FIFO, socket or device node is refused
    /// (we did not make it).
    pub fn clear_part(&self, path: &Path) -> Result<Option<PathBuf>> {
        let m = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot stat {}: {e}", path.display()))),
            Ok(m) => m,
        };
        let r = if m.is_file() {
            std::fs::remove_file(path)
        } else if m.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            return Err(Error::refused(format!(
                "{} is {}, not a leftover of ours: remove it first (nothing was changed)",
                path.display(),
                describe_type(&m)
            )));
        };
        r.map_err(|e| {
            Error::io(format!(
                "cannot remove {}, left by an interrupted run: {e}",
                path.display()
            ))
        })?;
        Ok(Some(path.to_path_buf()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Unlink while still holding the lock, so that nobody holds a lock on a name that a
        // third run could recreate; a waiter that opened the old inode sees it is gone.
        if let Ok(m) = std::fs::symlink_metadata(&self.lock) {
            if let Ok(fm) = self.file.metadata() {
                if m.dev() == fm.dev() && m.ino() == fm.ino() {
                    let _ = std::fs::remove_file(&self.lock);
                }
            }
        }
        unregister(&self.lock);
    }
}

/// Register a temporary path (file or directory) to be removed if the process is interrupted.
pub fn track_partial(p: &Path) {
    register(p)
}

/// Stop tracking a temporary path (it was renamed into place or removed).
pub fn untrack_partial(p: &Path) {
    unregister(p)
}

/// Remove every registered partial file or directory (called on SIGINT/SIGTERM).
pub fn remove_all_partials() {
    let paths: Vec<PathBuf> = match IN_FLIGHT.lock() {
        Ok(mut s) => std::mem::take(&mut *s).into_iter().collect(),
        Err(_) => return,
    };
    for p in paths {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir_all(&p);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&p);
            }
            Err(_) => {}
        }
    }
}

/// The `.part` name next to `path`.
pub fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// fsync a directory, so that a rename or create in it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    let d = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(d)?.sync_all()
}

/// The parent directory of a path ("." for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A file being written under a temporary name. `commit` makes it appear under its final
/// name atomically; dropping it uncommitted removes the temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    part: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Create `dest.part` with `mode` (e.g. 0o600), exclusively and without following a
    /// symlink (`O_CREAT|O_EXCL|O_NOFOLLOW`): an existing `.part` of any kind makes it fail
    /// (exit 7). A stale `.part` from a dead run is removed first by the holder of the target's
    /// [`Claim`] ([`Claim::clear_part`]).
    pub fn create(dest: &Path, mode: u32) -> Result<AtomicFile> {
        let part = part_path(dest);
        let file = create_new(&part, mode)?;
        register(&part);
        Ok(AtomicFile {
            file,
            part,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    pub fn part_path(&self) -> &Path {
        &self.part
    }

    pub fn dest_path(&self) -> &Path {
        &self.dest
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// fsync, rename to the final name, fsync the directory.
    pub fn commit(self) -> Result<()> {
        self.commit_moving_aside(&Existing::None)
    }

    /// [`commit`](Self::commit), moving an existing target aside first when `existing` says
    /// so (it is checked again: only a regular file is moved).
    pub fn commit_moving_aside(mut self, existing: &Existing) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io(format!("cannot fsync {}: {e}", self.part.display())))?;
        if let Existing::MoveAside(prev) = existing {
            match std::fs::symlink_metadata(&self.dest) {
                Ok(m) if m.is_file() => {
                    if let Ok(pm) = std::fs::symlink_metadata(prev) {
                        if !pm.is_file() {
                            return Err(Error::refused(format!(
                                "{} is {}: cannot move {} aside there",
                                prev.display(),
                                describe_type(&pm),
                                self.dest.display()
                            )));
                        }
                    }
                    std::fs::rename(&self.dest, prev).map_err(|e| {
                        Error::io(format!(
                            "cannot move {} aside to {}: {e}",
                            self.dest.display(),
                            prev.display()
                        ))
                    })?;
                }
                Ok(m) => {
                    return Err(Error::refused(format!(
                        "{} became {}: refusing to replace it",
                        self.dest.display(),
                        describe_type(&m)
                    )))
                }
                Err(_) => {}
            }
        }
        if let Ok(m) = std::fs::symlink_metadata(&self.dest) {
            if !m.is_file() {
                return Err(Error::refused(format!(
                    "{} is {}, not a regular file: refusing to replace it",
                    self.dest.display(),
                    describe_type(&m)
                )));
            }
        }
        {
            let _g = commit_lock();
            rename_noreplace_locked(&self.part, &self.dest)?;
            self.committed = true;
            unregister(&self.part);
        }
        fsync_dir(&parent_of(&self.dest))
            .map_err(|e| Error::io(format!("cannot fsync dir of {}: {e}", self.dest.display())))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        cancelled_io()?;
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.part);
            unregister(&self.part);
        }
    }
}

/// Rename `from` to `to`, failing (exit 7) if `to` exists: `renameat2(RENAME_NOREPLACE)`, or a
/// check then `rename` on a filesystem without it. Never after a signal: the rename happens
/// entirely before [`cancel`] or fails (kind Interrupted).
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    let _g = commit_lock();
    rename_noreplace_locked(from, to)
}

/// [`rename_noreplace`], then `untrack` (no longer a partial) before a signal can look.
pub fn rename_noreplace_untrack(from: &Path, to: &Path, untrack: &Path) -> Result<()> {
    let _g = commit_lock();
    rename_noreplace_locked(from, to)?;
    unregister(untrack);
    Ok(())
}

fn rename_noreplace_locked(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    check_cancelled()?;
    let err = |e: io::Error| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Error::refused(format!(
                "cannot rename {} to {}: it appeared meanwhile (not replaced)",
                from.display(),
                to.display()
            ))
        } else {
            Error::io(format!(
                "cannot rename {} to {}: {e}",
                from.display(),
                to.display()
            ))
        }
    };
    let (Ok(f), Ok(t)) = (
        std::ffi::CString::new(from.as_os_str().as_bytes()),
        std::ffi::CString::new(to.as_os_str().as_bytes()),
    ) else {
        return Err(Error::usage(format!("{}: NUL in path", to.display())));
    };
    // SAFETY: two valid NUL-terminated strings; no memory is retained.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOSYS) {
        if std::fs::symlink_metadata(to).is_ok() {
            return Err(err(io::Error::from(io::ErrorKind::AlreadyExists)));
        }
        return std::fs::rename(from, to).map_err(err);
    }
    Err(err(e))
}

/// Write `bytes` to `dest` atomically with `mode`.
pub fn write_file(dest: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = AtomicFile::create(dest, mode)?;
    f.write_all(bytes)
        .map_err(|e| Error::io(format!("cannot write {}: {e}", f.part_path().display())))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// `remove_all_partials` acts on the process-wide registry, so these tests must not
    /// overlap: one would remove the other's in-flight `.part`.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[test]
    fn commit_renames_and_sets_mode() {
        let _g = serial();
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("snap.db");
        write_file(&dest, b"hello", 0o600).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!part_path(&dest).exists());
    }

    #[test]
    fn create_new_has_exactly_the_mode_and_refuses_an_existing_file() {
        let d = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o644] {
            let p = d.path().join(format!("f{mode:o}"));
            create_new(&p, mode).unwrap();
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                mode
            );
            let e = create_new(&p, mode).unwrap_err();
            assert!(e.message.contains(&p.display().to_string()), "{e}");
        }
    }

    #[test]
    fn drop_without_commit_removes_part_and_keeps_old() {
        let _g = serial();
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("f");
        std::fs::write(&dest, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&dest, 0o600).unwrap();
            f.write_all(b"new but unfinished").unwrap();
            assert!(part_path(&dest).exists());
        }
        assert!(!part_path(&dest).exists());
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    }

    #[test]
    fn a_claim_excludes_a_second_one_and_is_released_on_drop() {
        let _g = serial();
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("snap.db");
        let c = claim(&t).unwrap();
        // flock is per open file description: a second open in this process conflicts too.
        let e = claim(&t).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Refused);
        assert!(
            e.message
                .contains(&format!("another run (pid {}", std::process::id())),
            "{e}"
        );
        drop(c);
        assert!(!lock_path(&t).exists(), "the lock file goes with the claim");
        // A lock file left by a dead run (no holder) is simply taken.
        std::fs::write(lock_path(&t), b"    999999\n").unwrap();
        let c = claim(&t).unwrap();
        assert_eq!(
            std::fs::read_to_string(lock_path(&t)).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(c);
    }

    #[test]
    fn clear_part_removes_leftovers_and_refuses_what_we_did_not_make() {
        let _g = serial();
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("f");
        let c = claim(&t).unwrap();
        let part = part_path(&t);
        assert_eq!(c.clear_part(&part).unwrap(), None);
        std::fs::write(&part, b"half").unwrap();
        assert_eq!(c.clear_part(&part).unwrap(), Some(part.clone()));
        std::fs::create_dir(&part).unwrap();
        std::fs::write(part.join("x"), b"1").unwrap();
        assert!(c.clear_part(&part).unwrap().is_some() && !part.exists());
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, &part).unwrap();
        assert_eq!(
            c.clear_part(&part).unwrap_err().kind,
            crate::ErrorKind::Refused
        );
        // and AtomicFile never writes through it
        let e = AtomicFile::create(&t, 0o600).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Refused, "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn target_checks_and_move_aside() {
        let _g = serial();
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("f");
        assert_eq!(check_target_file(&t, false).unwrap(), Existing::None);
        std::fs::write(&t, b"old").unwrap();
        assert_eq!(
            check_target_file(&t, false).unwrap_err().kind,
            crate::ErrorKind::Refused
        );
        let ex = check_target_file(&t, true).unwrap();
        assert_eq!(ex, Existing::MoveAside(prev_path(&t)));
        let mut f = AtomicFile::create(&t, 0o600).unwrap();
        f.write_all(b"new").unwrap();
        f.commit_moving_aside(&ex).unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"new");
        assert_eq!(std::fs::read(prev_path(&t)).unwrap(), b"old");
        // Without a move aside, commit never replaces what is there.
        let mut f = AtomicFile::create(&t, 0o600).unwrap();
        f.write_all(b"newer").unwrap();
        assert_eq!(f.commit().unwrap_err().kind, crate::ErrorKind::Refused);
        assert_eq!(std::fs::read(&t).unwrap(), b"new");
        // Not a regular file: refused even with force.
        let l = d.path().join("link");
        std::os::unix::fs::symlink(&t, &l).unwrap();
        for force in [false, true] {
            assert_eq!(
                check_target_file(&l, force).unwrap_err().kind,
                crate::ErrorKind::Refused
            );
            assert_eq!(
                check_target_file(d.path(), force).unwrap_err().kind,
                crate::ErrorKind::Refused
            );
        }
    }

    #[test]
    fn mkdir_0700_is_0700_for_every_dir_it_creates() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        let made = mkdir_0700_created(&deep).unwrap();
        assert_eq!(made.len(), 3);
        for p in &made {
            assert_eq!(
                std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        assert!(mkdir_0700_created(&deep).unwrap().is_empty());
        remove_created(&made);
        assert!(!d.path().join("a").exists());
    }

    #[test]
    fn open_regular_refuses_links_and_fifos() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        open_regular(&f).unwrap();
        let l = d.path().join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(open_regular(&l).unwrap_err().message.contains("symlink"));
        let p = d.path().join("p");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(open_regular(&p).unwrap_err().message.contains("FIFO"));
    }

    #[test]
    fn remove_all_partials_cleans_registered_paths() {
        let _g = serial();
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("backup.part");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("x"), b"1").unwrap();
        track_partial(&dir);
        remove_all_partials();
        assert!(!dir.exists());
    }
}
