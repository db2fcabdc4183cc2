//! Crash-safe file writing: `NAME.part` → fsync → rename → fsync the directory.
//!
//! Every `.part` path in flight is registered, so that the runner can remove them when a
//! signal arrives; a dropped (uncommitted) [`AtomicFile`] removes its `.part` itself.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static IN_FLIGHT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

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
pub fn create_new(path: &Path, mode: u32) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", path.display())))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("cannot chmod {}: {e}", path.display())))?;
    Ok(f)
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
    /// Create `dest.part` with `mode` (e.g. 0o600), truncating a stale one from an earlier crash.
    pub fn create(dest: &Path, mode: u32) -> Result<AtomicFile> {
        let part = part_path(dest);
        register(&part);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&part)
            .map_err(|e| {
                unregister(&part);
                Error::io(format!("cannot create {}: {e}", part.display()))
            })?;
        // The mode given to open() is masked by the umask and ignored for an existing file.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("cannot chmod {}: {e}", part.display())))?;
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
    pub fn commit(mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io(format!("cannot fsync {}: {e}", self.part.display())))?;
        std::fs::rename(&self.part, &self.dest).map_err(|e| {
            Error::io(format!(
                "cannot rename {} to {}: {e}",
                self.part.display(),
                self.dest.display()
            ))
        })?;
        self.committed = true;
        unregister(&self.part);
        fsync_dir(&parent_of(&self.dest))
            .map_err(|e| Error::io(format!("cannot fsync dir of {}: {e}", self.dest.display())))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
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
