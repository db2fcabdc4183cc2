fn main() {
    etcd_common::runner::main::<etcd_rejoin::Args>()
}
