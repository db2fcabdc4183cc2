fn main() {
    etcd_common::runner::main::<etcd_member_fix::Args>()
}
