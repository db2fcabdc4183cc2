//! `cargo xtask fresh`: the README's two commands on a fresh Debian machine, for real.
//!
//! A clean Debian root is made with `debootstrap --variant=minbase bookworm`, plus what the base
//! image of a new machine has (python3 with pip, git, gcc with libc6-dev, ca-certificates, jq), and nothing
//! from this machine's own set-up: no apt package the project installed, no etcd, no cargo
//! registry, no target dir. The Rust toolchain that runs this command is bind-mounted read-only
//! (a new machine has it too). The committed HEAD is cloned into the root, and in a private mount
//! namespace (`unshare --mount`: /proc, /sys, /dev bound in, all gone when it ends) the root runs
//! `cargo xtask demo` and then `cargo xtask test`, each of which must install what it needs.
//!
//! What is carried over, and why:
//! - `/etc/resolv.conf` and the CA certificates this workplace adds for its egress
//!   (`/usr/local/share/ca-certificates/*.crt`): every machine here has them; without them
//!   nothing reaches a registry. They are network settings, not project dependencies.
//! - the debootstrapped base is kept as a tarball in `/var/cache/etcd-rescue/` (keyed by suite
//!   and package list) so later runs skip the download: it holds only the base image, never
//!   anything the project installed (that lives in the root made from it, removed after the run).
//!
//! Options: `--keep` keeps the root for inspection; `--only demo|test` runs one command.

use crate::deps::{run, which, RemoveOnDrop};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// What a new machine's image has beyond minbase (the machine doc: python3 with pip, git, gcc
/// that links, i.e. with libc6-dev: cargo needs a linker before xtask itself can run).
const BASE_PACKAGES: &[&str] = &[
    "python3-pip",
    "git",
    "gcc",
    "libc6-dev",
    "ca-certificates",
    "jq",
];

pub struct Opts {
    pub keep: bool,
    pub only: Option<String>,
}

pub fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        keep: false,
        only: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--keep" => o.keep = true,
            "--only" => {
                let v = it.next().context("--only takes demo or test")?;
                if v != "demo" && v != "test" {
                    bail!("--only takes demo or test, not {v:?}");
                }
                o.only = Some(v.clone());
            }
            other => bail!("fresh: unknown argument {other:?} (takes --keep, --only demo|test)"),
        }
    }
    Ok(o)
}

pub fn fresh(root: &Path, o: &Opts) -> Result<()> {
    let t0 = Instant::now();
    for tool in ["unshare", "chroot", "tar", "mount"] {
        if which(tool).is_none() {
            bail!("{tool} not found (util-linux/coreutils)");
        }
    }
    let toolchain = toolchain_dir()?;
    let base = base_tarball()?;

    let work = PathBuf::from("/var/tmp").join(format!("etcd-rescue-fresh-{}", std::process::id()));
    let rootfs = work.join("root");
    fs::create_dir_all(&rootfs).with_context(|| format!("creating {}", rootfs.display()))?;
    let guard = RootGuard {
        dir: work.clone(),
        keep: o.keep,
    };
    eprintln!(
        "xtask fresh: unpacking the base root into {}",
        rootfs.display()
    );
    run(Command::new("tar")
        .arg("-xpf")
        .arg(&base)
        .arg("-C")
        .arg(&rootfs))?;

    // Network settings every machine here has (see the module doc).
    fs::copy("/etc/resolv.conf", rootfs.join("etc/resolv.conf"))
        .context("copying /etc/resolv.conf")?;
    let cas = Path::new("/usr/local/share/ca-certificates");
    if cas.is_dir() {
        let to = rootfs.join("usr/local/share/ca-certificates");
        fs::create_dir_all(&to)?;
        for e in fs::read_dir(cas)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "crt") {
                if let Some(n) = p.file_name() {
                    fs::copy(&p, to.join(n))?;
                }
            }
        }
    }

    // The project: a clone of the committed HEAD, as CI clones it.
    let src = rootfs.join("root/etcd-rescue");
    run(Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(root)
        .arg(&src))?;
    let head = String::from_utf8_lossy(
        &Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(&src)
            .output()?
            .stdout,
    )
    .trim()
    .to_string();
    // ../shared/docs beside the clone, as CI lays it (read-only docs the README points to).
    let shared = root.join("../shared");
    if shared.is_dir() {
        run(Command::new("cp")
            .arg("-a")
            .arg(&shared)
            .arg(rootfs.join("root/shared")))?;
    }
    fs::create_dir_all(rootfs.join("opt/rust"))?;

    let commands: Vec<&str> = match o.only.as_deref() {
        Some("demo") => vec!["cargo xtask demo"],
        Some(_) => vec!["cargo xtask test"],
        None => vec!["cargo xtask demo", "cargo xtask test"],
    };
    let inner = format!(
        "set -e; update-ca-certificates >/dev/null 2>&1 || true; cd /root/etcd-rescue; {}",
        commands
            .iter()
            .map(|c| format!(
                "echo \"xtask fresh: == {c}\" >&2; t=$(date +%s); {c}; \
                 echo \"xtask fresh: == {c}: ok in $(( $(date +%s) - t ))s\" >&2"
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    // Mounts live in a private namespace: when it ends they are gone, whatever happened.
    let outer = r#"set -e
r=$1; tc=$2; shift 2
mount --make-rprivate /
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
mount --bind "$tc" "$r/opt/rust"
mount -o remount,bind,ro "$r/opt/rust"
exec chroot "$r" /usr/bin/env -i HOME=/root CI="${CI:-}" TERM=dumb \
  PATH=/opt/rust/bin:/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  CARGO_HOME=/root/.cargo LANG=C.UTF-8 /bin/bash -c "$1"
"#;
    eprintln!(
        "xtask fresh: in a clean Debian {SUITE} root (HEAD {head}, toolchain {}): {}",
        toolchain.display(),
        commands.join(" && ")
    );
    let status = Command::new("unshare")
        .args(["--mount", "--fork", "--", "bash", "-c", outer, "fresh"])
        .arg(&rootfs)
        .arg(&toolchain)
        .arg(&inner)
        .stdin(Stdio::null())
        .status()
        .context("cannot run unshare")?;
    let ok = status.success();
    if !ok {
        eprintln!(
            "xtask fresh: FAILED ({status}) after {:.0}s{}",
            t0.elapsed().as_secs_f64(),
            if o.keep {
                format!("; the root is kept in {}", rootfs.display())
            } else {
                String::new()
            }
        );
    }
    drop(guard);
    if !ok {
        bail!("the README's commands failed on a fresh Debian {SUITE} root ({status})");
    }
    eprintln!(
        "xtask fresh: the README's commands passed on a fresh Debian {SUITE} root in {:.0}s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The active toolchain's dir (`<rustup home>/toolchains/<name>`), found from rustc's sysroot.
fn toolchain_dir() -> Result<PathBuf> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("cannot run rustc --print sysroot")?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !dir.join("bin/cargo").is_file() {
        bail!(
            "no cargo in the toolchain dir {} (rustc --print sysroot)",
            dir.display()
        );
    }
    Ok(dir)
}

/// The debootstrapped base root as a tarball, made once and kept in /var/cache/etcd-rescue.
fn base_tarball() -> Result<PathBuf> {
    let cache = Path::new("/var/cache/etcd-rescue");
    let name = format!(
        "{SUITE}-minbase-{}.tar",
        BASE_PACKAGES.join("+").replace(['/', ' '], "_")
    );
    let tar = cache.join(name);
    if tar.is_file() {
        return Ok(tar);
    }
    if which("debootstrap").is_none() {
        eprintln!("xtask fresh: apt-get install debootstrap");
        run(Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr())))?;
        run(Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "debootstrap",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr())))?;
    }
    fs::create_dir_all(cache)?;
    let tmp = cache.join(format!("base-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(tmp.clone());
    eprintln!(
        "xtask fresh: debootstrap --variant=minbase {SUITE} (+ {}): once, kept in {}",
        BASE_PACKAGES.join(", "),
        cache.display()
    );
    let t = Instant::now();
    run(Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={}", BASE_PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&tmp)
        .arg(MIRROR)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr())))?;
    // apt's lists are dropped (a new machine runs `apt-get update` before installing).
    let _ = fs::remove_dir_all(tmp.join("var/cache/apt/archives"));
    let part = cache.join(format!("{}.{}.part", tar.display(), std::process::id()));
    run(Command::new("tar")
        .arg("-cpf")
        .arg(&part)
        .arg("-C")
        .arg(&tmp)
        .arg("."))?;
    fs::File::open(&part)?.sync_all()?;
    fs::rename(&part, &tar)?;
    eprintln!(
        "xtask fresh: base root made in {:.0}s",
        t.elapsed().as_secs_f64()
    );
    Ok(tar)
}

/// Removes the fresh root when dropped (unless kept), after checking nothing is mounted in it:
/// the mounts lived in a namespace that is gone, so this is a guard against a bug, never a
/// `rm -rf` through a bind mount of /dev or the toolchain.
struct RootGuard {
    dir: PathBuf,
    keep: bool,
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.dir.to_string_lossy().to_string();
        if mounts
            .lines()
            .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&prefix)))
        {
            eprintln!(
                "xtask fresh: {} still has mounts; not removing it",
                self.dir.display()
            );
            return;
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let o = parse(&[]).expect("none");
        assert!(!o.keep && o.only.is_none());
        let o = parse(&["--keep".into(), "--only".into(), "demo".into()]).expect("both");
        assert!(o.keep);
        assert_eq!(o.only.as_deref(), Some("demo"));
        assert!(parse(&["--only".into(), "bench".into()]).is_err());
        assert!(parse(&["--nope".into()]).is_err());
    }
}
