//! etcd-rejoin: being written.
