//! The CLI contract of etcd-snap without a server: help, usage errors, bad stdin, an unreachable
//! endpoint, and offline status/verify/restore on snapshot files crafted with etcd-disk's writer,
//! including corrupt ones.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use etcd_disk::bolt::{self, Edits};
use etcd_disk::proto::{encode, KeyValue};
use etcd_disk::snapshot::revision_bytes;
use etcd_test_support::{run, tool};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

fn cmd() -> Command {
    tool("etcd-snap")
}

/// A small etcd-like db: 200 revisions of 150 keys (some overwritten, some deleted), a member,
/// meta. Returns (image bytes, live user keys, revision).
fn image(dir: &Path) -> (Vec<u8>, u64, i64) {
    let mut e = Edits::new();
    let mut rev = 1i64;
    for n in 0..150 {
        rev += 1;
        let kv = KeyValue {
            key: format!("/k/{n}").into_bytes(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            value: vec![b'x'; 100 + n],
            lease: 0,
        };
        e.put(b"key", &revision_bytes(rev, 0), &encode(&kv))
            .unwrap();
    }
    for n in 0..30 {
        rev += 1;
        let kv = KeyValue {
            key: format!("/k/{n}").into_bytes(),
            mod_revision: rev,
            version: 2,
            value: b"again".to_vec(),
            ..Default::default()
        };
        e.put(b"key", &revision_bytes(rev, 0), &encode(&kv))
            .unwrap();
    }
    for n in 100..120 {
        rev += 1;
        let mut k = revision_bytes(rev, 0).to_vec();
        k.push(b't');
        let kv = KeyValue {
            key: format!("/k/{n}").into_bytes(),
            ..Default::default()
        };
        e.put(b"key", &k, &encode(&kv)).unwrap();
    }
    e.put(
        b"members",
        b"8e9e05c52164694d",
        br#"{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default"}"#,
    )
    .unwrap();
    e.put(b"meta", b"consistent_index", &9u64.to_be_bytes())
        .unwrap();
    e.put(b"cluster", b"clusterVersion", b"3.5.0").unwrap();
    for b in [
        "alarm",
        "auth",
        "authRoles",
        "authUsers",
        "lease",
        "members_removed",
    ] {
        e.create_bucket(b.as_bytes()).unwrap();
    }
    let p = dir.join("image");
    bolt::create(4096, &e, &p).unwrap();
    let b = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    (b, 130, rev)
}

fn with_trailer(img: &[u8]) -> Vec<u8> {
    let mut v = img.to_vec();
    v.extend_from_slice(&Sha256::digest(img));
    v
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

struct Files {
    _d: tempfile::TempDir,
    dir: PathBuf,
    good: PathBuf,
    gz: PathBuf,
    raw: PathBuf,
    users: u64,
    rev: i64,
}

fn files() -> Files {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_path_buf();
    let (img, users, rev) = image(&dir);
    let snap = with_trailer(&img);
    let good = dir.join("s.db");
    std::fs::write(&good, &snap).unwrap();
    let gz = dir.join("s.db.gz");
    std::fs::write(&gz, gzip(&snap)).unwrap();
    let raw = dir.join("db");
    std::fs::write(&raw, &img).unwrap();
    Files {
        _d: d,
        dir,
        good,
        gz,
        raw,
        users,
        rev,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn help_and_usage_errors() {
    let out = cmd().arg("--help").output().unwrap();
    assert!(out.status.success());
    let h = String::from_utf8_lossy(&out.stdout);
    for sub in ["save", "status", "verify", "restore"] {
        assert!(h.contains(sub), "{h}");
    }
    let out = cmd().args(["restore", "--help"]).output().unwrap();
    let h = String::from_utf8_lossy(&out.stdout);
    assert!(h.contains("--initial-cluster-token") && h.contains("--env-file"));
    let (code, v, err) = run(&mut cmd());
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["kind"], "usage");
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, _) = run(cmd().args(["restore", "--bump-revision", "5", "x.db"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(cmd().args(["restore", "--mark-compacted", "x.db"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(cmd().args(["save", "--stall-timeout", "soon", "x.db"]));
    assert_eq!(code, 2);
    let (code, v, _) = run(cmd().args(["status", "--input", "none"]));
    assert_eq!(code, 2, "{v}");
    let (code, v, _) = run(cmd().args(["status", "/nonexistent/s.db"]));
    assert_eq!(code, 3, "{v}");
}

#[test]
fn bad_stdin_and_upstream_failure() {
    let (code, v, _) = run(cmd().arg("status").write_stdin("not json\n"));
    assert_eq!(code, 3);
    assert_eq!(v["error"]["kind"], "bad_input");
    let up = r#"{"v":1,"tool":"etcd-x","tool_version":"0","ok":false,"changed":false,"facts":{},"data":{},"warnings":[],"error":{"kind":"unreachable","message":"down","exit_code":4}}"#;
    let (code, v, _) = run(cmd().arg("verify").write_stdin(up));
    assert_eq!(code, 4);
    assert_eq!(v["tool"], "etcd-x");
}

#[test]
fn unreachable_endpoint_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("s.db");
    let (code, v, err) = run(cmd().args([
        "save",
        "--endpoints",
        "127.0.0.1:1",
        "--dial-timeout",
        "1s",
        s(&f),
    ]));
    assert_eq!(code, 4, "{v}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1:1"));
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
}

#[test]
fn status_on_db_gz_and_raw_is_the_same() {
    let f = files();
    let (code, a, err) = run(cmd().args(["status", s(&f.good)]));
    assert_eq!(code, 0, "{a}\n{err}");
    let e = &a["data"]["etcdctl"];
    assert_eq!(e["revision"], f.rev);
    assert_eq!(a["data"]["user_keys"], f.users);
    assert_eq!(a["data"]["has_sha256_trailer"], true);
    assert_eq!(a["facts"]["snapshot"]["revision"], f.rev);
    assert_eq!(a["data"]["members"][0]["id"], "8e9e05c52164694d");
    assert_eq!(a["data"]["cluster_version"], "3.5.0");
    assert!(err.contains("(hash, revision, total keys, size as etcdctl)"));
    for other in [&f.gz, &f.raw] {
        let (code, b, _) = run(cmd().args(["status", s(other)]));
        assert_eq!(code, 0, "{b}");
        assert_eq!(&b["data"]["etcdctl"], e);
    }
    let (_, b, _) = run(cmd().args(["status", s(&f.raw)]));
    assert_eq!(b["data"]["has_sha256_trailer"], false);
}

#[test]
fn verify_good_and_corrupt() {
    let f = files();
    for good in [&f.good, &f.gz] {
        let (code, v, err) = run(cmd().args(["verify", s(good)]));
        assert_eq!(code, 0, "{v}\n{err}");
        assert_eq!(v["data"]["trailer"], "ok");
        assert_eq!(v["facts"]["snapshot"]["verified"], true);
    }
    // raw db: no trailer → 3, unless --skip-hash-check
    let (code, v, _) = run(cmd().args(["verify", s(&f.raw)]));
    assert_eq!(code, 3, "{v}");
    let (code, v, _) = run(cmd().args(["verify", "--skip-hash-check", s(&f.raw)]));
    assert_eq!(code, 0, "{v}");

    let bytes = std::fs::read(&f.good).unwrap();
    let n = bytes.len();
    let mut flipped = bytes.clone();
    flipped[n - 100] ^= 0xff;
    let mut page_hdr = bytes.clone();
    page_hdr[2 * 4096 + 8] = 0x77; // page 2's flags: not a page type
    let gz = gzip(&bytes);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flipped.db", flipped),
        ("badpage.db", page_hdr),
        ("truncated.db", bytes[..n - 700].to_vec()),
        ("notrailer.db", bytes[..n - 32].to_vec()),
        ("cut.db.gz", gz[..gz.len() / 2].to_vec()),
        ("empty.db", Vec::new()),
    ];
    for (name, b) in cases {
        let p = f.dir.join(name);
        std::fs::write(&p, b).unwrap();
        let (code, v, err) = run(cmd().args(["verify", s(&p)]));
        assert_eq!(code, 3, "{name}: {v}\n{err}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(s(&p)) && m.contains("offset"), "{name}: {m}");
        assert_eq!(err.lines().count(), 1, "{err}");
        if name == "flipped.db" {
            // Both digests in hex, as sha256sum prints them (not etcd's decimal byte arrays).
            let trailer: String = bytes[n - 32..].iter().map(|b| format!("{b:02x}")).collect();
            assert!(m.contains(&format!("the trailer says {trailer}")), "{m}");
            assert!(!m.contains('['), "{m}");
        }
    }
}

#[test]
fn verify_reads_the_path_from_upstream_facts() {
    let f = files();
    let up = format!(
        r#"{{"v":1,"tool":"etcd-snap","tool_version":"0","ok":true,"changed":true,"facts":{{"snapshot":{{"path":"{}","sha256":"abc"}},"custom":1}},"data":{{}},"warnings":[],"error":null}}"#,
        s(&f.good)
    );
    let (code, v, _) = run(cmd().arg("verify").write_stdin(up));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["facts"]["custom"], 1);
    assert_eq!(v["facts"]["snapshot"]["sha256"], "abc");
    assert_eq!(v["facts"]["snapshot"]["verified"], true);
}

fn restore_args(dd: &Path) -> Vec<String> {
    [
        "restore",
        "--name",
        "b",
        "--initial-cluster",
        "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380",
        "--initial-cluster-token",
        "tt",
        "--initial-advertise-peer-urls",
        "http://10.0.0.2:2380",
        "--data-dir",
        s(dd),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect()
}

#[test]
fn restore_writes_the_spec_layout_and_refuses_a_rerun() {
    let f = files();
    let dd = f.dir.join("data");
    let (code, v, err) = run(cmd().args(restore_args(&dd)).arg(s(&f.good)));
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["facts"]["member_id"], "a000429f37de1964");
    assert_eq!(v["facts"]["cluster_id"], "fc866c2f5f0cb75f");
    assert_eq!(v["facts"]["revision"], f.rev);
    let snap = dd.join("member/snap/0000000000000001-0000000000000003.snap");
    let b = std::fs::read(&snap).unwrap();
    // spec §7.3 test vector
    assert_eq!(b.len(), 7558);
    assert_eq!(
        etcd_disk::snapshot::hex(&Sha256::digest(&b)),
        "2430eed83f796d44cbc10439a5f6f645abd639285cec06e89b9e2ebabfd75697"
    );
    let wal = dd.join("member/wal/0000000000000000-0000000000000000.wal");
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 64_000_000);
    // 3.5.1's WAL byte for byte
    let wb = std::fs::read(&wal).unwrap();
    assert_eq!(
        etcd_disk::snapshot::hex(&Sha256::digest(&wb)),
        "d1a43c7b165ae19b06e1d63516d1a76c0a7eca45b42d2675dd37dc6dc8896b07"
    );
    // the db: members replaced, consistent index 3, term 1, user data intact
    let (st, _) = etcd_disk::snapshot::status_of(dd.join("member/snap/db")).unwrap();
    assert_eq!(st.members.len(), 3);
    assert_eq!((st.consistent_index, st.term), (Some(3), Some(1)));
    assert_eq!(st.etcdctl.revision, f.rev);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dd).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // nothing else next to the data dir
    let names: Vec<String> = std::fs::read_dir(&f.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    // rerun: refused, untouched
    let (code, v, _) = run(cmd().args(restore_args(&dd)).arg(s(&f.good)));
    assert_eq!(code, 7, "{v}");
    assert_eq!(std::fs::read(&snap).unwrap(), b);
}

#[test]
fn restore_from_gz_raw_env_file_and_bump() {
    let f = files();
    let env = f.dir.join("etcd.env");
    std::fs::write(
        &env,
        format!(
            "ETCD_NAME=b\nETCD_INITIAL_CLUSTER=a=http://10.0.0.1:2380,b=http://10.0.0.2:2380\n\
             ETCD_INITIAL_CLUSTER_TOKEN=tt\nETCD_INITIAL_ADVERTISE_PEER_URLS=http://10.0.0.2:2380\nETCD_DATA_DIR={}\n",
            s(&f.dir.join("fromenv"))
        ),
    )
    .unwrap();
    let (code, v, err) = run(cmd().args([
        "restore",
        "--env-file",
        s(&env),
        "--bump-revision",
        "1000",
        "--mark-compacted",
        s(&f.gz),
    ]));
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["facts"]["data_dir"], s(&f.dir.join("fromenv")));
    assert_eq!(v["facts"]["bumped_to"], f.rev + 1000);
    let (st, _) = etcd_disk::snapshot::status_of(f.dir.join("fromenv/member/snap/db")).unwrap();
    assert_eq!(st.scheduled_compact_rev, Some(f.rev + 1000));
    // explicit flag beats the env file
    let (code, v, _) = run(cmd().args([
        "restore",
        "--env-file",
        s(&env),
        "--data-dir",
        s(&f.dir.join("flag")),
        "--skip-hash-check",
        s(&f.raw),
    ]));
    assert_eq!(code, 0, "{v}");
    assert!(f.dir.join("flag/member/wal").is_dir());
    // raw db without --skip-hash-check: 3, nothing written
    let (code, v, _) = run(cmd().args([
        "restore",
        "--env-file",
        s(&env),
        "--data-dir",
        s(&f.dir.join("no")),
        s(&f.raw),
    ]));
    assert_eq!(code, 3, "{v}");
    assert!(!f.dir.join("no").exists());
}

#[test]
fn restore_refuses_corrupt_input_and_leaves_nothing() {
    let f = files();
    let bytes = std::fs::read(&f.good).unwrap();
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n / 2] ^= 0x01;
    let gz = gzip(&bytes);
    for (name, b) in [
        ("flipped.db", flipped),
        ("truncated.db", bytes[..n - 1000].to_vec()),
        ("cut.db.gz", gz[..gz.len() * 3 / 4].to_vec()),
    ] {
        let p = f.dir.join(name);
        std::fs::write(&p, b).unwrap();
        let dd = f.dir.join(format!("dd-{name}"));
        let (code, v, err) = run(cmd().args(restore_args(&dd)).arg(s(&p)));
        assert_eq!(code, 3, "{name}: {v}\n{err}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(s(&p)) && m.contains("offset"), "{m}");
        assert!(!dd.exists());
        let dots: Vec<_> = std::fs::read_dir(&f.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(dots.is_empty(), "{dots:?}");
    }
}

#[test]
fn restore_after_a_crash_cleans_up_or_finishes() {
    let f = files();
    let dd = f.dir.join("data");
    // a crash while building: our leftover dir is removed and the restore done
    let tmp = f.dir.join(".data.etcd-snap-restore");
    std::fs::create_dir_all(tmp.join("member/snap")).unwrap();
    std::fs::write(tmp.join("member/snap/db"), b"half").unwrap();
    let (code, v, _) = run(cmd().args(restore_args(&dd)).arg(s(&f.good)));
    assert_eq!(code, 0, "{v}");
    assert!(v["warnings"][0].as_str().unwrap().contains("leftover"));
    assert!(!tmp.exists());

    // separate WAL dir, crash after the WAL was renamed but before the data dir: finished
    let dd2 = f.dir.join("data2");
    let wal2 = f.dir.join("wal2");
    let mut args = restore_args(&dd2);
    args.extend(["--wal-dir".to_string(), s(&wal2).to_string()]);
    let (code, v, _) = run(cmd().args(&args).arg(s(&f.good)));
    assert_eq!(code, 0, "{v}");
    assert!(wal2.join("0000000000000000-0000000000000000.wal").is_file());
    assert!(!dd2.join("member/wal").exists());
    // simulate the crash: move the data dir back to the build name and recreate the marker
    let tmp2 = f.dir.join(".data2.etcd-snap-restore");
    std::fs::rename(&dd2, &tmp2).unwrap();
    std::fs::write(
        f.dir.join(".data2.etcd-snap-restore.wal-done"),
        "a000429f37de1964 fc866c2f5f0cb75f\n",
    )
    .unwrap();
    let (code, v, err) = run(cmd().args(&args).arg(s(&f.good)));
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["data"]["resumed"], true);
    assert!(dd2.join("member/snap/db").is_file());
    assert!(!tmp2.exists());
    // and now the WAL dir exists and the data dir is full: refused
    let (code, _, _) = run(cmd().args(&args).arg(s(&f.good)));
    assert_eq!(code, 7);
}

#[test]
fn restore_dry_run_changes_nothing() {
    let f = files();
    let dd = f.dir.join("data");
    let (code, v, _) = run(cmd()
        .args(restore_args(&dd))
        .args(["--dry-run", s(&f.good)]));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], false);
    assert_eq!(v["facts"]["member_id"], "a000429f37de1964");
    assert!(!dd.exists());
}

/// Issue 13: the global flags (-q, -v, --pretty, --input) work before the subcommand, right
/// after it and at the end, for every subcommand (offline status, and save against an
/// unreachable endpoint, whose flags come after FILE too).
#[test]
fn global_flags_before_and_after_the_subcommand() {
    use etcd_test_support::{global_positions, run_pretty};
    let f = files();
    // Without -q the summary is printed: the runs below prove -q silenced it.
    let (code, _, err) = run(cmd().args(["status", "--input", "none", s(&f.good)]));
    assert_eq!((code, err.lines().count()), (0, 1), "{err}");
    for argv in global_positions(
        &["-q", "--pretty", "--input", "none"],
        &["status", s(&f.good)],
    ) {
        let (code, v, err) = run_pretty(cmd().args(&argv));
        assert_eq!(code, 0, "{argv:?}: {v}\n{err}");
        assert_eq!(v["data"]["etcdctl"]["revision"], f.rev, "{argv:?}");
        assert_eq!(err, "", "{argv:?}: -q silences the summary");
    }
    let out = f.dir.join("saved.db");
    for argv in global_positions(
        &["-vv", "--pretty", "--input", "none"],
        &[
            "save",
            s(&out),
            "--endpoints",
            "127.0.0.1:1",
            "--dial-timeout",
            "300ms",
        ],
    ) {
        let (code, v, err) = run_pretty(cmd().args(&argv));
        assert_eq!(code, 4, "{argv:?}: {v}\n{err}");
        assert_eq!(v["error"]["kind"], "unreachable", "{argv:?}");
    }
}

/// A filesystem with room for the db but not for the 64,000,000-byte WAL segment etcd
/// allocates: refused (6) before anything is written (it used to exit 0 with a sparse segment,
/// and etcd then failed with ENOSPC). With room, the segment is really allocated.
#[test]
fn restore_checks_space_first_and_allocates_the_wal() {
    let f = files();
    let small = f.dir.join("small");
    std::fs::create_dir(&small).unwrap();
    let mount = |size: &str| {
        std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&small)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !mount("40m") {
        eprintln!("cannot mount a tmpfs here (not root?): skipped");
        return;
    }
    let umount = || {
        let _ = std::process::Command::new("umount").arg(&small).status();
    };
    let dd = small.join("dd");
    let (code, v, err) = run(cmd().args(restore_args(&dd)).arg(s(&f.good)));
    let left: Vec<String> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    umount();
    assert_eq!(code, 6, "{v}\n{err}");
    assert!(err.contains("WAL segment") && err.contains("free"), "{err}");
    assert!(
        left.iter().all(|n| n.ends_with(".lock")),
        "left on the small filesystem: {left:?}"
    );
    assert!(mount("100m"));
    let (code, v, err) = run(cmd().args(restore_args(&dd)).arg(s(&f.good)));
    let wal = dd.join("member/wal");
    let seg = std::fs::read_dir(&wal)
        .ok()
        .and_then(|mut r| r.next())
        .map(|e| e.unwrap().path());
    let blocks = seg.as_ref().map(|p| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().blocks() * 512
    });
    umount();
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(
        blocks.is_some_and(|b| b >= 64_000_000),
        "the WAL segment is allocated, not sparse: {blocks:?} bytes"
    );
}

/// A sound bbolt db that is not etcd's (no "key", no "meta" bucket), with a correct trailer:
/// verify says so (3) instead of "good", and restore refuses it (3) and writes nothing.
#[test]
fn a_bbolt_db_without_etcds_buckets_is_refused() {
    let f = files();
    let mut e = Edits::new();
    e.put(b"foo", b"k", b"v").unwrap();
    e.create_bucket(b"bar").unwrap();
    let img = f.dir.join("notetcd.img");
    bolt::create(4096, &e, &img).unwrap();
    let snap = f.dir.join("notetcd.db");
    std::fs::write(&snap, with_trailer(&std::fs::read(&img).unwrap())).unwrap();
    let (code, v, err) = run(cmd().args(["verify", s(&snap)]));
    assert_eq!(code, 3, "{v}\n{err}");
    assert!(err.contains("\"key\" and \"meta\" buckets"), "{err}");
    assert_eq!(
        v["data"]["bbolt"]["ok"], true,
        "the bbolt file itself is sound"
    );
    let dd = f.dir.join("dd-notetcd");
    for extra in [&[][..], &["--skip-hash-check"][..]] {
        let (code, v, err) = run(cmd().args(restore_args(&dd)).args(extra).arg(s(&snap)));
        assert_eq!(code, 3, "restore {extra:?}: {v}\n{err}");
        assert!(err.contains("not an etcd snapshot"), "{err}");
        assert!(!dd.exists());
    }
}

/// Issue 17: `save --data-dir` on a dir that is not a member's: exit 3, one line, nothing
/// written; flag combinations that cannot work are usage errors (exit 2).
#[test]
fn save_data_dir_usage_and_bad_dirs() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let f = out.join("s.db");
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for dir in [empty.clone(), d.path().join("missing")] {
        let (code, v, err) = run(cmd().args([
            "save",
            "--endpoints",
            "127.0.0.1:1",
            "--data-dir",
            s(&dir),
            s(&f),
        ]));
        assert_eq!(code, 3, "{v}");
        assert_eq!(v["error"]["kind"], "bad_input");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--data-dir"), "{err}");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }
    // a member dir with a db but no WAL is not a member's data dir either
    std::fs::create_dir_all(empty.join("member/snap")).unwrap();
    std::fs::create_dir_all(empty.join("member/wal")).unwrap();
    let (img, _, _) = image(d.path());
    std::fs::write(empty.join("member/snap/db"), &img).unwrap();
    let (code, v, _) = run(cmd().args(["save", "--data-dir", s(&empty), s(&f)]));
    assert_eq!(code, 3, "{v}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);

    let env = d.path().join("etcd.env");
    std::fs::write(&env, "ETCD_NAME=n1\n").unwrap();
    for args in [
        vec!["save", "--compress", "--data-dir", s(&empty), s(&f)],
        vec!["save", "--require-local", s(&f)],
        vec!["save", "--env-file", s(&env), s(&f)],
        vec!["save", "--wal-dir", s(&empty), s(&f)],
    ] {
        let (code, v, err) = run(cmd().args(&args));
        assert_eq!(code, 2, "{args:?}: {v}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }
}
