//! CLI contract of etcd-detect-version without a server: help, usage errors, stdin rules,
//! unreachable endpoint, offline detection on data dirs crafted with etcd-disk's writers,
//! corrupt inputs.
#![allow(clippy::unwrap_used)]

mod fixture;

use assert_cmd::Command;
use etcd_test_support::{envelope, tool};
use fixture::{build, flip, segments, Spec};
use serde_json::Value;

fn cmd() -> Command {
    tool("etcd-detect-version")
}

fn run(args: &[&str]) -> (i32, Value, String) {
    etcd_test_support::run(cmd().args(args))
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
        "--endpoints",
        "--cacert",
        "--data-dir",
        "--wal-dir",
        "--env-file",
        "--require",
        "--examples",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    cmd().arg("--version").assert().success();
}

#[test]
fn usage_errors() {
    let (code, v, err) = run(&["--require", "v4"]);
    assert_eq!(code, 2);
    assert_eq!(v["error"]["kind"], "usage");
    assert!(err.starts_with("etcd-detect-version: error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, _) = run(&["--no-such-flag"]);
    assert_eq!(code, 2);
}

#[test]
fn bad_stdin_is_bad_input() {
    let a = cmd().write_stdin("not json").assert().code(3);
    assert_eq!(
        envelope(&a.get_output().stdout)["error"]["kind"],
        "bad_input"
    );
}

#[test]
fn upstream_failure_is_passed_through() {
    let up = r#"{"v":1,"tool":"etcd-health","tool_version":"0.1.0","ok":false,"changed":false,"facts":{},"data":{},"warnings":[],"error":{"kind":"check_failed","message":"unhealthy","exit_code":5}}"#;
    let a = cmd().write_stdin(up).assert().code(5);
    assert_eq!(envelope(&a.get_output().stdout)["tool"], "etcd-health");
}

#[test]
fn unreachable_endpoint() {
    let (code, v, err) = run(&[
        "--endpoints",
        "127.0.0.1:1",
        "--dial-timeout",
        "300ms",
        "--command-timeout",
        "500ms",
    ]);
    assert_eq!(code, 4, "{v} {err}");
    assert_eq!(v["error"]["kind"], "unreachable");
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn not_a_data_dir() {
    let t = tempfile::tempdir().unwrap();
    let (code, v, _) = run(&["--data-dir", t.path().to_str().unwrap()]);
    assert_eq!(code, 3, "{v}");
    let (code, _, _) = run(&["--data-dir", "/no/such/dir"]);
    assert_eq!(code, 3);
}

#[test]
fn v3_only_dir() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v3_puts: 7,
            ..Default::default()
        },
    );
    let (code, v, _) = run(&["--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let f = &v["facts"];
    assert_eq!(f["backup_method"], "v3", "{v}");
    assert_eq!(f["v3"]["keys"], 7);
    assert_eq!(f["v3"]["revision"], 8);
    assert_eq!(f["member_id"], "4f6e8cdffebd6727");
    assert_eq!(f["cluster_id"], "ad420312c65d215c");
    assert_eq!(f["etcd_running"], false);
    assert_eq!(f["etcd36"]["would_refuse"], false);
    assert!(f.get("cluster_version").is_none(), "{v}");
    // --require v3 is satisfied; --require v2 is not.
    assert_eq!(
        run(&["--data-dir", d.to_str().unwrap(), "--require", "v3"]).0,
        0
    );
    assert_eq!(
        run(&["--data-dir", d.to_str().unwrap(), "--require", "v2"]).0,
        5
    );
}

#[test]
fn v2_write_only_in_the_wal() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v3_puts: 2,
            v2_in_wal: vec!["/flannel/network/config"],
            ..Default::default()
        },
    );
    let (code, v, err) = run(&["--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, 0);
    let f = &v["facts"];
    assert_eq!(f["backup_method"], "v2", "{v}");
    assert_eq!(f["v2"]["keys"], 0);
    assert_eq!(f["v2"]["wal_writes"], 1);
    assert_eq!(
        f["v2"]["wal_write_examples"][0]["key"],
        "/flannel/network/config"
    );
    assert_eq!(f["v2"]["wal_write_examples"][0]["method"], "PUT");
    assert_eq!(f["etcd36"]["would_refuse"], true);
    assert!(f["etcd36"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("disallowed v2 WAL"));
    assert!(err.contains("backup method v2"), "{err}");
    let (code, v, _) = run(&["--data-dir", d.to_str().unwrap(), "--require", "v3"]);
    assert_eq!(code, 5);
    assert_eq!(v["ok"], false);
    assert_eq!(v["facts"]["backup_method"], "v2");
}

#[test]
fn db_membership_that_differs_from_the_v2_membership() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v3_puts: 2,
            ..Default::default()
        },
    );
    let (_, v, _) = run(&["--data-dir", d.to_str().unwrap()]);
    assert_eq!(v["facts"]["etcd36"]["would_refuse"], false, "{v}");
    assert_eq!(v["data"]["offline"]["db_members"][0], "4f6e8cdffebd6727");
    // A zombie: a member in the db that the v2 store/WAL never had (a v2 restore from a
    // backup without a .snap leaves the old cluster's members so).
    let db = d.join("member/snap/db");
    let src = etcd_disk::bolt::BoltDb::open(&db).unwrap();
    let mut e = etcd_disk::bolt::Edits::new();
    e.put(
        b"members",
        b"a000429f37de1964",
        br#"{"id":11529288297673005412,"peerURLs":["http://10.0.0.2:2380"]}"#,
    )
    .unwrap();
    let out = t.path().join("db2");
    etcd_disk::bolt::patch(&src, &e, &out).unwrap();
    drop(src);
    std::fs::rename(&out, &db).unwrap();
    let (code, v, _) = run(&["--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["facts"]["etcd36"]["would_refuse"], true, "{v}");
    let reasons = v["facts"]["etcd36"]["reasons"].to_string();
    assert!(
        reasons.contains("members bucket")
            && reasons.contains("1 member(s) only in the db (a000429f37de1964)"),
        "{reasons}"
    );
}

#[test]
fn sync_entries_are_not_user_writes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v2_in_wal: vec!["/ttl"],
            v2_syncs: 5,
            ..Default::default()
        },
    );
    let (code, v, _) = run(&["--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let f = &v["facts"];
    assert_eq!(f["backup_method"], "v2", "{v}");
    assert_eq!(f["v2"]["wal_writes"], 1, "{v}");
    // etcd 3.6 panics on SYNC too: still a reason, counted apart from the user writes.
    let reason = f["etcd36"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("6 v2 request(s)") && reason.contains("1 user write(s), 5 SYNC"),
        "{reason}"
    );
    // Only SYNC entries (the TTL key's write is in no WAL entry after the snapshot): no
    // user v2 write, so v3; etcd 3.6 would still refuse the WAL.
    let d2 = t.path().join("d2");
    build(
        &d2,
        &Spec {
            v2_syncs: 3,
            ..Default::default()
        },
    );
    let (code, v, _) = run(&["--data-dir", d2.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let f = &v["facts"];
    assert_eq!(f["v2"]["wal_writes"], 0, "{v}");
    assert_eq!(f["backup_method"], "v3", "{v}");
    assert_eq!(f["etcd36"]["would_refuse"], true, "{v}");
}

#[test]
fn v2_keys_in_the_snap_and_env_file() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v3_puts: 1,
            snap_user_keys: Some(vec!["a", "b"]),
            ..Default::default()
        },
    );
    let env = t.path().join("etcd.env");
    std::fs::write(
        &env,
        format!("ETCD_NAME=n1\nETCD_DATA_DIR={}\n", d.display()),
    )
    .unwrap();
    let (code, v, _) = run(&["--env-file", env.to_str().unwrap(), "--examples", "1"]);
    assert_eq!(code, 0, "{v}");
    let f = &v["facts"];
    assert_eq!(f["backup_method"], "v2", "{v}");
    assert_eq!(f["v2"]["keys"], 2);
    assert_eq!(f["v2"]["examples"], serde_json::json!(["/a"]));
    assert_eq!(f["cluster_version"], "3.4.0");
    assert!(f["etcd36"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("custom content in v2store"));
    assert!(v["data"]["offline"]["snapshot"]["file"]
        .as_str()
        .unwrap()
        .ends_with(".snap"));
    // An empty /1 in the snap does not count.
    let d2 = t.path().join("d2");
    build(
        &d2,
        &Spec {
            snap_user_keys: Some(vec![]),
            ..Default::default()
        },
    );
    let (_, v, _) = run(&["--data-dir", d2.to_str().unwrap()]);
    assert_eq!(v["facts"]["backup_method"], "v3", "{v}");
}

#[test]
fn truncated_snap_is_skipped_like_etcd() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            snap_user_keys: Some(vec!["a"]),
            ..Default::default()
        },
    );
    let snap = std::fs::read_dir(d.join("member/snap"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "snap"))
        .unwrap();
    let len = std::fs::metadata(&snap).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&snap)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (code, v, _) = run(&["--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let w = v["warnings"].to_string();
    assert!(
        w.contains(snap.to_str().unwrap()) && w.contains("offset"),
        "{w}"
    );
}

#[test]
fn corrupt_wal_names_file_and_offset() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    let wal = build(
        &d,
        &Spec {
            v3_puts: 200,
            value_len: 100,
            segment_size: Some(8192),
            ..Default::default()
        },
    );
    let segs = segments(&wal);
    assert!(segs.len() >= 3, "{segs:?}");
    // A flipped bit in a record of a middle segment.
    flip(&segs[1], 300);
    let (code, v, _) = run(&["--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, 3, "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains(segs[1].to_str().unwrap()) && m.contains("offset"),
        "{m}"
    );
    flip(&segs[1], 300);
    assert_eq!(run(&["--data-dir", d.to_str().unwrap()]).0, 0);
    // A missing segment.
    std::fs::remove_file(&segs[1]).unwrap();
    let (code, v, _) = run(&["--data-dir", d.to_str().unwrap()]);
    assert_eq!(code, 3, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not contiguous"),
        "{v}"
    );
}
