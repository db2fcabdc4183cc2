//! etcd-disk: native readers and writers for the on-disk formats of etcd 3.4 and 3.5.
//!
//! See `../shared/docs/etcd-on-disk.md` for the facts these modules implement.
//! Module ownership while the crate is being built:
//! - `proto`, `wal`, `snap`, `v2store`, `membership`, `entry`: the raft/WAL side;
//! - `bolt`, `snapshot`: the bbolt side and the v3 snapshot file.

pub mod error;
pub use error::{DiskError, Result};
