//! etcd-detect-version: being written.
