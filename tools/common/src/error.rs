//! The error type of the tools. Its kind decides the exit code; its message is one line,
//! causes joined with `: `.

use crate::exit::ExitCode;
use std::fmt;

/// What kind of failure, each with its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Internal,
    Usage,
    BadInput,
    Unreachable,
    CheckFailed,
    Io,
    Refused,
    Interrupted,
    Terminated,
}

impl ErrorKind {
    pub fn exit_code(self) -> ExitCode {
        match self {
            ErrorKind::Internal => ExitCode::Internal,
            ErrorKind::Usage => ExitCode::Usage,
            ErrorKind::BadInput => ExitCode::BadInput,
            ErrorKind::Unreachable => ExitCode::Unreachable,
            ErrorKind::CheckFailed => ExitCode::CheckFailed,
            ErrorKind::Io => ExitCode::Io,
            ErrorKind::Refused => ExitCode::Refused,
            ErrorKind::Interrupted => ExitCode::Interrupted,
            ErrorKind::Terminated => ExitCode::Terminated,
        }
    }

    /// The snake_case name used in the envelope's `error.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Internal => "internal",
            ErrorKind::Usage => "usage",
            ErrorKind::BadInput => "bad_input",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::CheckFailed => "check_failed",
            ErrorKind::Io => "io",
            ErrorKind::Refused => "refused",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Terminated => "terminated",
        }
    }
}

/// A tool error: a kind and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Fold a multi-line message into one line.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(part);
    }
    out
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: one_line(&message.into()),
        }
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, m)
    }
    pub fn usage(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, m)
    }
    pub fn bad_input(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, m)
    }
    pub fn unreachable(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unreachable, m)
    }
    pub fn check_failed(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::CheckFailed, m)
    }
    pub fn io(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, m)
    }
    pub fn refused(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, m)
    }
    pub fn exit_code(&self) -> ExitCode {
        self.kind.exit_code()
    }
    /// Prefix the message with what was being done: `context: message`.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io(e.to_string())
    }
}

/// `.context(..)` on results, as anyhow has it, keeping the kind.
pub trait ResultExt<T> {
    fn context(self, ctx: impl fmt::Display) -> Result<T>;
    fn with_context<C: fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, ctx: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(ctx))
    }
    fn with_context<C: fmt::Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_contexts_chain() {
        let e = Error::io("disk\nfull\n").context("cannot write x.part");
        assert_eq!(e.message, "cannot write x.part: disk; full");
        assert_eq!(e.exit_code().code(), 6);
        let r: std::result::Result<(), std::io::Error> =
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
        let e = r.context("open a").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Io);
        assert_eq!(e.message, "open a: gone");
    }
}

/// etcd-disk errors: content problems (corrupt, truncated, wrong layout) are bad input (exit 3),
/// the rest local I/O (exit 6). The message names the file and offset.
impl From<etcd_disk::DiskError> for Error {
    fn from(e: etcd_disk::DiskError) -> Self {
        if e.is_bad_input() {
            Error::bad_input(e.to_string())
        } else {
            Error::io(e.to_string())
        }
    }
}

#[cfg(test)]
mod disk_tests {
    use super::*;

    #[test]
    fn disk_errors_map_to_bad_input_or_io() {
        let e: Error = etcd_disk::DiskError::corrupt("/x/0.wal", 24, "crc mismatch").into();
        assert_eq!(e.exit_code().code(), 3);
        assert!(
            e.message.contains("/x/0.wal") && e.message.contains("24"),
            "{}",
            e.message
        );
        let e: Error = etcd_disk::DiskError::io(
            "/x",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        )
        .into();
        assert_eq!(e.exit_code().code(), 6);
    }
}
