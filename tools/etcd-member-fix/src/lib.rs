//! etcd-member-fix: being written.
