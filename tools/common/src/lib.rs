//! etcd-common: what every etcd-rescue tool shares.
//!
//! - [`exit`]: the exit-code table (printed in every man page);
//! - [`error`]: the error type whose kind maps to an exit code;
//! - [`envelope`]: the one JSON line on stdout, and the facts passed between tools;
//! - [`input`]: the stdin rules (read only from a pipe, file or socket, or `--input`);
//! - [`diag`]: one-line diagnostics on stderr (`tool: level: message`);
//! - [`conn`]: the connection flags exactly as etcdctl names them, with `ETCDCTL_*` fallbacks;
//! - [`envfile`]: `/etc/etcd.env`-style files;
//! - [`atomic`]: temp name → fsync → rename → fsync dir, cleaned up on error and on signals;
//! - [`ids`]: member and cluster IDs as 16-digit lowercase hex strings;
//! - [`http`], [`v2`]: a minimal HTTP GET, and the v2 API's view of the v2 store;
//! - [`runner`]: the process boilerplate every `main.rs` calls.

pub mod atomic;
pub mod conn;
pub mod diag;
pub mod duration;
pub mod envelope;
pub mod envfile;
pub mod error;
pub mod exit;
pub mod http;
pub mod ids;
pub mod input;
pub mod livedb;
pub mod localmember;
pub mod man;
pub mod members;
pub mod runner;
pub mod space;
pub mod v2;

pub use error::{Error, ErrorKind, Result, ResultExt};
pub use exit::ExitCode;
pub use runner::{Ctx, Outcome, Tool};
