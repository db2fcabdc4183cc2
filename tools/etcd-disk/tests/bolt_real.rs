//! Real etcd 3.4.23 and 3.5.1 against the bbolt reader and writer (self-contained: spawns the
//! binaries; skipped with a message when they are absent).
//!
//! Per version: start a one-member cluster on 127.0.8.x:2379/2380, write puts, overwrites,
//! deletes, a lease, a txn, values of 5-9 KiB (overflow pages) and ~2000 keys (multi-level
//! trees); `snapshot save`; our `status` must equal etcdctl's (3.4) / etcdutl's (3.5) JSON on
//! the snapshot file and on the stopped member's raw `member/snap/db`. Then the db is rewritten
//! by our writer (identity; and with edits: a `members_removed` key put then deleted, a `meta`
//! value re-put unchanged), etcd is started on the data dir each time and must serve exactly the
//! same keys (value, create/mod revision, version, lease), accept a new write, and etcdctl's
//! `snapshot status` must accept the file with the same hash/revision/key count.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_disk::bolt::{self, BoltDb, Edits};
use etcd_disk::snapshot;

struct Bins {
    etcd: PathBuf,
    etcdctl: PathBuf,
    /// `snapshot status` command (etcdctl for 3.4, etcdutl for 3.5).
    status: PathBuf,
}

fn bins(v35: bool) -> Option<Bins> {
    let b = if v35 {
        Bins {
            etcd: "/tmp/etcd-3.5.1/etcd".into(),
            etcdctl: "/tmp/etcd-3.5.1/etcdctl".into(),
            status: "/tmp/etcd-3.5.1/etcdutl".into(),
        }
    } else {
        Bins {
            etcd: "/usr/bin/etcd".into(),
            etcdctl: "/usr/bin/etcdctl".into(),
            status: "/usr/bin/etcdctl".into(),
        }
    };
    if b.etcd.exists() && b.etcdctl.exists() && b.status.exists() {
        Some(b)
    } else {
        eprintln!(
            "skipping: etcd binaries for {} not found",
            if v35 { "3.5.1" } else { "3.4.23" }
        );
        None
    }
}

struct Etcd {
    child: Child,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // SIGTERM, then wait; SIGKILL if it does not stop.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ctl(b: &Bins, ip: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut c = Command::new(&b.etcdctl);
    c.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=http://{ip}:2379"))
        .args(args);
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped());
    let mut ch = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut si = ch.stdin.take().unwrap();
        if let Some(s) = stdin {
            si.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = ch.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn start(b: &Bins, ip: &str, data: &Path, log: &Path) -> Etcd {
    let logf = std::fs::File::create(log).unwrap();
    let child = Command::new(&b.etcd)
        .args(["--name", "n1", "--data-dir"])
        .arg(data)
        .arg(format!("--listen-client-urls=http://{ip}:2379"))
        .arg(format!("--advertise-client-urls=http://{ip}:2379"))
        .arg(format!("--listen-peer-urls=http://{ip}:2380"))
        .arg(format!("--initial-advertise-peer-urls=http://{ip}:2380"))
        .arg(format!("--initial-cluster=n1=http://{ip}:2380"))
        .arg("--initial-cluster-token=bolt-real")
        .stdout(Stdio::null())
        .stderr(logf)
        .spawn()
        .unwrap();
    let e = Etcd { child };
    let t = Instant::now();
    loop {
        let ok = Command::new(&b.etcdctl)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints=http://{ip}:2379"))
            .args(["endpoint", "health", "--command-timeout=1s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return e;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "etcd did not become healthy, see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn populate(b: &Bins, ip: &str) {
    ctl(b, ip, &["put", "foo", "bar"], None);
    ctl(b, ip, &["put", "foo", "bar2"], None);
    ctl(b, ip, &["put", "k2", "v2"], None);
    ctl(b, ip, &["del", "k2"], None);
    let lease = ctl(b, ip, &["lease", "grant", "3600"], None);
    let id = lease.split_whitespace().nth(1).unwrap().to_string();
    ctl(
        b,
        ip,
        &["put", "leased", "val", &format!("--lease={id}")],
        None,
    );
    ctl(
        b,
        ip,
        &["txn"],
        Some("value(\"foo\") = \"bar2\"\n\nput foo bar3\nput tx2 yes\n\n\n"),
    );
    for i in 0..40usize {
        let v: String = std::iter::repeat((b'a' + (i % 26) as u8) as char)
            .take(5000 + i * 97)
            .collect();
        ctl(b, ip, &["put", &format!("big/{i:03}"), &v], None);
    }
    for batch in 0..20 {
        let mut s = String::from("\n");
        for i in 0..100 {
            let n = batch * 100 + i;
            s.push_str(&format!(
                "put small/{n:05} value-{n}-{}\n",
                n * 7919 % 10007
            ));
        }
        s.push_str("\n\n");
        ctl(b, ip, &["txn"], Some(&s));
    }
    for i in 0..5 {
        ctl(b, ip, &["put", "small/00001", &format!("over-{i}")], None);
    }
    ctl(b, ip, &["del", "small/0002", "--prefix"], None);
}

/// Every key etcd serves, with its value, revisions, version and lease.
fn dump(b: &Bins, ip: &str) -> serde_json::Value {
    let out = ctl(b, ip, &["get", "", "--from-key", "-w", "json"], None);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["kvs"].clone()
}

fn etcd_status(b: &Bins, f: &Path) -> serde_json::Value {
    let out = Command::new(&b.status)
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "snapshot status {}: {}",
        f.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn our_status(f: &Path) -> serde_json::Value {
    let (s, _) = snapshot::status_of(f).unwrap();
    serde_json::from_str(&s.etcdctl.to_json()).unwrap()
}

fn without_size(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("totalSize");
    }
    v
}

fn run(v35: bool, ip: &str) {
    let Some(b) = bins(v35) else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("etcd.log");
    let snap = dir.path().join("snap.db");
    let before;
    {
        let _e = start(&b, ip, &data, &log);
        populate(&b, ip);
        ctl(&b, ip, &["snapshot", "save", snap.to_str().unwrap()], None);
        before = dump(&b, ip);
    }
    assert!(
        before.as_array().map(|a| a.len()).unwrap_or(0) > 1500,
        "populate failed"
    );
    // status equals etcd's on the snapshot file and on the raw db
    let db_path = data.join("member/snap/db");
    for f in [&snap, &db_path] {
        assert_eq!(
            our_status(f),
            etcd_status(&b, f),
            "status of {}",
            f.display()
        );
    }
    assert!(snapshot::verify_trailer(&snap).unwrap().unwrap().matches());
    assert!(snapshot::verify_trailer(&db_path).unwrap().is_none());
    let orig = our_status(&db_path);
    let (st, _) = snapshot::status_of(&db_path).unwrap();
    assert!(st.members.iter().any(|m| m.name == "n1"));
    assert!(st.consistent_index.unwrap_or(0) > 0);
    assert_eq!(st.term.is_some(), v35);
    assert!(st.tombstones >= 2);

    // 1. identity rewrite
    {
        let src = BoltDb::open(&db_path).unwrap();
        bolt::rewrite(&src, &Edits::new(), &db_path).unwrap();
    }
    assert_eq!(
        without_size(our_status(&db_path)),
        without_size(orig.clone())
    );
    assert_eq!(our_status(&db_path), etcd_status(&b, &db_path));
    {
        let _e = start(&b, ip, &data, &log);
        assert_eq!(dump(&b, ip), before, "keys after identity rewrite");
    }

    // 2. rewrite with edits: put a members_removed key + re-put meta/consistent_index unchanged,
    //    then a second rewrite deleting that key: content (hash) back to what it was (etcd 3.5
    //    itself advanced meta values when it ran in step 1, so compare with the db as it is now).
    let pre_edit = our_status(&db_path);
    {
        let src = BoltDb::open(&db_path).unwrap();
        let meta = src.bucket(b"meta").unwrap().unwrap();
        let ci = src.get(&meta, b"consistent_index").unwrap().unwrap();
        let mut e = Edits::new();
        e.put(b"members_removed", b"deadbeef", b"removed").unwrap();
        e.put(b"meta", b"consistent_index", &ci).unwrap();
        bolt::rewrite(&src, &e, &db_path).unwrap();
    }
    let (st, _) = snapshot::status_of(&db_path).unwrap();
    assert_eq!(st.members_removed, vec!["00000000deadbeef".to_string()]);
    assert_eq!(our_status(&db_path), etcd_status(&b, &db_path));
    {
        let src = BoltDb::open(&db_path).unwrap();
        let mut e = Edits::new();
        e.delete(b"members_removed", b"deadbeef").unwrap();
        bolt::rewrite(&src, &e, &db_path).unwrap();
    }
    assert_eq!(without_size(our_status(&db_path)), without_size(pre_edit));
    {
        let _e = start(&b, ip, &data, &log);
        assert_eq!(dump(&b, ip), before, "keys after edited rewrite");
        // etcd can write into our file (free list rebuilt from our compact layout)
        ctl(&b, ip, &["put", "after-rewrite", "ok"], None);
        let v = ctl(
            &b,
            ip,
            &["get", "after-rewrite", "--print-value-only"],
            None,
        );
        assert_eq!(v.trim(), "ok");
    }
    // after etcd wrote to it, both checkers still agree
    assert_eq!(our_status(&db_path), etcd_status(&b, &db_path));
    let db = BoltDb::open(&db_path).unwrap();
    assert!(bolt::check(&db).unwrap().is_ok());
}

#[test]
fn real_etcd_34() {
    run(false, "127.0.8.11");
}

#[test]
fn real_etcd_35() {
    run(true, "127.0.8.12");
}
