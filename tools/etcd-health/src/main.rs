fn main() {
    etcd_common::runner::main::<etcd_health::Args>()
}
