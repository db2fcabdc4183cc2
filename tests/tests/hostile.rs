//! Safety promises under hostile input and races (issue 11), against a real etcd 3.5.1 member:
//!
//! - one owner per target: 20 pairs of racing `etcd-snap save` to one FILE, `etcd-snap restore`
//!   into one data dir and `etcd-wal-backup backup` to one backup dir: every pair ends with one
//!   success whose output is complete and verifies, and one exit 7 naming the other run; no
//!   `.part` or lock file is left; a dead run's `.part` is removed by the next run;
//! - never follow, never clobber: a symlink, FIFO or device node planted at FILE, FILE.part or
//!   the lock file is refused (exit 7) and left as it was (a symlink's target untouched); an
//!   existing FILE is refused without `--force` and moved to FILE.prev with it;
//! - a symlink or FIFO inside a backup is refused by `etcd-wal-backup restore` (exit 3), even
//!   when the manifest's hash matches what the link points to; the failed restore leaves no
//!   data dir behind;
//! - a password in an endpoint URL is refused (exit 2) and appears in no output or file;
//! - dirs are created 0700 under `umask 000`.
#![allow(clippy::unwrap_used)]

use etcd_rescue_tests::{Cluster, ClusterOpts, Version};
use serde_json::Value;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const PAIRS: usize = 20;

fn parse(out: &Output) -> (i32, Value, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON line on stdout, got: {stdout}\nstderr: {stderr}"
    );
    let v: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad JSON {e}: {stdout}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn run(mut c: Command) -> (i32, Value, String) {
    parse(&c.output().unwrap())
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Start two runs at once; return both results sorted by exit code.
fn race(a: Command, b: Command) -> Vec<(i32, Value, String)> {
    let (ca, cb) = (spawn(a), spawn(b));
    let mut r = vec![
        parse(&ca.wait_with_output().unwrap()),
        parse(&cb.wait_with_output().unwrap()),
    ];
    r.sort_by_key(|x| x.0);
    r
}

/// One pair's verdict: exactly one success, the other refused (7) naming the first. Returns
/// whether the two overlapped (the refusal names the running owner rather than its output).
fn one_owner(pair: usize, r: &[(i32, Value, String)]) -> bool {
    let codes: Vec<i32> = r.iter().map(|x| x.0).collect();
    assert_eq!(
        codes,
        vec![0, 7],
        "pair {pair}: {:?}\n{:?}",
        r.iter().map(|x| &x.1).collect::<Vec<_>>(),
        r.iter().map(|x| &x.2).collect::<Vec<_>>()
    );
    let msg = r[1].1["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("another run (pid ")
            || msg.contains("exists")
            || msg.contains("holds \"member\""),
        "pair {pair}: the refusal names the other run or what it made: {msg}"
    );
    msg.contains("another run (pid ")
}

async fn cluster() -> Cluster {
    let c = Cluster::start(Version::V35, ClusterOpts::members(1))
        .await
        .unwrap();
    let mut cl = c.client_all().await.unwrap();
    // ~4 MB: a save takes long enough for the two runs of a pair to overlap.
    etcd_rescue_tests::fill_k8s_like(&mut cl, 3000, 800, 1600, 16)
        .await
        .unwrap();
    c
}

fn mknod_char(p: &Path) -> bool {
    let ok = Command::new("mknod")
        .arg(p)
        .args(["c", "1", "3"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!(
            "mknod {} failed (not root?): device-node case skipped",
            p.display()
        );
    }
    ok
}

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part") || n.ends_with(".lock"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_saves_have_one_owner() {
    let c = cluster().await;
    let root = c.dir.join("saves");
    std::fs::create_dir(&root).unwrap();
    let mut overlapped = 0;
    for i in 0..PAIRS {
        let f = root.join(format!("s{i}.db"));
        let save = || {
            let mut x = c.tool("etcd-snap");
            x.args(["save", s(&f)]);
            x
        };
        let r = race(save(), save());
        overlapped += usize::from(one_owner(i, &r));
        let won = &r[0].1;
        assert_eq!(won["facts"]["snapshot"]["path"], s(&f));
        // The winner's file is whole: it verifies, and its sha256 is what it reported.
        let (code, v, err) = run({
            let mut x = c.tool("etcd-snap");
            x.args(["verify", s(&f)]);
            x
        });
        assert_eq!(code, 0, "pair {i}: verify after a race: {v}\n{err}");
        assert_eq!(mode(&f), 0o600);
    }
    eprintln!("saves: {overlapped} of {PAIRS} pairs overlapped");
    assert_eq!(leftovers(&root), Vec::<String>::new());

    // A .part left by a dead run (nobody holds the claim) is removed, not refused forever.
    let f = root.join("stale.db");
    std::fs::write(root.join("stale.db.part"), b"half a snapshot").unwrap();
    let (code, v, err) = run({
        let mut x = c.tool("etcd-snap");
        x.args(["save", s(&f)]);
        x
    });
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(v["warnings"][0].as_str().unwrap().contains("stale.db.part"));
    assert_eq!(leftovers(&root), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_never_follows_never_clobbers() {
    let c = cluster().await;
    let root = c.dir.join("planted");
    std::fs::create_dir(&root).unwrap();
    let victim = root.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let untouched = |what: &str| {
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "{what}");
        assert_eq!(mode(&victim), 0o644, "{what}");
    };
    let save = |extra: &[&str], f: &Path| {
        let mut x = c.tool("etcd-snap");
        x.arg("save").args(extra).arg(f);
        run(x)
    };

    // A symlink at FILE.part, FILE, FILE.gz.part (--compress) and FILE.lock.
    for (i, (planted, extra)) in [
        ("a.db.part", &[][..]),
        ("b.db", &[][..]),
        ("c.db.gz.part", &["--compress"][..]),
        ("d.db.lock", &[][..]),
    ]
    .iter()
    .enumerate()
    {
        let link = root.join(planted);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let f = root.join(["a.db", "b.db", "c.db", "d.db"][i]);
        let (code, v, err) = save(extra, &f);
        assert_eq!(code, 7, "symlink at {planted}: {v}\n{err}");
        untouched(planted);
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    // A FIFO and a device node as FILE or FILE.part: refused, left as they were.
    let fifo = root.join("fifo.db");
    mkfifo(&fifo);
    let (code, v, _) = save(&[], &fifo);
    assert_eq!(code, 7, "{v}");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    mkfifo(&root.join("fifo2.db.part"));
    assert_eq!(save(&[], &root.join("fifo2.db")).0, 7);
    let dev = root.join("dev.db");
    if mknod_char(&dev) {
        for f in [&dev, &root.join("dev2.db")] {
            if f != &dev {
                assert!(mknod_char(&root.join("dev2.db.part")));
            }
            let (code, v, _) = save(&["--force"], f);
            assert_eq!(code, 7, "{v}");
        }
        assert!(std::fs::symlink_metadata(&dev)
            .unwrap()
            .file_type()
            .is_char_device());
        assert!(std::fs::symlink_metadata(root.join("dev2.db.part"))
            .unwrap()
            .file_type()
            .is_char_device());
    }

    // An existing regular FILE: refused without --force, moved to FILE.prev with it.
    let f = root.join("old.db");
    std::fs::write(&f, b"yesterday").unwrap();
    let (code, v, _) = save(&[], &f);
    assert_eq!(code, 7, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("--force"));
    assert_eq!(std::fs::read(&f).unwrap(), b"yesterday");
    let (code, v, err) = save(&["--force"], &f);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(
        v["facts"]["snapshot"]["previous"]["action"], "moved_aside",
        "{v}"
    );
    assert_eq!(
        std::fs::read(root.join("old.db.prev")).unwrap(),
        b"yesterday"
    );
    assert_ne!(std::fs::read(&f).unwrap(), b"yesterday");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_backup_never_follows_never_clobbers() {
    let c = cluster().await;
    let root = c.dir.join("planted");
    std::fs::create_dir(&root).unwrap();
    let victim = root.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let untouched = |what: &str| {
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "{what}");
        assert_eq!(mode(&victim), 0o644, "{what}");
    };
    // etcd-wal-backup backup --archive through a planted symlink at the archive's .part, a
    // symlink and a FIFO as the backup dir.
    let data_dir = c.members[0].data_dir.clone();
    let wb = |dir: &Path, archive: bool| {
        let mut x = c.tool("etcd-wal-backup");
        x.args(["backup", "--data-dir", s(&data_dir), "--backup-dir", s(dir)]);
        if archive {
            x.arg("--archive");
        }
        run(x)
    };
    std::os::unix::fs::symlink(&victim, root.join("wb.tar.gz.part")).unwrap();
    let (code, v, err) = wb(&root.join("wb"), true);
    assert_eq!(code, 7, "{v}\n{err}");
    untouched("wb.tar.gz.part");
    std::os::unix::fs::symlink(&victim, root.join("wl")).unwrap();
    assert_eq!(wb(&root.join("wl"), false).0, 7);
    untouched("wl");
    mkfifo(&root.join("wf"));
    assert_eq!(wb(&root.join("wf"), false).0, 7);
}

/// A cluster and a snapshot of it in `<dir>/restores/good.db`.
async fn with_snapshot() -> (Cluster, PathBuf, PathBuf) {
    let c = cluster().await;
    let root = c.dir.join("restores");
    std::fs::create_dir(&root).unwrap();
    let snapshot = root.join("good.db");
    let (code, v, err) = run({
        let mut x = c.tool("etcd-snap");
        x.args(["save", s(&snapshot)]);
        x
    });
    assert_eq!(code, 0, "{v}\n{err}");
    (c, root, snapshot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_restores_have_one_owner() {
    let (c, root, snapshot) = with_snapshot().await;
    let restore = |dd: &Path| {
        let mut x = c.tool("etcd-snap");
        x.args(["restore", "--data-dir", s(dd), s(&snapshot)]);
        x
    };
    let mut overlapped = 0;
    for i in 0..PAIRS {
        let dd = root.join(format!("d{i}"));
        let r = race(restore(&dd), restore(&dd));
        overlapped += usize::from(one_owner(i, &r));
        assert_eq!(r[0].1["changed"], true);
        assert!(
            dd.join("member/snap/db").is_file(),
            "pair {i}: {:?}",
            r[0].1
        );
        assert!(dd.join("member/wal").is_dir(), "pair {i}");
        assert_eq!(mode(&dd), 0o700);
    }
    eprintln!("restores: {overlapped} of {PAIRS} pairs overlapped");
    assert_eq!(leftovers(&root), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_makes_dirs_0700_under_umask_000() {
    let (c, root, snapshot) = with_snapshot().await;
    // umask 000: the missing parents a restore creates are 0700 all the same.
    let deep = root.join("u/v/data");
    let tool = etcd_rescue_tests::tool_bin("etcd-snap");
    let mut sh = c.command_for(etcd_rescue_tests::ALL, "sh");
    sh.args([
        "-c",
        "umask 000; exec \"$0\" restore --data-dir \"$1\" \"$2\"",
        s(&tool),
        s(&deep),
        s(&snapshot),
    ]);
    let (code, v, err) = run(sh);
    assert_eq!(code, 0, "{v}\n{err}");
    for d in [root.join("u"), root.join("u/v"), deep.clone()] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
}

/// A stopped member (its data dir) and a dir for backups.
async fn stopped() -> (Cluster, PathBuf, PathBuf) {
    let mut c = cluster().await;
    c.stop_all().await.unwrap();
    let data_dir = c.members[0].data_dir.clone();
    let backups = c.dir.join("backups");
    std::fs::create_dir(&backups).unwrap();
    (c, data_dir, backups)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_wal_backups_have_one_owner() {
    // Racing wal-backup backups of the stopped member to one backup dir.
    let (c, data_dir, backups) = stopped().await;
    let backup = |b: &Path| {
        let mut x = c.tool("etcd-wal-backup");
        x.args(["backup", "--data-dir", s(&data_dir), "--backup-dir", s(b)]);
        x
    };
    let mut overlapped = 0;
    for i in 0..PAIRS {
        let b = backups.join(format!("b{i}"));
        let r = race(backup(&b), backup(&b));
        overlapped += usize::from(one_owner(i, &r));
        assert!(b.join("manifest.json").is_file(), "pair {i}");
    }
    eprintln!("wal-backup backups: {overlapped} of {PAIRS} pairs overlapped");
    // A dir backup and an archive backup to one name share the staging dir BACKUP_DIR.part:
    // they never trample each other (both succeed one after the other, or one is refused).
    for i in 0..5 {
        let b = backups.join(format!("mixed{i}"));
        let mut arch = backup(&b);
        arch.arg("--archive");
        let r = race(backup(&b), arch);
        let codes: Vec<i32> = r.iter().map(|x| x.0).collect();
        assert!(
            codes == [0, 0] || codes == [0, 7],
            "mixed pair {i}: {:?}",
            r.iter().map(|x| &x.1).collect::<Vec<_>>()
        );
        for (code, v, _) in &r {
            if *code == 0 {
                let out = PathBuf::from(v["facts"]["backup"]["path"].as_str().unwrap());
                assert!(
                    out.join("manifest.json").is_file() || out.is_file(),
                    "mixed pair {i}: {v}"
                );
            }
        }
    }
    assert_eq!(leftovers(&backups), Vec::<String>::new());
    // A dead run's backup dir .part is removed, not refused forever.
    let b = backups.join("stale");
    std::fs::create_dir(backups.join("stale.part")).unwrap();
    std::fs::write(backups.join("stale.part/junk"), b"x").unwrap();
    let (code, v, err) = run(backup(&b));
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(b.join("manifest.json").is_file());
    assert_eq!(leftovers(&backups), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_inside_a_backup_is_refused() {
    let (c, data_dir, backups) = stopped().await;
    let b = backups.join("b");
    let (code, v, err) = run({
        let mut x = c.tool("etcd-wal-backup");
        x.args(["backup", "--data-dir", s(&data_dir), "--backup-dir", s(&b)]);
        x
    });
    assert_eq!(code, 0, "{v}\n{err}");
    // A symlink inside a backup, with the manifest's hash set to match its target: refused,
    // and the failed restore leaves no data dir behind.
    let secret = c.dir.join("secret");
    std::fs::write(&secret, b"root:x:0:0:secret").unwrap();
    let mpath = b.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    let sha = {
        use sha2::{Digest, Sha256};
        etcd_disk::snapshot::hex(&Sha256::digest(b"root:x:0:0:secret"))
    };
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == "member/snap/db" {
            f["sha256"] = Value::from(sha.clone());
            f["size_bytes"] = Value::from(17);
        }
    }
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    std::fs::remove_file(b.join("member/snap/db")).unwrap();
    std::os::unix::fs::symlink(&secret, b.join("member/snap/db")).unwrap();
    let target = c.dir.join("new-data");
    let wrestore = |b: &Path| {
        let mut x = c.tool("etcd-wal-backup");
        x.args(["restore", "--backup-dir", s(b), "--data-dir", s(&target)]);
        run(x)
    };
    let (code, v, err) = wrestore(&b);
    assert_eq!(code, 3, "{v}\n{err}");
    assert!(v["error"]["message"].as_str().unwrap().contains("symlink"));
    assert!(!target.exists(), "a failed restore leaves no data dir");
    // A FIFO in its place: refused too (and nothing blocks on it).
    std::fs::remove_file(b.join("member/snap/db")).unwrap();
    mkfifo(&b.join("member/snap/db"));
    let (code, v, _) = wrestore(&b);
    assert_eq!(code, 3, "{v}");
    assert!(!target.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_in_urls_are_refused_and_never_shown() {
    let c = cluster().await;
    let pw = "S3cretPW-hostile";
    let ip = c.members[0].ip.clone();
    let url = format!("http://root:{pw}@{ip}:2379");
    let root = c.dir.join("creds");
    std::fs::create_dir(&root).unwrap();
    let data_dir = c.members[0].data_dir.clone();
    let check = |what: &str, out: Output| {
        let (code, v, err) = parse(&out);
        assert_eq!(code, 2, "{what}: {v}\n{err}");
        let all = format!("{v}{err}");
        assert!(!all.contains(pw), "{what}: the password was printed: {all}");
        assert!(all.contains(&ip), "{what}: the endpoint is named: {all}");
    };
    let cmds: Vec<(&str, Vec<String>)> = vec![
        (
            "etcd-snap",
            vec![
                "save".into(),
                "--endpoints".into(),
                url.clone(),
                s(&root.join("s.db")).into(),
            ],
        ),
        ("etcd-health", vec!["--endpoints".into(), url.clone()]),
        (
            "etcd-detect-version",
            vec!["--endpoints".into(), url.clone()],
        ),
        (
            "etcd-wal-backup",
            vec![
                "backup".into(),
                "--endpoints".into(),
                url.clone(),
                "--data-dir".into(),
                s(&data_dir).into(),
                "--backup-dir".into(),
                s(&root.join("b")).into(),
            ],
        ),
    ];
    for (tool, args) in &cmds {
        check(tool, c.tool(tool).args(args).output().unwrap());
    }
    // From the environment, and from an upstream envelope's facts.
    check(
        "ETCDCTL_ENDPOINTS",
        c.tool("etcd-snap")
            .env("ETCDCTL_ENDPOINTS", &url)
            .args(["save", s(&root.join("e.db"))])
            .output()
            .unwrap(),
    );
    let upstream = format!(
        "{{\"v\":1,\"tool\":\"x\",\"tool_version\":\"0\",\"ok\":true,\"changed\":false,\"facts\":{{\"endpoints\":[\"{url}\"]}},\"data\":{{}},\"warnings\":[],\"error\":null}}\n"
    );
    let mut child = c
        .tool("etcd-health")
        .env_remove("ETCDCTL_ENDPOINTS")
        .args(["--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(upstream.as_bytes())
            .unwrap();
    }
    check("upstream facts", child.wait_with_output().unwrap());
    // Nothing written anywhere holds it.
    for e in walk(&root) {
        let b = std::fs::read(&e).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&b).contains(pw),
            "{} holds the password",
            e.display()
        );
    }
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
