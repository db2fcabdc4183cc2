//! Space first: a tool that will write N bytes checks that the filesystem has them before it
//! writes the first one, and exits 6 naming what it needs and what is free (issue 11: a
//! restore onto a filesystem too small looked fine until etcd hit ENOSPC).

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes free for an unprivileged writer on the filesystem of `p` (or of its nearest existing
/// ancestor), and that filesystem's device.
pub fn free_at(p: &Path) -> Result<(u64, u64, PathBuf)> {
    let mut probe = p.to_path_buf();
    loop {
        if let Ok(md) = std::fs::metadata(&probe) {
            let v = nix::sys::statvfs::statvfs(&probe)
                .map_err(|e| Error::io(format!("cannot statvfs {}: {e}", probe.display())))?;
            return Ok((
                v.blocks_available().saturating_mul(v.fragment_size()),
                md.dev(),
                probe,
            ));
        }
        if !probe.pop() {
            return Err(Error::io(format!(
                "cannot find an existing dir above {}",
                p.display()
            )));
        }
    }
}

/// The margin added to every need: filesystem metadata and small files (1 MiB + 1/64).
pub fn with_margin(n: u64) -> u64 {
    n + n / 64 + (1 << 20)
}

/// Check that each target dir's filesystem has room for what goes there: `needs` are
/// `(dir, bytes, what)`; needs on one filesystem add up. Exit 6 before anything is written.
pub fn require(needs: &[(&Path, u64, &str)]) -> Result<()> {
    let mut by_dev: BTreeMap<u64, (u64, u64, PathBuf, Vec<String>)> = BTreeMap::new();
    for (dir, bytes, what) in needs {
        let (free, dev, probe) = free_at(dir)?;
        let e = by_dev
            .entry(dev)
            .or_insert_with(|| (0, free, probe, Vec::new()));
        e.0 += bytes;
        e.3.push(format!("{what} {bytes}"));
    }
    for (need, free, probe, parts) in by_dev.values() {
        let want = with_margin(*need);
        if *free < want {
            return Err(Error::io(format!(
                "not enough space on the filesystem of {}: {want} bytes needed ({}, plus margin), {free} free; nothing was written",
                probe.display(),
                parts.join(" + ")
            )));
        }
    }
    Ok(())
}
