fn main() {
    etcd_common::runner::main::<etcd_wal_backup::Args>()
}
