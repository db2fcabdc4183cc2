//! The layout of an etcd data dir, and whether a running etcd holds it.
//!
//! - [`inspect`]: where `member/`, the WAL dir (`member/wal` or a separate `--wal-dir`), the snap
//!   dir and the db are, whether they exist, and whether the dir is an etcd data dir at all
//!   (`member/wal` or `member/snap` present). Refuses `/` and symlinks on the way
//!   ([`LayoutError`]): a tool that moves or deletes `member/` must act on the real directory.
//! - [`probe_locks`]: the two lock probes of the spec (§1.1), which never block and never
//!   disturb a running etcd: a *shared* non-blocking `flock` on `member/snap/db` (bbolt holds
//!   `LOCK_EX` for the backend's lifetime) and an `F_OFD_GETLK` query with `F_WRLCK` on the
//!   newest `.wal` (etcd holds an OFD write lock on the tail segment). flock and OFD locks do
//!   not conflict with each other on Linux, so each file is probed with its own mechanism.
//!   Holders are looked up in `/proc/locks` (best effort: a flock names its pid, an OFD lock
//!   does not).

use crate::error::{DiskError, Result};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Where the parts of a data dir are (whether or not they exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The data dir as given (made absolute).
    pub data_dir: PathBuf,
    /// `<data_dir>/member`.
    pub member_dir: PathBuf,
    /// `<data_dir>/member/wal`, or the separate WAL dir.
    pub wal_dir: PathBuf,
    /// True when the WAL dir is not `member/wal` (etcd's `--wal-dir`).
    pub separate_wal: bool,
    /// `<data_dir>/member/snap`.
    pub snap_dir: PathBuf,
    /// `<data_dir>/member/snap/db`.
    pub db: PathBuf,
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub layout: Layout,
    /// The data dir exists (as a directory).
    pub data_dir_exists: bool,
    /// `member/` exists.
    pub member_exists: bool,
    /// `member/wal` (or the separate WAL dir) exists.
    pub wal_dir_exists: bool,
    /// `member/snap` exists.
    pub snap_dir_exists: bool,
    /// `member/snap/db` exists.
    pub db_exists: bool,
    /// The `.wal` segments of the WAL dir, sorted by name (oldest first).
    pub wal_segments: Vec<PathBuf>,
    /// Entries of the data dir other than `member` (names).
    pub other_entries: Vec<String>,
}

impl Inspection {
    /// An etcd data dir: `member/` with `member/wal` or `member/snap` (or a separate WAL dir
    /// holding segments).
    pub fn is_etcd(&self) -> bool {
        self.member_exists
            && (self.snap_dir_exists
                || (self.wal_dir_exists && !self.layout.separate_wal)
                || !self.wal_segments.is_empty())
    }

    /// The newest (tail) WAL segment.
    pub fn newest_wal(&self) -> Option<&Path> {
        self.wal_segments.last().map(PathBuf::as_path)
    }
}

/// Why a path cannot be treated as a data dir.
#[derive(Debug)]
pub enum LayoutError {
    /// The path is `/` (or resolves to it).
    Root(PathBuf),
    /// A part that would be moved or deleted is a symlink (moving the link leaves the data in
    /// place; deleting through it deletes elsewhere).
    Symlink { path: PathBuf, target: PathBuf },
    /// Exists but is not a directory.
    NotADirectory(PathBuf),
    /// The operating system said no.
    Io(DiskError),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Root(p) => write!(
                f,
                "{}: refusing to treat / as an etcd data dir",
                p.display()
            ),
            LayoutError::Symlink { path, target } => write!(
                f,
                "{} is a symlink to {}: refusing (give the real directory)",
                path.display(),
                target.display()
            ),
            LayoutError::NotADirectory(p) => write!(f, "{} is not a directory", p.display()),
            LayoutError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// `path` made absolute (against the current dir) and lexically normalized (`.` and `..`
/// removed), without following symlinks.
pub fn absolute(path: &Path) -> io::Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

fn is_root(p: &Path) -> bool {
    p.components().all(|c| matches!(c, Component::RootDir))
}

/// `Some(metadata)` when `p` exists (without following a final symlink).
fn lstat(p: &Path) -> std::result::Result<Option<std::fs::Metadata>, LayoutError> {
    match std::fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LayoutError::Io(DiskError::io(p, e))),
    }
}

/// Exists as a real directory (`Ok(false)` when absent; errors for symlinks and files).
fn real_dir(p: &Path) -> std::result::Result<bool, LayoutError> {
    match lstat(p)? {
        None => Ok(false),
        Some(m) if m.file_type().is_symlink() => Err(LayoutError::Symlink {
            path: p.to_path_buf(),
            target: std::fs::read_link(p).unwrap_or_default(),
        }),
        Some(m) if m.is_dir() => Ok(true),
        Some(_) => Err(LayoutError::NotADirectory(p.to_path_buf())),
    }
}

/// WAL segment names as etcd parses them: `%016x-%016x.wal`.
pub fn is_wal_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".wal") else {
        return false;
    };
    let b = stem.as_bytes();
    b.len() == 33
        && b[16] == b'-'
        && b[..16]
            .iter()
            .chain(&b[17..])
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// The `.wal` segments of a dir, sorted by name (= by sequence number).
pub fn wal_segments(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DiskError::io(dir, e)),
    };
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| DiskError::io(dir, e))?;
        if let Some(n) = ent.file_name().to_str() {
            if is_wal_name(n) {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// Look at a data dir (and a separate WAL dir when etcd runs with `--wal-dir`).
///
/// The data dir itself may be a symlink (a mount elsewhere is common); `member/`,
/// `member/wal`, `member/snap` and a separate WAL dir must be real directories.
pub fn inspect(
    data_dir: &Path,
    wal_dir: Option<&Path>,
) -> std::result::Result<Inspection, LayoutError> {
    let abs = absolute(data_dir).map_err(|e| LayoutError::Io(DiskError::io(data_dir, e)))?;
    if is_root(&abs) {
        return Err(LayoutError::Root(data_dir.to_path_buf()));
    }
    // Resolve a symlinked data dir to the real one, and refuse when that is `/`.
    let data_dir_exists = match lstat(&abs)? {
        None => false,
        Some(m) if m.file_type().is_symlink() => {
            let real =
                std::fs::canonicalize(&abs).map_err(|e| LayoutError::Io(DiskError::io(&abs, e)))?;
            if is_root(&real) {
                return Err(LayoutError::Root(data_dir.to_path_buf()));
            }
            if !real.is_dir() {
                return Err(LayoutError::NotADirectory(abs));
            }
            true
        }
        Some(m) if m.is_dir() => true,
        Some(_) => return Err(LayoutError::NotADirectory(abs)),
    };
    let member_dir = abs.join("member");
    let default_wal = member_dir.join("wal");
    let (wal, separate) = match wal_dir {
        Some(w) => {
            let w = absolute(w).map_err(|e| LayoutError::Io(DiskError::io(w, e)))?;
            if is_root(&w) {
                return Err(LayoutError::Root(w));
            }
            let sep = w != default_wal;
            (w, sep)
        }
        None => (default_wal, false),
    };
    let snap_dir = member_dir.join("snap");
    let layout = Layout {
        data_dir: abs.clone(),
        db: snap_dir.join("db"),
        member_dir: member_dir.clone(),
        wal_dir: wal.clone(),
        separate_wal: separate,
        snap_dir: snap_dir.clone(),
    };
    let mut other_entries = Vec::new();
    if data_dir_exists {
        let rd = std::fs::read_dir(&abs).map_err(|e| LayoutError::Io(DiskError::io(&abs, e)))?;
        for ent in rd {
            let ent = ent.map_err(|e| LayoutError::Io(DiskError::io(&abs, e)))?;
            let n = ent.file_name().to_string_lossy().to_string();
            if n != "member" {
                other_entries.push(n);
            }
        }
        other_entries.sort();
    }
    let member_exists = data_dir_exists && real_dir(&member_dir)?;
    let snap_dir_exists = member_exists && real_dir(&snap_dir)?;
    let wal_dir_exists = if separate {
        real_dir(&wal)?
    } else {
        member_exists && real_dir(&wal)?
    };
    let db_exists = snap_dir_exists && lstat(&layout.db)?.is_some();
    let wal_segments = if wal_dir_exists {
        wal_segments(&wal).map_err(LayoutError::Io)?
    } else {
        Vec::new()
    };
    Ok(Inspection {
        layout,
        data_dir_exists,
        member_exists,
        wal_dir_exists,
        snap_dir_exists,
        db_exists,
        wal_segments,
        other_entries,
    })
}

/// The state of one lock probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds a conflicting lock.
    Free,
    /// A conflicting lock is held (a running etcd, or another writer).
    Held,
    /// The file does not exist (nothing to probe).
    Missing,
}

/// Which mechanism a probe used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// `flock(LOCK_SH|LOCK_NB)`, released at once.
    FlockShared,
    /// `fcntl(F_OFD_GETLK)` with `F_WRLCK`: a query, takes no lock.
    OfdQuery,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::FlockShared => "flock",
            ProbeKind::OfdQuery => "ofd",
        }
    }
}

/// One lock probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockProbe {
    pub path: PathBuf,
    pub kind: ProbeKind,
    pub state: LockState,
    /// Processes holding a lock on the file, from `/proc/locks` (flock holders only: OFD locks
    /// have no owner pid), with their command names when readable.
    pub holders: Vec<(i32, String)>,
}

impl LockProbe {
    pub fn held(&self) -> bool {
        self.state == LockState::Held
    }

    /// `member/snap/db (flock held by pid 123 etcd)`.
    pub fn describe(&self) -> String {
        let state = match self.state {
            LockState::Free => "free",
            LockState::Held => "held",
            LockState::Missing => "missing",
        };
        let mut s = format!("{} ({} {state}", self.path.display(), self.kind.as_str());
        if !self.holders.is_empty() {
            let hs: Vec<String> = self
                .holders
                .iter()
                .map(|(pid, comm)| {
                    if comm.is_empty() {
                        format!("pid {pid}")
                    } else {
                        format!("pid {pid} {comm}")
                    }
                })
                .collect();
            s.push_str(" by ");
            s.push_str(&hs.join(", "));
        }
        s.push(')');
        s
    }
}

/// Both probes of a data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockReport {
    /// `member/snap/db`.
    pub db: LockProbe,
    /// The newest `.wal` (None when the WAL dir has no segment).
    pub wal: Option<LockProbe>,
}

impl LockReport {
    /// Anything held: etcd (or another writer) still has the dir.
    pub fn held(&self) -> bool {
        self.db.held() || self.wal.as_ref().is_some_and(LockProbe::held)
    }

    /// The held probes, described (empty when free).
    pub fn describe_held(&self) -> String {
        let mut parts = Vec::new();
        if self.db.held() {
            parts.push(self.db.describe());
        }
        if let Some(w) = self.wal.as_ref().filter(|w| w.held()) {
            parts.push(w.describe());
        }
        parts.join(", ")
    }

    /// A pid that holds the db flock, when `/proc/locks` named one.
    pub fn holder_pid(&self) -> Option<i32> {
        self.db.holders.first().map(|(p, _)| *p)
    }
}

fn open_ro(path: &Path) -> Result<Option<File>> {
    match crate::error::open_regular(path) {
        Ok(f) => Ok(Some(f)),
        Err(DiskError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `flock(path, LOCK_SH|LOCK_NB)`, released immediately: `Held` when an exclusive flock is held
/// (bbolt's `LOCK_EX` on `member/snap/db`). Never blocks; a concurrent reader that also takes
/// `LOCK_SH` is not disturbed, and etcd's bbolt open retries its `LOCK_EX` so a probe that
/// happens at the same moment only delays it by one retry.
pub fn probe_flock(path: &Path) -> Result<LockProbe> {
    let Some(f) = open_ro(path)? else {
        return Ok(LockProbe {
            path: path.to_path_buf(),
            kind: ProbeKind::FlockShared,
            state: LockState::Missing,
            holders: vec![],
        });
    };
    // SAFETY: flock on a valid open fd, no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    let state = if rc == 0 {
        // SAFETY: as above; closing the file would release it too.
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        LockState::Free
    } else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            LockState::Held
        } else {
            return Err(DiskError::io(path, e));
        }
    };
    let holders = if state == LockState::Held {
        lock_holders(&f)
    } else {
        Vec::new()
    };
    Ok(LockProbe {
        path: path.to_path_buf(),
        kind: ProbeKind::FlockShared,
        state,
        holders,
    })
}

/// `fcntl(path, F_OFD_GETLK)` asking for a whole-file `F_WRLCK`: `Held` when any lock would
/// conflict (etcd's OFD write lock on the WAL tail). A query: it takes no lock. Opening and
/// closing our own descriptor does not release locks of other open file descriptions.
pub fn probe_ofd(path: &Path) -> Result<LockProbe> {
    let Some(f) = open_ro(path)? else {
        return Ok(LockProbe {
            path: path.to_path_buf(),
            kind: ProbeKind::OfdQuery,
            state: LockState::Missing,
            holders: vec![],
        });
    };
    // SAFETY: an all-zero `struct flock` is a valid value (plain integers).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl.l_pid = 0;
    // SAFETY: F_OFD_GETLK reads and writes the `struct flock` we own for the call's duration.
    let rc = unsafe {
        libc::fcntl(
            f.as_raw_fd(),
            libc::F_OFD_GETLK,
            &mut fl as *mut libc::flock,
        )
    };
    if rc != 0 {
        return Err(DiskError::io(path, io::Error::last_os_error()));
    }
    let state = if i32::from(fl.l_type) == libc::F_UNLCK {
        LockState::Free
    } else {
        LockState::Held
    };
    let holders = if state == LockState::Held {
        let mut h = lock_holders(&f);
        if fl.l_pid > 0 && !h.iter().any(|(p, _)| *p == fl.l_pid) {
            h.push((fl.l_pid, comm(fl.l_pid)));
        }
        h
    } else {
        Vec::new()
    };
    Ok(LockProbe {
        path: path.to_path_buf(),
        kind: ProbeKind::OfdQuery,
        state,
        holders,
    })
}

/// Both probes of §1.1 on an inspected data dir: the db and the newest WAL segment.
pub fn probe_locks(ins: &Inspection) -> Result<LockReport> {
    let db = probe_flock(&ins.layout.db)?;
    let wal = match ins.newest_wal() {
        Some(w) => Some(probe_ofd(w)?),
        None => None,
    };
    Ok(LockReport { db, wal })
}

/// The command name of a process (`/proc/PID/comm`), empty when unreadable.
pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Pids holding a lock on the open file, from `/proc/locks` (matched by device and inode).
fn lock_holders(f: &File) -> Vec<(i32, String)> {
    let Ok(md) = f.metadata() else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let dev = md.dev();
    let want = (libc::major(dev) as u64, libc::minor(dev) as u64, md.ino());
    parse_proc_locks(&text, want)
        .into_iter()
        .map(|p| (p, comm(p)))
        .collect()
}

/// Owner pids (> 0) of the non-blocked locks in `/proc/locks` text on `(major, minor, inode)`.
pub fn parse_proc_locks(text: &str, want: (u64, u64, u64)) -> Vec<i32> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let _id = f.next();
        let Some(kind) = f.next() else { continue };
        if kind == "->" {
            continue; // a waiter, not a holder
        }
        let (_adv, _rw, pid, file) = (f.next(), f.next(), f.next(), f.next());
        let (Some(pid), Some(file)) = (pid.and_then(|p| p.parse::<i32>().ok()), file) else {
            continue;
        };
        let parts: Vec<&str> = file.split(':').collect();
        if parts.len() != 3 {
            continue;
        }
        let (Ok(maj), Ok(min), Ok(ino)) = (
            u64::from_str_radix(parts[0], 16),
            u64::from_str_radix(parts[1], 16),
            parts[2].parse::<u64>(),
        ) else {
            continue;
        };
        if (maj, min, ino) == want && pid > 0 && !out.contains(&pid) {
            out.push(pid);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn etcd_dir(root: &Path) -> PathBuf {
        let d = root.join("d");
        fs::create_dir_all(d.join("member/wal")).unwrap();
        fs::create_dir_all(d.join("member/snap")).unwrap();
        fs::write(d.join("member/snap/db"), b"db").unwrap();
        fs::write(
            d.join("member/wal/0000000000000000-0000000000000000.wal"),
            b"w0",
        )
        .unwrap();
        fs::write(
            d.join("member/wal/0000000000000001-00000000000000ba.wal"),
            b"w1",
        )
        .unwrap();
        fs::write(d.join("member/wal/0.tmp"), b"t").unwrap();
        d
    }

    #[test]
    fn wal_names() {
        assert!(is_wal_name("0000000000000001-00000000000000ba.wal"));
        assert!(!is_wal_name("0000000000000001-00000000000000BA.wal"));
        assert!(!is_wal_name("0.tmp"));
        assert!(!is_wal_name("0000000000000001-00000000000000ba.wal.broken"));
    }

    #[test]
    fn inspects_an_etcd_dir() {
        let t = tempfile::tempdir().unwrap();
        let d = etcd_dir(t.path());
        let ins = inspect(&d, None).unwrap();
        assert!(ins.is_etcd());
        assert!(ins.db_exists && ins.snap_dir_exists && ins.wal_dir_exists);
        assert_eq!(ins.wal_segments.len(), 2);
        assert!(ins
            .newest_wal()
            .unwrap()
            .ends_with("0000000000000001-00000000000000ba.wal"));
        let l = probe_locks(&ins).unwrap();
        assert!(!l.held(), "{l:?}");
        assert_eq!(l.db.state, LockState::Free);
    }

    #[test]
    fn not_etcd_root_and_symlinks() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(
            inspect(Path::new("/"), None),
            Err(LayoutError::Root(_))
        ));
        assert!(matches!(
            inspect(Path::new("/tmp/../"), None),
            Err(LayoutError::Root(_))
        ));
        let plain = t.path().join("plain");
        fs::create_dir_all(plain.join("member/other")).unwrap();
        let ins = inspect(&plain, None).unwrap();
        assert!(ins.member_exists && !ins.is_etcd());
        let missing = inspect(&t.path().join("nope"), None).unwrap();
        assert!(!missing.data_dir_exists && !missing.is_etcd());
        let d = etcd_dir(t.path());
        let link = t.path().join("link");
        fs::create_dir_all(&link).unwrap();
        symlink(d.join("member"), link.join("member")).unwrap();
        assert!(matches!(
            inspect(&link, None),
            Err(LayoutError::Symlink { .. })
        ));
        // A symlinked data dir is fine (a mount elsewhere).
        let dlink = t.path().join("dlink");
        symlink(&d, &dlink).unwrap();
        assert!(inspect(&dlink, None).unwrap().is_etcd());
        let rootlink = t.path().join("rootlink");
        symlink("/", &rootlink).unwrap();
        assert!(matches!(
            inspect(&rootlink, None),
            Err(LayoutError::Root(_))
        ));
    }

    #[test]
    fn separate_wal_dir() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        fs::create_dir_all(d.join("member/snap")).unwrap();
        let w = t.path().join("w");
        fs::create_dir_all(&w).unwrap();
        fs::write(w.join("0000000000000000-0000000000000000.wal"), b"x").unwrap();
        let ins = inspect(&d, Some(&w)).unwrap();
        assert!(ins.layout.separate_wal && ins.is_etcd());
        assert_eq!(ins.wal_segments.len(), 1);
        let same = inspect(&d, Some(&d.join("member/wal"))).unwrap();
        assert!(!same.layout.separate_wal);
    }

    #[test]
    fn probes_see_our_own_locks() {
        let t = tempfile::tempdir().unwrap();
        let d = etcd_dir(t.path());
        let ins = inspect(&d, None).unwrap();
        // Hold the db the way bbolt does (another open file description: flock conflicts).
        let db = File::open(&ins.layout.db).unwrap();
        assert_eq!(
            unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        let l = probe_locks(&ins).unwrap();
        assert!(l.db.held());
        assert!(
            l.db.holders
                .iter()
                .any(|(p, _)| *p == std::process::id() as i32),
            "{:?}",
            l.db
        );
        drop(db);
        assert!(!probe_locks(&ins).unwrap().held());
        // An OFD write lock on the tail segment, like etcd's.
        let w = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(ins.newest_wal().unwrap())
            .unwrap();
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        assert_eq!(
            unsafe {
                libc::fcntl(
                    w.as_raw_fd(),
                    libc::F_OFD_SETLK,
                    &mut fl as *mut libc::flock,
                )
            },
            0
        );
        let l = probe_locks(&ins).unwrap();
        assert!(l.held() && !l.db.held());
        assert!(
            l.describe_held().contains(".wal (ofd held"),
            "{}",
            l.describe_held()
        );
        drop(w);
        assert!(!probe_locks(&ins).unwrap().held());
    }

    #[test]
    fn proc_locks_lines() {
        let text = "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF\n\
                    2: OFDLCK ADVISORY  WRITE -1 08:01:99 0 EOF\n\
                    3: -> FLOCK  ADVISORY  WRITE 77 08:01:1234 0 EOF\n\
                    garbage\n";
        assert_eq!(parse_proc_locks(text, (8, 1, 1234)), vec![4242]);
        assert!(parse_proc_locks(text, (8, 1, 99)).is_empty());
    }
}
