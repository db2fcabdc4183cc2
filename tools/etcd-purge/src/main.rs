fn main() {
    etcd_common::runner::main::<etcd_purge::Args>()
}
