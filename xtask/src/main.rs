//! Project automation, cargo-xtask style: `cargo xtask <command>`.
//!
//! xtask builds on a bare machine: it depends on nothing that needs protoc. Commands that need
//! the tools or the end-to-end crate first run `deps`, then build and run them with cargo.

mod deps;
mod fresh;
mod fuzz;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <command> [args]

commands:
  deps            install what is missing, each checked by using it (protoc with the well-known types,
                  shellcheck, etcd 3.4.23, 3.5.1, 3.5.16, 3.5.30); print where everything is, as JSON
  test            deps, fmt, shellcheck, clippy, unit + CLI + end-to-end tests on etcd 3.4.23, 3.5.1 and
                  3.5.30 (3.5.16: a smoke subset), man + completions --check, fuzz 15 s
  fresh [--keep] [--only demo|test]
                  the README's two commands (demo, then test) in a clean debootstrapped Debian root
  man [--check]   render man/*.1 from the tools' clap definitions (--check: fail when stale)
  completions [--check]
                  render completions/ (bash, zsh, fish) from the same definitions
  demo [ARGS]     a local 3-member cluster with v2 + v3 data: backup.sh -> destroy -> restore -> etcd-health (see `cargo xtask demo --help`)
  bench [ARGS]    our tools and etcdctl/etcdutl side by side on the same data; medians and ratios
  fuzz [--seconds N] [wal|snap|bolt...]
                  libFuzzer on etcd-disk's WAL, snap and bbolt readers (stable Rust; N split over targets)
";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let rest: Vec<String> = args.iter().skip(1).cloned().collect();
    match args.first().map(String::as_str) {
        Some("deps") => {
            let bins = deps::ensure(&root)?;
            println!("{}", serde_json::to_string(&bins)?);
            Ok(())
        }
        Some("test") => test(&root, &rest),
        Some("man") => {
            deps::ensure(&root)?;
            man(&root, rest.iter().any(|a| a == "--check"))
        }
        Some("demo") => {
            deps::ensure(&root)?;
            let mut args = vec![
                "run",
                "--quiet",
                "--package",
                "etcd-rescue-tests",
                "--bin",
                "demo",
                "--",
            ];
            args.extend(rest.iter().map(String::as_str));
            build_tools(&root, false)?;
            cargo(&root, &args)
        }
        Some("fresh") => fresh::fresh(&root, &fresh::parse(&rest)?),
        Some("completions") => {
            deps::ensure(&root)?;
            completions(&root, rest.iter().any(|a| a == "--check"))
        }
        Some("fuzz") => {
            let o = fuzz::parse(&rest)?;
            fuzz::fuzz(&root, &o)
        }
        Some("bench") => {
            deps::ensure(&root)?;
            build_tools(&root, true)?;
            let mut args = vec![
                "run",
                "--quiet",
                "--release",
                "--package",
                "etcd-rescue-tests",
                "--bin",
                "bench",
                "--",
            ];
            args.extend(rest.iter().map(String::as_str));
            cargo(&root, &args)
        }
        Some("-h") | Some("--help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// The workspace root: the parent of this crate's manifest dir.
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Run cargo in the workspace root with the etcd binaries' location in the environment.
fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new(cargo_bin())
        .args(args)
        .current_dir(root)
        .env("ETCD_RESCUE_BINS", root.join("target/etcd/bins.json"))
        .status()
        .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Build every tool binary (the end-to-end tests, demo and bench run them).
fn build_tools(root: &Path, release: bool) -> Result<()> {
    let mut args = vec![
        "build",
        "--quiet",
        "--workspace",
        "--bins",
        "--exclude",
        "xtask",
    ];
    if release {
        args.push("--release");
    }
    cargo(root, &args)
}

/// The profile dir cargo builds into (`$CARGO_TARGET_DIR` or `<root>/target`, then `debug`).
fn debug_dir(root: &Path) -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    };
    target.join("debug")
}

/// Render or check the man pages with the built generator. It runs as a built binary, not
/// through `cargo run -p`: a per-package build resolves features differently from the
/// workspace build and would recompile the dependencies.
fn man(root: &Path, check: bool) -> Result<()> {
    mangen(root, check, None, "man")
}

/// Render or check `completions/{bash,zsh,fish}` the same way.
fn completions(root: &Path, check: bool) -> Result<()> {
    mangen(root, check, Some("--completions"), "completions")
}

fn mangen(root: &Path, check: bool, mode: Option<&str>, dir: &str) -> Result<()> {
    build_tools(root, false)?;
    let mut cmd = Command::new(debug_dir(root).join("etcd-rescue-mangen"));
    if check {
        cmd.arg("--check");
    }
    let status = cmd
        .args(mode)
        .arg(root.join(dir))
        .status()
        .context("cannot run etcd-rescue-mangen")?;
    if !status.success() {
        bail!("{dir}: etcd-rescue-mangen failed ({status}); run `cargo xtask {dir}`");
    }
    Ok(())
}

fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("xtask test: == {name}");
    let t = Instant::now();
    let r = f();
    eprintln!(
        "xtask test: == {name}: {} in {:.1}s",
        if r.is_ok() { "ok" } else { "FAILED" },
        t.elapsed().as_secs_f64()
    );
    r
}

fn step_value<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut out = None;
    step(name, || {
        out = Some(f()?);
        Ok(())
    })?;
    out.context("step gave no value")
}

/// shellcheck every scripts/*.sh (following `source`d lib.sh from the scripts' dir).
fn shellcheck(root: &Path, shellcheck: &Path) -> Result<()> {
    let dir = root.join("scripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no scripts/*.sh to check");
    }
    let status = Command::new(shellcheck)
        .args(["-x", "--source-path=SCRIPTDIR"])
        .args(&files)
        .current_dir(root)
        .status()
        .with_context(|| format!("cannot run {}", shellcheck.display()))?;
    if !status.success() {
        bail!("shellcheck found problems in scripts/*.sh ({status})");
    }
    Ok(())
}

fn test(root: &Path, rest: &[String]) -> Result<()> {
    let t0 = Instant::now();
    let bins = step_value("deps", || deps::ensure(root))?;
    step("fmt", || cargo(root, &["fmt", "--all", "--check"]))?;
    step("shellcheck scripts/*.sh", || {
        shellcheck(root, &bins.shellcheck)
    })?;
    step("clippy", || {
        cargo(
            root,
            &[
                "clippy",
                "--quiet",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
    })?;
    step("build", || build_tools(root, false))?;
    let mut test_args: Vec<&str> = vec!["test", "--workspace"];
    let filters: Vec<&str> = rest.iter().map(String::as_str).collect();
    if !filters.is_empty() {
        test_args.push("--");
        test_args.extend(filters);
    }
    step(
        "unit, CLI and end-to-end tests (etcd 3.4.23, 3.5.1, 3.5.30; 3.5.16 smoke)",
        || cargo(root, &test_args),
    )?;
    step("man --check", || man(root, true))?;
    step("completions --check", || completions(root, true))?;
    step(
        "fuzz (short run: etcd-disk's WAL, snap and bbolt readers)",
        || {
            fuzz::fuzz(
                root,
                &fuzz::Opts {
                    seconds: 15,
                    targets: fuzz::TARGETS.iter().map(|t| t.to_string()).collect(),
                },
            )
        },
    )?;
    eprintln!(
        "xtask test: all steps passed in {:.0}s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
