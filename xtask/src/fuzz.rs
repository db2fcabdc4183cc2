//! `cargo xtask fuzz [--seconds N] [wal|snap|bolt ...]`: coverage-guided fuzzing of etcd-disk's
//! WAL, snap and bbolt readers with libFuzzer, on stable Rust.
//!
//! How, and why this way:
//! - The targets live in `fuzz/` (package `etcd-rescue-fuzz`, its own workspace and lock file,
//!   laid out like a cargo-fuzz project) and link `libfuzzer-sys`, which builds libFuzzer from
//!   source with the system C++ compiler.
//! - Instead of `cargo fuzz` (a tool to install, ~1-2 min of build on a fresh machine, and
//!   nightly-only `-Z` flags for its default AddressSanitizer), we pass the SanitizerCoverage
//!   instrumentation cargo-fuzz itself uses with `--sanitizer none` — `-Cpasses=sancov-module`
//!   and `-Cllvm-args=-sanitizer-coverage-*`, all stable codegen options — ourselves. No
//!   nightly toolchain, no `RUSTC_BOOTSTRAP`, nothing to install but `g++` when missing.
//! - `--target <host>` keeps the flags away from build scripts and proc macros (as cargo-fuzz
//!   does), and the separate target dir `target/fuzz` keeps the instrumented artifacts from
//!   invalidating the workspace's.
//! - No ASan: the readers are safe Rust, so memory errors would be panics, which libFuzzer
//!   reports. Unbounded allocation is caught by the targets' global allocator (one allocation
//!   over 32 MiB aborts) and `-rss_limit_mb`.
//! - Seeds: `tools/etcd-disk/examples/fuzz_seeds.rs` writes small valid files with the library's
//!   writers into `target/fuzz/seeds/<target>`; the growing corpus is kept in
//!   `target/fuzz/corpus/<target>` between runs; crashes go to `target/fuzz/artifacts/<target>/`
//!   (add each as a regression test in `tools/etcd-disk/tests/fuzz_regressions.rs`).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub const TARGETS: [&str; 3] = ["wal", "snap", "bolt"];

/// Instrumentation flags (what cargo-fuzz passes for `--sanitizer none`), plus `--cfg fuzzing`.
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cllvm-args=-sanitizer-coverage-stack-depth",
    "--cfg",
    "fuzzing",
];

pub struct Opts {
    pub seconds: u64,
    pub targets: Vec<String>,
}

/// Parse `[--seconds N] [TARGET...]`.
pub fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        seconds: 60,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                o.seconds = it
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds")?
            }
            t if TARGETS.contains(&t) => o.targets.push(t.to_string()),
            other => bail!(
                "unknown fuzz argument {other:?} (usage: cargo xtask fuzz [--seconds N] [{}])",
                TARGETS.join("|")
            ),
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    if o.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    Ok(o)
}

fn host_triple() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("cannot run {rustc} -vV"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("no host triple in rustc -vV")
}

fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(name).is_file())
}

/// libfuzzer-sys compiles libFuzzer (C++): install g++ when no C++ compiler is there.
fn ensure_cxx() -> Result<()> {
    if std::env::var_os("CXX").is_some() || ["c++", "g++", "clang++"].iter().any(|c| on_path(c)) {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!("no C++ compiler (c++, g++, clang++) for libFuzzer, and no apt-get to install g++");
    }
    eprintln!("xtask fuzz: installing g++ (libFuzzer is C++)");
    for args in [
        vec!["update", "-q"],
        vec!["install", "-y", "-q", "--no-install-recommends", "g++"],
    ] {
        let st = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .context("apt-get")?;
        if !st.success() {
            bail!("apt-get {} failed: {st}", args.join(" "));
        }
    }
    Ok(())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let st = cmd.status().with_context(|| format!("cannot run {what}"))?;
    if !st.success() {
        bail!("{what} failed ({st})");
    }
    Ok(())
}

/// Build the fuzz targets (instrumented, release with debug assertions); returns their dir.
pub fn build(root: &Path) -> Result<PathBuf> {
    ensure_cxx()?;
    let host = host_triple()?;
    let target_dir = root.join("target/fuzz");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        Command::new(&cargo)
            .args([
                "build",
                "--quiet",
                "--release",
                "--locked",
                "--bins",
                "--target",
            ])
            .arg(&host)
            .current_dir(root.join("fuzz"))
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", RUSTFLAGS.join(" "))
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTC_WORKSPACE_WRAPPER"),
        "cargo build (fuzz targets)",
    )?;
    Ok(target_dir.join(host).join("release"))
}

/// Write the seed inputs (small valid files from etcd-disk's writers).
fn seeds(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/fuzz/seeds");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        Command::new(&cargo)
            .args([
                "run",
                "--quiet",
                "--package",
                "etcd-disk",
                "--example",
                "fuzz_seeds",
                "--",
            ])
            .arg(&dir)
            .current_dir(root),
        "fuzz_seeds",
    )?;
    Ok(dir)
}

/// Build, then run every selected target for its share of `seconds`.
pub fn fuzz(root: &Path, o: &Opts) -> Result<()> {
    let t0 = Instant::now();
    let seed_dir = seeds(root)?;
    let bin_dir = build(root)?;
    let built = t0.elapsed();
    let scratch = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        root.join("target/fuzz/scratch")
    };
    std::fs::create_dir_all(&scratch)?;
    let per = (o.seconds / o.targets.len() as u64).max(1);
    let mut failed = Vec::new();
    for t in &o.targets {
        let corpus = root.join("target/fuzz/corpus").join(t);
        let artifacts = root.join("target/fuzz/artifacts").join(t);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        let started = Instant::now();
        let out = Command::new(bin_dir.join(t))
            .arg(format!("-max_total_time={per}"))
            .args([
                "-rss_limit_mb=1024",
                "-max_len=65536",
                "-timeout=10",
                "-print_final_stats=1",
            ])
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&corpus)
            .arg(seed_dir.join(t))
            .env("ETCD_RESCUE_FUZZ_SCRATCH", &scratch)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run fuzz target {t}"))?;
        // Each target leaves one scratch dir per process.
        if let Ok(rd) = std::fs::read_dir(&scratch) {
            for e in rd.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("etcd-rescue-fuzz-{t}-"))
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let log = String::from_utf8_lossy(&out.stderr);
        let runs = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map(str::trim)
            .unwrap_or("?");
        let cov = log
            .lines()
            .rev()
            .find(|l| l.contains(" cov: "))
            .and_then(|l| l.split(" cov: ").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("?");
        eprintln!(
            "xtask fuzz: {t}: {runs} inputs in {:.0}s, coverage {cov}: {}",
            started.elapsed().as_secs_f64(),
            if out.status.success() { "ok" } else { "CRASH" }
        );
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!("{}", tail.join("\n"));
            failed.push(t.clone());
        }
    }
    eprintln!(
        "xtask fuzz: seeds + build {:.0}s, total {:.0}s",
        built.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        bail!(
            "fuzz target(s) {} crashed; the input is in target/fuzz/artifacts/<target>/ (reproduce: \
             target/fuzz/<host>/release/<target> FILE; add it to tools/etcd-disk/tests/fuzz_regressions.rs)",
            failed.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_args() {
        let o = parse(&[]).expect("defaults");
        assert_eq!(o.seconds, 60);
        assert_eq!(o.targets, TARGETS);
        let o = parse(&["--seconds".into(), "9".into(), "bolt".into()]).expect("args");
        assert_eq!(
            (o.seconds, o.targets.as_slice()),
            (9, &["bolt".to_string()][..])
        );
        assert!(parse(&["nope".into()]).is_err());
        assert!(parse(&["--seconds".into(), "0".into()]).is_err());
    }
}
