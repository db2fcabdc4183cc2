//! Bounded inputs (issue 11, class 8), CLI only (no server): an env file is a regular file of at
//! most 1 MiB (`/dev/zero` was read until the OOM killer came); a FIFO named like a WAL segment
//! or a db is refused at once, never waited on (etcd-detect-version blocked forever); an
//! all-zero WAL segment is not "v3, ok" but bad input (etcd refuses it: no metadata record).

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let d = etcd_rescue_tests::workspace_root()
        .join("target/e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run a tool with a 10 s limit: a tool that blocks is killed and the test fails.
fn run(tool: &str, args: &[&str]) -> (i32, Value, String, Duration) {
    let t0 = Instant::now();
    let mut child = Command::new(etcd_rescue_tests::tool_bin(tool))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{tool} {args:?} blocked for 10 s: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o: Output = child.wait_with_output().unwrap();
    let took = t0.elapsed();
    let out = String::from_utf8_lossy(&o.stdout);
    let v: Value = serde_json::from_str(out.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{tool}: not one envelope ({e}): {out:?}"));
    (
        o.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
        took,
    )
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

fn data_dir(root: &Path) -> PathBuf {
    let d = root.join("d");
    std::fs::create_dir_all(d.join("member/wal")).unwrap();
    std::fs::create_dir_all(d.join("member/snap")).unwrap();
    d
}

#[test]
fn env_files_are_bounded_regular_files() {
    let root = scratch("bounded-env");
    let fifo = root.join("fifo.env");
    mkfifo(&fifo);
    let big = root.join("big.env");
    std::fs::write(&big, "#".repeat((1 << 20) + 1)).unwrap();
    let d = data_dir(&root);
    let dd = d.to_str().unwrap();
    for bad in ["/dev/zero", fifo.to_str().unwrap(), big.to_str().unwrap()] {
        for (tool, args) in [
            ("etcd-detect-version", vec!["--env-file", bad]),
            ("etcd-health", vec!["--env-file", bad]),
            (
                "etcd-purge",
                vec!["--env-file", bad, "--data-dir", dd, "--dry-run"],
            ),
            ("etcd-member-fix", vec!["--env-file", bad]),
        ] {
            let (code, v, err, took) = run(tool, &args);
            assert_eq!(code, 3, "{tool} --env-file {bad}: {v}\n{err}");
            assert!(
                err.contains("not a regular file") || err.contains("more than"),
                "{tool} --env-file {bad}: {err}"
            );
            assert!(took < Duration::from_secs(5), "{tool}: took {took:?}");
        }
    }
    assert!(d.join("member/wal").is_dir(), "nothing was purged");
}

#[test]
fn fifos_in_a_data_dir_are_refused_at_once() {
    let root = scratch("bounded-fifo");
    let d = data_dir(&root);
    let seg = d.join("member/wal/0000000000000000-0000000000000000.wal");
    mkfifo(&seg);
    let (code, v, err, _) = run("etcd-detect-version", &["--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, 3, "{v}\n{err}");
    assert!(err.contains("not a regular file"), "{err}");
    // A db that is a FIFO.
    std::fs::remove_file(&seg).unwrap();
    mkfifo(&d.join("member/snap/db"));
    let (code, v, err, _) = run("etcd-detect-version", &["--data-dir", d.to_str().unwrap()]);
    assert!(code == 3, "{v}\n{err}");
    // A snapshot FILE that is a FIFO: status and verify.
    let f = root.join("snap.db");
    mkfifo(&f);
    for sub in ["status", "verify"] {
        let (code, v, err, _) = run("etcd-snap", &[sub, f.to_str().unwrap()]);
        assert_eq!(code, 3, "etcd-snap {sub} on a FIFO: {v}\n{err}");
    }
}

#[test]
fn an_all_zero_wal_is_bad_input() {
    let root = scratch("bounded-zero-wal");
    let d = data_dir(&root);
    std::fs::write(
        d.join("member/wal/0000000000000000-0000000000000000.wal"),
        vec![0u8; 64 << 10],
    )
    .unwrap();
    let (code, v, err, _) = run("etcd-detect-version", &["--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, 3, "{v}\n{err}");
    assert!(err.contains("no metadata record"), "{err}");
    assert_eq!(v["ok"], false);
}

/// The first two pages of a bbolt image (page size 4096) whose meta pages say it holds `pgid`
/// pages.
fn bolt_head(pgid: u64) -> Vec<u8> {
    use etcd_disk::bolt::{Meta, MAGIC, VERSION};
    let mut out = Vec::new();
    for id in 0..2u64 {
        let mut page = vec![0u8; 4096];
        page[0..8].copy_from_slice(&id.to_le_bytes());
        page[8..10].copy_from_slice(&0x04u16.to_le_bytes()); // meta page
        let m = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: 4096,
            root: 3,
            freelist: 2,
            pgid,
            txid: id,
            ..Default::default()
        }
        .with_checksum();
        page[16..80].copy_from_slice(&m.encode());
        out.extend_from_slice(&page);
    }
    out
}

/// gzip of `head` followed by `zeros` zero bytes.
fn gzip_of(head: &[u8], zeros: u64, to: &Path) {
    use std::io::Write;
    let mut gz = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(to).unwrap())
        .spawn()
        .unwrap();
    let mut w = gz.stdin.take().unwrap();
    w.write_all(head).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        w.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    drop(w);
    assert!(gz.wait().unwrap().success());
}

#[test]
fn gzip_bombs_are_bounded_by_the_bbolt_meta() {
    let root = scratch("bounded-gz");
    let tmp = root.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // Says 4 pages (16 KiB), decompresses to 64 MiB + 8 KiB.
    let bomb = root.join("bomb.db.gz");
    gzip_of(&bolt_head(4), 64 << 20, &bomb);
    for sub in ["status", "verify"] {
        let (code, v, err, _) = run(
            "etcd-snap",
            &[
                sub,
                "--tmp-dir",
                tmp.to_str().unwrap(),
                bomb.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 3, "etcd-snap {sub} of a bomb: {v}\n{err}");
        assert!(err.contains("more than its bbolt meta says"), "{err}");
    }
    let (code, v, err, _) = run(
        "etcd-snap",
        &[
            "restore",
            "--data-dir",
            root.join("restored").to_str().unwrap(),
            "--skip-hash-check",
            bomb.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 3, "etcd-snap restore of a bomb: {v}\n{err}");
    assert!(!root.join("restored/member").exists());
    // Says 2^40 pages (4 PiB): no temp dir has room; refused before writing past the metas.
    let huge = root.join("huge.db.gz");
    gzip_of(&bolt_head(1 << 40), 1 << 20, &huge);
    let (code, v, err, _) = run(
        "etcd-snap",
        &[
            "status",
            "--tmp-dir",
            tmp.to_str().unwrap(),
            huge.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 6, "{v}\n{err}");
    assert!(err.contains("bytes free"), "{err}");
    // Not bbolt at all: refused after the first page.
    let junk = root.join("junk.db.gz");
    gzip_of(&[0x55; 8192], 1 << 20, &junk);
    let (code, v, err, _) = run(
        "etcd-snap",
        &[
            "verify",
            "--tmp-dir",
            tmp.to_str().unwrap(),
            junk.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 3, "{v}\n{err}");
    assert!(err.contains("not a bbolt image"), "{err}");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "temp files left"
    );
}
