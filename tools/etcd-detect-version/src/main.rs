fn main() {
    etcd_common::runner::main::<etcd_detect_version::Args>()
}
