//! etcd-purge: being written.
