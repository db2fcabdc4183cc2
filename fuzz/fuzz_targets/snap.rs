//! libFuzzer target: etcd-disk's snap reader (see `etcd_rescue_fuzz::snap`).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

#[global_allocator]
static ALLOC: etcd_rescue_fuzz::LimitAlloc = etcd_rescue_fuzz::LimitAlloc;

static DIR: OnceLock<PathBuf> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| etcd_rescue_fuzz::scratch("snap"));
    etcd_rescue_fuzz::snap(dir, data);
});
