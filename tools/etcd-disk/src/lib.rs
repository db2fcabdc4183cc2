//! etcd-disk: native readers and writers for the on-disk formats of etcd 3.4 and 3.5.
//!
//! See `../shared/docs/etcd-on-disk.md` for the facts these modules implement.
//! - raft side: `proto` (protobuf messages, byte-exact), `wal` (segments, CRC chain, reader,
//!   writer), `entry` (classify raft entries: v2 request, v3 request, conf change, no-op),
//!   `snap` (`.snap` files), `v2store` (the v2 store JSON model), `membership` (member and
//!   cluster IDs);
//! - bbolt side: `bolt` (reader, consistency check, writer), `snapshot` (the v3 snapshot file:
//!   sha256 trailer, `snapshot status`);
//! - `datadir`: the layout of a data dir and whether a running etcd holds its locks.

pub mod error;
pub use error::{DiskError, Result};

pub mod entry;
pub mod membership;
pub mod proto;
pub mod snap;
/// Does a data dir hold v2 data: one pass over the WAL, the `.snap` etcd loads, the db in brief.
pub mod v2scan;
pub mod v2store;
pub mod wal;

/// Kernel-side copies (`copy_file_range`) with early writeback, for durable copies near `cp` speed.
pub mod copy;

pub mod bolt;
pub mod snapshot;

/// Data dir layout checks and the lock probes that tell whether an etcd runs on a dir.
pub mod datadir;
