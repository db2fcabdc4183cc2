//! CLI contract of etcd-purge on temp dirs (no etcd needed): help, usage errors, stdin,
//! refusals, dry run, move/delete/keep, lock probes against processes holding the locks,
//! stop by pid file and by a stand-in systemctl, leftovers of an interrupted run, cross-fs.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use etcd_test_support::{run, tool};
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn cmd() -> Command {
    tool("etcd-purge")
}

const WAL0: &str = "0000000000000000-0000000000000000.wal";
const WAL1: &str = "0000000000000001-00000000000000ba.wal";

/// A fake etcd data dir: member/wal with two segments, member/snap with db and a .snap.
fn etcd_dir(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    fs::create_dir_all(d.join("member/wal")).unwrap();
    fs::create_dir_all(d.join("member/snap")).unwrap();
    fs::write(d.join("member/snap/db"), vec![7u8; 8192]).unwrap();
    fs::write(
        d.join("member/snap/0000000000000002-000000000000024c.snap"),
        b"snap",
    )
    .unwrap();
    fs::write(d.join("member/wal").join(WAL0), vec![1u8; 1000]).unwrap();
    fs::write(d.join("member/wal").join(WAL1), vec![2u8; 3000]).unwrap();
    d
}

fn sha256_hex(p: &Path) -> String {
    let o = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn copies(dir: &Path, base: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&format!("{base}.purged.")))
        .collect();
    v.sort();
    v
}

#[test]
fn help_and_version() {
    let out = cmd()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    for flag in [
        "--data-dir",
        "--wal-dir",
        "--env-file",
        "--stop",
        "--stop-timeout",
        "--to",
        "--cross-fs",
        "--keep",
        "--delete",
        "--yes",
        "--dry-run",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    cmd().arg("--version").assert().success();
}

#[test]
fn usage_errors() {
    let (code, v, err) = run(cmd().args(["--data-dir", "/x", "--delete"]));
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["kind"], "usage");
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, v, _) = run(cmd().args(["--data-dir", "/x", "--stop", "kill:1"]));
    assert_eq!(code, 2, "{v}");
    // No data dir at all.
    let (code, v, _) = run(cmd().args(["--input", "none"]));
    assert_eq!(code, 2, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("data dir"));
}

#[test]
fn bad_stdin_and_missing_env_file() {
    cmd()
        .args(["--data-dir", "/nonexistent"])
        .write_stdin("not json")
        .assert()
        .code(3);
    cmd()
        .args(["--env-file", "/nonexistent/etcd.env"])
        .assert()
        .code(3);
}

#[test]
fn refuses_root_non_etcd_and_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let (code, v, _) = run(cmd().args(["--data-dir", "/"]));
    assert_eq!(code, 7, "{v}");
    let (code, _, _) = run(cmd().args(["--data-dir", "/tmp/../"]));
    assert_eq!(code, 7);

    // A dir with other things and no member/.
    let junk = t.path().join("junk");
    fs::create_dir_all(&junk).unwrap();
    fs::write(junk.join("precious.txt"), b"x").unwrap();
    let (code, v, err) = run(cmd().args(["--data-dir", junk.to_str().unwrap()]));
    assert_eq!(code, 7, "{v}");
    assert!(err.contains("not an etcd data dir"), "{err}");
    assert!(junk.join("precious.txt").exists());

    // member/ without wal/ or snap/.
    let odd = t.path().join("odd");
    fs::create_dir_all(odd.join("member/stuff")).unwrap();
    let (code, _, _) = run(cmd().args(["--data-dir", odd.to_str().unwrap()]));
    assert_eq!(code, 7);
    assert!(odd.join("member/stuff").exists());

    // member/ is a symlink to a real member dir elsewhere.
    let real = etcd_dir(t.path(), "real");
    let linked = t.path().join("linked");
    fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(real.join("member"), linked.join("member")).unwrap();
    let (code, v, err) = run(cmd().args(["--data-dir", linked.to_str().unwrap()]));
    assert_eq!(code, 7, "{v}");
    assert!(err.contains("symlink"), "{err}");
    assert!(real.join("member/snap/db").exists());

    // A separate WAL dir holding other things.
    let d = etcd_dir(t.path(), "d");
    let w = t.path().join("w");
    fs::create_dir_all(&w).unwrap();
    fs::write(w.join("notes.txt"), b"x").unwrap();
    let (code, _, err) = run(cmd().args([
        "--data-dir",
        d.to_str().unwrap(),
        "--wal-dir",
        w.to_str().unwrap(),
    ]));
    assert_eq!(code, 7, "{err}");
    assert!(d.join("member").exists());
}

#[test]
fn dry_run_moves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    let (code, v, err) = run(cmd().args(["--data-dir", d.to_str().unwrap(), "--dry-run"]));
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["data"]["dry_run"], true);
    assert!(
        v["data"]["plan"][0]
            .as_str()
            .unwrap()
            .starts_with("rename "),
        "{v}"
    );
    assert_eq!(v["facts"]["purge"]["files"], 4);
    assert!(err.contains("dry run: would rename"), "{err}");
    assert!(d.join("member/snap/db").exists());
    assert!(copies(&d, "member").is_empty());
}

#[test]
fn moves_aside_then_rerun_is_unchanged_with_same_facts() {
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    let db_sha = sha256_hex(&d.join("member/snap/db"));
    let wal_sha = sha256_hex(&d.join("member/wal").join(WAL1));
    let (code, v, err) = run(cmd().args(["--data-dir", d.to_str().unwrap()]));
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["changed"], true);
    assert!(!d.join("member").exists());
    let c = copies(&d, "member");
    assert_eq!(c.len(), 1);
    let p = &v["facts"]["purge"];
    assert_eq!(p["files"], 5 - 1, "{p}");
    assert_eq!(p["bytes"], 8192 + 4 + 1000 + 3000);
    assert_eq!(p["db"]["sha256"], db_sha.as_str());
    assert_eq!(p["wal_tail"]["sha256"], wal_sha.as_str());
    assert_eq!(p["wal_tail"]["name"], WAL1);
    assert_eq!(p["purged"][0]["to"], d.join(&c[0]).display().to_string());
    assert_eq!(v["facts"]["data_dir"], d.display().to_string());
    let mode = fs::metadata(d.join(&c[0])).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);

    let (code, v2, _) = run(cmd().args(["--data-dir", d.to_str().unwrap()]));
    assert_eq!(code, 0);
    assert_eq!(v2["changed"], false);
    assert_eq!(v2["facts"], v["facts"]);
}

#[test]
fn env_file_separate_wal_dir_keep_and_delete() {
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    let w = t.path().join("waldir");
    fs::rename(d.join("member/wal"), &w).unwrap();
    let env = t.path().join("etcd.env");
    fs::write(
        &env,
        format!(
            "ETCD_DATA_DIR={}\nETCD_WAL_DIR=\"{}\"\n",
            d.display(),
            w.display()
        ),
    )
    .unwrap();
    let (code, v, err) = run(cmd().args(["--env-file", env.to_str().unwrap()]));
    assert_eq!(code, 0, "{v} {err}");
    assert!(!w.exists() && !d.join("member").exists());
    assert_eq!(copies(t.path(), "waldir").len(), 1);
    assert_eq!(v["facts"]["purge"]["purged"].as_array().unwrap().len(), 2);
    assert_eq!(v["facts"]["purge"]["wal_tail"]["name"], WAL1);
    assert_eq!(v["facts"]["purge"]["wal_dir"], w.display().to_string());
    let (_, v2, _) = run(cmd().args(["--env-file", env.to_str().unwrap()]));
    assert_eq!(v2["changed"], false);
    assert_eq!(v2["facts"], v["facts"]);

    // Two more purges with --keep 2: the oldest copies go.
    for _ in 0..2 {
        etcd_dir(t.path(), "d");
        fs::rename(d.join("member/wal"), &w).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let (code, v, err) = run(cmd().args(["--env-file", env.to_str().unwrap(), "--keep", "2"]));
        assert_eq!(code, 0, "{v} {err}");
    }
    assert_eq!(copies(&d, "member").len(), 2);
    assert_eq!(copies(t.path(), "waldir").len(), 2);

    // --delete --yes: nothing is moved aside.
    let e = etcd_dir(t.path(), "e");
    let (code, v, err) = run(cmd().args(["--data-dir", e.to_str().unwrap(), "--delete", "--yes"]));
    assert_eq!(code, 0, "{v} {err}");
    assert!(!e.join("member").exists());
    assert!(
        fs::read_dir(&e).unwrap().next().is_none(),
        "data dir left empty"
    );
    assert_eq!(v["facts"]["purge"]["mode"], "delete");
    assert_eq!(v["facts"]["purge"]["files"], 4);
}

#[test]
fn finishes_an_interrupted_run() {
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    // A crash after the rename to .deleting and during a copy.
    fs::create_dir_all(d.join("member.deleting.20240101T000000Z/wal")).unwrap();
    fs::create_dir_all(d.join("member.purged.20240101T000000Z.part/snap")).unwrap();
    let (code, v, err) = run(cmd().args(["--data-dir", d.to_str().unwrap()]));
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["data"]["leftovers"].as_array().unwrap().len(), 2);
    let names: Vec<String> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("member.purged."));
}

#[test]
fn cross_filesystem_needs_copy() {
    let shm = Path::new("/dev/shm");
    let Ok(other) = tempfile::tempdir_in(shm) else {
        eprintln!("no writable /dev/shm: skipped");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    use std::os::unix::fs::MetadataExt;
    if fs::metadata(other.path()).unwrap().dev() == fs::metadata(&d).unwrap().dev() {
        eprintln!("/dev/shm on the same filesystem: skipped");
        return;
    }
    let to = other.path().join("purged");
    let (code, v, err) = run(cmd().args([
        "--data-dir",
        d.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]));
    assert_eq!(code, 7, "{v}");
    assert!(err.contains("cross filesystems"), "{err}");
    assert!(d.join("member/snap/db").exists());
    let db_sha = sha256_hex(&d.join("member/snap/db"));
    let (code, v, err) = run(cmd().args([
        "--data-dir",
        d.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
        "--cross-fs",
        "copy",
    ]));
    assert_eq!(code, 0, "{v} {err}");
    assert!(!d.join("member").exists());
    let c = copies(&to, "member");
    assert_eq!(c.len(), 1);
    assert_eq!(sha256_hex(&to.join(&c[0]).join("snap/db")), db_sha);
    assert_eq!(v["facts"]["purge"]["db"]["sha256"], db_sha.as_str());
}

/// Take bbolt's lock (flock LOCK_EX) on the db from another open file description.
fn hold_flock(p: &Path) -> fs::File {
    let f = fs::File::open(p).unwrap();
    assert_eq!(
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    f
}

/// Take etcd's OFD write lock on a WAL segment.
fn hold_ofd(p: &Path) -> fs::File {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .unwrap();
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    assert_eq!(
        unsafe {
            libc::fcntl(
                f.as_raw_fd(),
                libc::F_OFD_SETLK,
                &mut fl as *mut libc::flock,
            )
        },
        0
    );
    f
}

#[test]
fn refuses_while_locks_are_held() {
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    let db = hold_flock(&d.join("member/snap/db"));
    let (code, v, err) = run(cmd().args(["--data-dir", d.to_str().unwrap()]));
    assert_eq!(code, 7, "{v}");
    assert!(err.contains("db (flock held"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    // Also in a dry run.
    let (code, _, _) = run(cmd().args(["--data-dir", d.to_str().unwrap(), "--dry-run"]));
    assert_eq!(code, 7);
    drop(db);
    let wal = hold_ofd(&d.join("member/wal").join(WAL1));
    let (code, _, err) = run(cmd().args(["--data-dir", d.to_str().unwrap()]));
    assert_eq!(code, 7);
    assert!(err.contains(".wal (ofd held"), "{err}");
    assert!(d.join("member/snap/db").exists() && d.join("member/wal").join(WAL1).exists());
    drop(wal);
    let (code, _, err) = run(cmd().args(["--data-dir", d.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
}

/// A stand-in "etcd": util-linux flock(1) copied under the name etcd, holding the db lock.
/// With `-o` the lock goes away with it; without, its child `sleep` keeps it.
fn fake_etcd(dir: &Path, db: &Path, release_on_exit: bool) -> std::process::Child {
    let bin = dir.join("etcd");
    if !bin.exists() {
        fs::copy("/usr/bin/flock", &bin).unwrap();
    }
    let mut c = std::process::Command::new(&bin);
    if release_on_exit {
        c.arg("-o");
    }
    c.args(["-x", db.to_str().unwrap(), "sleep", "30"])
        .process_group(0);
    let mut child = c.spawn().unwrap();
    // Wait until it holds the lock.
    for _ in 0..100 {
        let f = fs::File::open(db).unwrap();
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } != 0 {
            return child;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_group(&mut child);
    panic!("fake etcd did not take the lock");
}

fn kill_group(child: &mut std::process::Child) {
    unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

#[test]
fn stop_by_pid_file_waits_for_the_locks() {
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    let db = d.join("member/snap/db");
    let pidfile = t.path().join("etcd.pid");

    // Releases the lock when it exits: purge stops it and moves the dir.
    let mut etcd = fake_etcd(t.path(), &db, true);
    fs::write(&pidfile, format!("{}\n", etcd.id())).unwrap();
    let reaper = std::thread::spawn(move || {
        let _ = etcd.wait();
    });
    let stop = format!("pid:{}", pidfile.display());
    let (code, v, err) = run(cmd().args([
        "--data-dir",
        d.to_str().unwrap(),
        "--stop",
        &stop,
        "--stop-timeout",
        "10s",
    ]));
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["data"]["stop"]["stopped_now"], true);
    assert_eq!(v["facts"]["purge"]["stop"]["method"], "pid");
    assert!(!d.join("member").exists());
    reaper.join().unwrap();
    // Rerun: nothing running, nothing to purge.
    let (code, v2, _) = run(cmd().args(["--data-dir", d.to_str().unwrap(), "--stop", &stop]));
    assert_eq!(code, 0);
    assert_eq!(v2["changed"], false);
    assert_eq!(v2["facts"], v["facts"]);

    // Its child keeps the lock after it exits: refused after the timeout, dir untouched.
    let e = etcd_dir(t.path(), "e");
    let db = e.join("member/snap/db");
    let mut etcd = fake_etcd(t.path(), &db, false);
    let pgid = etcd.id() as i32;
    fs::write(&pidfile, format!("{}\n", etcd.id())).unwrap();
    let (code, v, err) = run(cmd().args([
        "--data-dir",
        e.to_str().unwrap(),
        "--stop",
        &stop,
        "--stop-timeout",
        "1s",
    ]));
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
    let _ = etcd.wait();
    assert_eq!(code, 7, "{v}");
    assert!(err.contains("still held"), "{err}");
    assert!(e.join("member/snap/db").exists());

    // A pid file naming something that is not etcd: refused, not signalled.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .process_group(0)
        .spawn()
        .unwrap();
    fs::write(&pidfile, format!("{}", sleeper.id())).unwrap();
    let (code, _, err) = run(cmd().args(["--data-dir", e.to_str().unwrap(), "--stop", &stop]));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("not etcd"), "{err}");
    assert!(sleeper.try_wait().unwrap().is_none(), "sleep was signalled");
    kill_group(&mut sleeper);
    // A pid file with garbage: bad input.
    fs::write(&pidfile, "garbage").unwrap();
    let (code, _, _) = run(cmd().args(["--data-dir", e.to_str().unwrap(), "--stop", &stop]));
    assert_eq!(code, 3);
}

#[test]
fn stop_by_systemd_runs_systemctl() {
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    let bin = t.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let log = t.path().join("calls");
    let script = format!("#!/bin/sh\necho \"$@\" >> {}\nexit 0\n", log.display());
    fs::write(bin.join("systemctl"), script).unwrap();
    fs::set_permissions(bin.join("systemctl"), fs::Permissions::from_mode(0o755)).unwrap();
    let (code, v, err) = run(cmd()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .args([
            "--data-dir",
            d.to_str().unwrap(),
            "--stop",
            "systemd:etcd.service",
        ]));
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "is-active --quiet etcd.service\nstop etcd.service\n"
    );
    assert_eq!(v["data"]["stop"]["stopped_now"], true);
    // systemctl missing: an I/O error, nothing moved.
    let e = etcd_dir(t.path(), "e");
    let (code, _, err) = run(cmd().env("PATH", "/nonexistent").args([
        "--data-dir",
        e.to_str().unwrap(),
        "--stop",
        "systemd:etcd",
    ]));
    assert_eq!(code, 6, "{err}");
    assert!(e.join("member").exists());
}

#[test]
fn nothing_to_purge() {
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("empty");
    fs::create_dir_all(empty.join("lost+found")).unwrap();
    let (code, v, _) = run(cmd().args(["--data-dir", empty.to_str().unwrap()]));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], false);
    assert_eq!(v["facts"]["purge"]["purged"], serde_json::json!([]));
    let (code, v, err) =
        run(cmd().args(["--data-dir", t.path().join("missing").to_str().unwrap()]));
    assert_eq!(code, 0);
    assert_eq!(v["changed"], false);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn data_dir_from_upstream_fact() {
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    let up = format!(
        r#"{{"v":1,"tool":"x","tool_version":"0","ok":true,"changed":false,"facts":{{"data_dir":"{}","custom":1}}}}"#,
        d.display()
    );
    let (code, v, err) = run(cmd().write_stdin(up));
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["facts"]["custom"], 1);
    assert!(!d.join("member").exists());
}

#[test]
fn refuses_a_data_dir_another_run_owns() {
    // A restore (or another purge) holding the data dir's claim: the purge exits 7 naming it
    // and moves nothing; once released, it goes ahead.
    let t = tempfile::tempdir().unwrap();
    let d = etcd_dir(t.path(), "d");
    let owner = etcd_common::atomic::claim(&d).unwrap();
    let (code, v, err) = run(cmd().args(["--data-dir", d.to_str().unwrap()]));
    assert_eq!(code, 7, "{v} {err}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("another run (pid {}", std::process::id())),
        "{msg}"
    );
    assert!(d.join("member/snap/db").is_file());
    drop(owner);
    let (code, v, err) = run(cmd().args(["--data-dir", d.to_str().unwrap()]));
    assert_eq!(code, 0, "{v} {err}");
    assert!(!d.join("member").exists());
    assert!(!t.path().join("d.lock").exists());
}

/// A copy to a filesystem without room for it: refused (6) before anything is stopped or
/// copied; the member dir stays, and no `.part` is left on the small filesystem.
#[test]
fn cross_filesystem_copy_checks_space_first() {
    let t = tempfile::tempdir().unwrap();
    let small = t.path().join("small");
    fs::create_dir(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("cannot mount a tmpfs here (not root?): skipped");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(small.clone());
    let d = etcd_dir(t.path(), "d");
    fs::write(d.join("member/snap/db"), vec![7u8; 4 << 20]).unwrap();
    let db_sha = sha256_hex(&d.join("member/snap/db"));
    let to = small.join("purged");
    let (code, v, err) = run(cmd().args([
        "--data-dir",
        d.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
        "--cross-fs",
        "copy",
    ]));
    assert_eq!(code, 6, "{v}\n{err}");
    assert!(err.contains("bytes free"), "{err}");
    assert_eq!(sha256_hex(&d.join("member/snap/db")), db_sha);
    let left: Vec<_> = fs::read_dir(&small)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty()
            || (left.len() == 1 && to.is_dir() && fs::read_dir(&to).unwrap().count() == 0),
        "left on the small filesystem: {left:?}"
    );
}
