//! etcd-snap: being written.
