//! etcd-wal-backup: being written.
