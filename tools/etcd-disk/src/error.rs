//! The one error type of etcd-disk. Every error names the file and, where it applies, the
//! byte offset, so that a caller can print one clear line.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = DiskError> = std::result::Result<T, E>;

/// What went wrong reading or writing etcd's on-disk formats.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The bytes are not what the format allows: bad CRC, bad protobuf, bad page, cut short.
    #[error("{path}: offset {offset}: {msg}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        msg: String,
    },
    /// A file or directory the format needs is missing or of the wrong kind.
    #[error("{path}: {msg}")]
    Layout { path: PathBuf, msg: String },
    /// An I/O error from the operating system.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The caller asked for something the data cannot give (e.g. an unknown snapshot index).
    #[error("{0}")]
    Invalid(String),
}

impl DiskError {
    pub fn corrupt(path: impl Into<PathBuf>, offset: u64, msg: impl Into<String>) -> Self {
        DiskError::Corrupt {
            path: path.into(),
            offset,
            msg: msg.into(),
        }
    }
    pub fn layout(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        DiskError::Layout {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DiskError::Io {
            path: path.into(),
            source,
        }
    }
    /// True for errors caused by the content of the input (exit code 3 in the tools).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            DiskError::Corrupt { .. } | DiskError::Layout { .. } | DiskError::Invalid(_)
        )
    }
}

/// Open `path` for reading, refusing anything but a regular file without blocking on it: a
/// FIFO (or device) named like a WAL segment, a db or a snapshot is opened `O_NONBLOCK`, seen
/// by `fstat`, and refused as a layout error (bad input) instead of hanging the reader.
/// Symlinks are followed (a live data dir may use them; backups are opened `O_NOFOLLOW` by
/// their readers).
pub fn open_regular(path: &std::path::Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| DiskError::io(path, e))?;
    let md = f.metadata().map_err(|e| DiskError::io(path, e))?;
    if !md.is_file() {
        return Err(DiskError::layout(path, "not a regular file"));
    }
    Ok(f)
}
