//! CLI contract of etcd-wal-backup without a server: help, usage errors, stdin rules,
//! unreachable endpoint (the db flock held, as a running etcd holds it), offline backup and
//! restore of data dirs crafted with etcd-disk's writers, the WAL it writes, corrupt inputs
//! (exit 3 naming file and offset, no partial dir left), refusals (exit 7).
#![allow(clippy::unwrap_used)]

#[path = "../../etcd-detect-version/tests/fixture/mod.rs"]
mod fixture;

use assert_cmd::Command;
use etcd_disk::entry::{classify, EntryKind};
use etcd_test_support::{envelope, tool};
use fixture::{build, flip, segments, Spec, CLUSTER, NODE};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn cmd() -> Command {
    tool("etcd-wal-backup")
}

fn run(args: &[&str]) -> (i32, Value, String) {
    etcd_test_support::run(cmd().args(args))
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

fn mode(x: &Path) -> u32 {
    std::fs::metadata(x).unwrap().permissions().mode() & 0o777
}

#[test]
fn help_and_version() {
    for sub in [
        &["backup", "--help"][..],
        &["restore", "--help"],
        &["--help"],
    ] {
        let out = cmd()
            .args(sub)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let help = String::from_utf8(out).unwrap();
        assert!(help.contains("--") || help.contains("backup"), "{help}");
    }
    let out = cmd()
        .args(["backup", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    for flag in [
        "--data-dir",
        "--backup-dir",
        "--without-v3",
        "--archive",
        "--endpoints",
        "--env-file",
    ] {
        assert!(help.contains(flag), "backup help lacks {flag}");
    }
    cmd().arg("--version").assert().success();
}

#[test]
fn usage_errors() {
    let (code, v, err) = run(&["backup", "--data-dir", "/x"]);
    assert_eq!(code, 2, "{v}");
    assert!(err.starts_with("etcd-wal-backup: error: "), "{err}");
    assert_eq!(run(&["frobnicate"]).0, 2);
    let t = tempfile::tempdir().unwrap();
    let (code, v, _) = run(&["backup", "--backup-dir", p(&t.path().join("b"))]);
    assert_eq!(code, 2, "{v}");
    let (code, _, _) = run(&["restore", "--data-dir", p(t.path())]);
    assert_eq!(code, 2);
}

#[test]
fn bad_stdin_is_bad_input() {
    let a = cmd()
        .args(["restore", "--data-dir", "/tmp/x"])
        .write_stdin("{not json")
        .assert()
        .code(3);
    assert_eq!(
        envelope(&a.get_output().stdout)["error"]["kind"],
        "bad_input"
    );
}

#[test]
fn running_member_unreachable_endpoint() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v3_puts: 3,
            ..Default::default()
        },
    );
    // Hold the db's flock as a running etcd does: the tool must go online.
    let f = std::fs::File::open(d.join("member/snap/db")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an open descriptor.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    let b = t.path().join("b");
    let (code, v, err) = run(&[
        "backup",
        "--data-dir",
        p(&d),
        "--backup-dir",
        p(&b),
        "--endpoints",
        "127.0.0.1:1",
        "--dial-timeout",
        "300ms",
        "--command-timeout",
        "500ms",
    ]);
    assert_eq!(code, 4, "{v} {err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!b.exists() && !t.path().join("b.part").exists());
    drop(f);
}

#[test]
fn not_a_data_dir() {
    let t = tempfile::tempdir().unwrap();
    let (code, _, _) = run(&[
        "backup",
        "--data-dir",
        p(t.path()),
        "--backup-dir",
        p(&t.path().join("b")),
    ]);
    assert_eq!(code, 3);
}

#[test]
fn offline_backup_restore_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v3_puts: 5,
            snap_user_keys: Some(vec!["in-snap"]),
            v2_in_wal: vec!["/in-wal"],
            ..Default::default()
        },
    );
    let b = t.path().join("b");
    let (code, v, err) = run(&["backup", "--data-dir", p(&d), "--backup-dir", p(&b)]);
    assert_eq!(code, 0, "{v} {err}");
    let f = &v["facts"]["backup"];
    assert_eq!(f["online"], false);
    assert_eq!(f["complete_to_index"], 10, "{v}"); // 4 bootstrap + 5 v3 + 1 v2
    assert_eq!(f["snapshot_index"], 4);
    assert_eq!(f["entries"], 6);
    assert_eq!(f["v2_writes"], 1);
    assert_eq!(v["facts"]["member_id"], "4f6e8cdffebd6727");
    assert_ne!(f["member_id"], "4f6e8cdffebd6727");
    assert_ne!(f["cluster_id"], "ad420312c65d215c");
    assert_eq!(mode(&b), 0o700);
    assert_eq!(mode(&b.join("member/wal")), 0o700);
    // The manifest names every file with its sha256.
    let m: Value =
        serde_json::from_slice(&std::fs::read(b.join("manifest.json")).unwrap()).unwrap();
    let files: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.iter().any(|x| x.ends_with(".snap")) && files.contains(&"member/snap/db"));
    // The WAL: new IDs, entries in place, membership blanked, commit = last.
    let snap = etcd_disk::snap::load_newest(&b.join("member/snap"))
        .unwrap()
        .unwrap()
        .1;
    let c = etcd_disk::wal::read_at(
        &b.join("member/wal"),
        snap.metadata.index,
        snap.metadata.term,
    )
    .unwrap();
    c.require_snapshot().unwrap();
    let md = c.metadata.clone().unwrap();
    assert!(md.node_id != NODE && md.cluster_id != CLUSTER);
    assert_eq!(c.hard_state.commit, 10);
    let idx: Vec<u64> = c.entries.iter().map(|e| e.index).collect();
    assert_eq!(idx, (5..=10).collect::<Vec<_>>());
    let mut r = c.entry_reader();
    let last = r.read(c.entries.last().unwrap()).unwrap();
    let EntryKind::V2(req) = classify(last.r#type, last.data.as_deref()) else {
        panic!()
    };
    assert_eq!(req.path, "/1/in-wal");

    // Restore into a new data dir, then refuse a second time. The dir holds what a restore
    // killed with SIGKILL leaves behind: the rerun removes it and finishes.
    let target = t.path().join("new");
    std::fs::create_dir_all(target.join("member.part/snap")).unwrap();
    std::fs::write(target.join("member.part/snap/db"), b"half a db").unwrap();
    std::fs::create_dir_all(target.join(".etcd-wal-backup.restore.part/member")).unwrap();
    let (code, v, err) = run(&[
        "restore",
        "--backup-dir",
        p(&b),
        "--data-dir",
        p(&target),
        "--name",
        "n1",
    ]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["warnings"].as_array().unwrap().len(), 2, "{v}");
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("interrupted restore"),
        "{v}"
    );
    let next = &v["facts"]["next"];
    assert_eq!(next["flags"][0], "--force-new-cluster");
    assert_eq!(next["flags"][1], "--name=n1");
    assert_eq!(next["name"], "n1");
    assert_eq!(mode(&target), 0o700);
    assert_eq!(mode(&target.join("member")), 0o700);
    assert_eq!(mode(&target.join("member/snap")), 0o700);
    assert_eq!(mode(&target.join("member/snap/db")), 0o600);
    for s in segments(&target.join("member/wal")) {
        assert_eq!(mode(&s), 0o600);
    }
    assert!(!target.join("member.part").exists());
    assert!(!target.join(".etcd-wal-backup.restore.part").exists());
    let (code, v, _) = run(&["restore", "--backup-dir", p(&b), "--data-dir", p(&target)]);
    assert_eq!(code, 7, "{v}");
    assert_eq!(v["error"]["kind"], "refused");
    // The restored dir is a valid data dir with the v2 data.
    let o = Command::cargo_bin("etcd-detect-version");
    if let Ok(mut o) = o {
        let out = o
            .env_clear()
            .args(["--data-dir", p(&target)])
            .output()
            .unwrap();
        let e = envelope(&out.stdout);
        assert_eq!(e["facts"]["backup_method"], "v2", "{e}");
    }
    // Refuses to overwrite the backup.
    let (code, _, _) = run(&["backup", "--data-dir", p(&d), "--backup-dir", p(&b)]);
    assert_eq!(code, 7);
}

#[test]
fn archive_and_tampering() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v3_puts: 3,
            ..Default::default()
        },
    );
    let b = t.path().join("b");
    let (code, v, err) = run(&[
        "backup",
        "--data-dir",
        p(&d),
        "--backup-dir",
        p(&b),
        "--archive",
        "--without-v3",
    ]);
    assert_eq!(code, 0, "{v} {err}");
    let tgz = t.path().join("b.tar.gz");
    assert!(tgz.is_file() && !b.exists() && !t.path().join("b.part").exists());
    assert_eq!(mode(&tgz), 0o600);
    assert_eq!(v["facts"]["backup"]["with_v3"], false);
    let target = t.path().join("new");
    let (code, v, err) = run(&["restore", "--backup-dir", p(&tgz), "--data-dir", p(&target)]);
    assert_eq!(code, 0, "{v} {err}");
    assert!(target.join("member/snap/db").is_file());
    // A directory backup with a changed byte is refused before anything is put in place.
    let b2 = t.path().join("b2");
    assert_eq!(
        run(&["backup", "--data-dir", p(&d), "--backup-dir", p(&b2)]).0,
        0
    );
    flip(&b2.join("member/snap/db"), 100);
    let target2 = t.path().join("new2");
    let (code, v, _) = run(&["restore", "--backup-dir", p(&b2), "--data-dir", p(&target2)]);
    assert_eq!(code, 3, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("sha256"));
    assert!(!target2.join("member").exists());
    assert!(!target2.join("member.part").exists());
    // Not a backup.
    let (code, _, _) = run(&["restore", "--backup-dir", p(&d), "--data-dir", p(&target2)]);
    assert_eq!(code, 3);
}

#[test]
fn corrupt_inputs_exit_3_and_leave_no_partial_dir() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    let wal = build(
        &d,
        &Spec {
            v3_puts: 200,
            value_len: 100,
            segment_size: Some(8192),
            snap_user_keys: Some(vec!["a"]),
            ..Default::default()
        },
    );
    let segs = segments(&wal);
    assert!(segs.len() >= 3);
    let b = t.path().join("b");
    let check = |want: &Path, what: &str| {
        let (code, v, err) = run(&["backup", "--data-dir", p(&d), "--backup-dir", p(&b)]);
        assert_eq!(code, 3, "{what}: {v} {err}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(p(want)), "{what}: {m}");
        assert!(
            !b.exists() && !t.path().join("b.part").exists(),
            "{what}: partial dir left"
        );
        m.to_string()
    };
    // A flipped bit in a WAL record.
    flip(&segs[1], 300);
    let m = check(&segs[1], "flipped bit");
    assert!(m.contains("offset"), "{m}");
    flip(&segs[1], 300);
    // A truncated .snap.
    let snap = std::fs::read_dir(d.join("member/snap"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|x| x.extension().is_some_and(|e| e == "snap"))
        .unwrap();
    let bytes = std::fs::read(&snap).unwrap();
    std::fs::write(&snap, &bytes[..bytes.len() / 2]).unwrap();
    let m = check(&snap, "truncated snap");
    assert!(m.contains("offset"), "{m}");
    std::fs::write(&snap, &bytes).unwrap();
    // A missing WAL segment.
    std::fs::remove_file(&segs[1]).unwrap();
    let m = check(&segs[0], "missing segment");
    assert!(m.contains("not contiguous"), "{m}");
}

/// Issue 13: `etcd-wal-backup -q backup ...` was a usage error (exit 2): the global flags
/// (-q, -v, --pretty, --input) work before the subcommand, right after it and at the end, for
/// both subcommands.
#[test]
fn global_flags_before_and_after_the_subcommand() {
    use etcd_test_support::{global_positions, run_pretty};
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v3_puts: 3,
            ..Default::default()
        },
    );
    let globals = ["-q", "--pretty", "--input", "none"];
    for (i, argv) in global_positions(
        &globals,
        &[
            "backup",
            "--data-dir",
            p(&d),
            "--backup-dir",
            p(&t.path().join("b")),
        ],
    )
    .into_iter()
    .enumerate()
    {
        // A new backup dir each time (the argv holds "b"; rename the previous one away).
        if i > 0 {
            std::fs::rename(t.path().join("b"), t.path().join(format!("b{i}"))).unwrap();
        }
        let (code, v, err) = run_pretty(cmd().args(&argv));
        assert_eq!(code, 0, "{argv:?}: {v}\n{err}");
        assert_eq!(v["changed"], true, "{argv:?}");
        assert_eq!(err, "", "{argv:?}: -q silences the summary");
    }
    for argv in global_positions(&globals, &["restore", "--data-dir", p(&t.path().join("r"))]) {
        // No backup given: a usage error from restore itself, not from clap.
        let (code, v, err) = run_pretty(cmd().args(&argv));
        assert_eq!(code, 2, "{argv:?}: {v}\n{err}");
        assert!(!err.contains("unexpected argument"), "{argv:?}: {err}");
    }
}

/// The db's member and removed IDs, and `meta/confState`.
fn db_members(db: &Path) -> (Vec<String>, Vec<String>, Option<String>) {
    let st = etcd_disk::snapshot::status(&etcd_disk::bolt::BoltDb::open(db).unwrap()).unwrap();
    (
        st.members.iter().map(|m| m.id.clone()).collect(),
        st.members_removed.clone(),
        st.conf_state,
    )
}

#[test]
fn membership_trimmed_by_backup_and_by_restore_of_an_older_backup() {
    use sha2::Digest;
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    build(
        &d,
        &Spec {
            v3_puts: 3,
            ..Default::default()
        },
    );
    let node = format!("{NODE:016x}");
    assert_eq!(db_members(&d.join("member/snap/db")).0, vec![node.clone()]);
    let b = t.path().join("b");
    let (code, v, err) = run(&["backup", "--data-dir", p(&d), "--backup-dir", p(&b)]);
    assert_eq!(code, 0, "{v} {err}");
    let new_id = v["facts"]["backup"]["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    let new_num = u64::from_str_radix(&new_id, 16).unwrap();
    let want_cs = format!("{{\"voters\":[{new_num}],\"auto_leave\":false}}");
    let dm = &v["facts"]["backup"]["db_membership"];
    assert_eq!(dm["members"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(dm["removed"][0], node.as_str(), "{v}");
    let db = b.join("member/snap/db");
    let (m, r, cs) = db_members(&db);
    assert!(m.is_empty());
    assert_eq!(r, vec![node.clone()]);
    assert_eq!(cs.as_deref(), Some(want_cs.as_str()));

    // An older backup: the source's member still in the db (manifest updated to match).
    let src = etcd_disk::bolt::BoltDb::open(&db).unwrap();
    let mut e = etcd_disk::bolt::Edits::new();
    e.clear_bucket(b"members_removed").unwrap();
    e.put(
        b"members",
        node.trim_start_matches('0').as_bytes(),
        br#"{"id":5723512312412432167,"peerURLs":["http://127.0.0.1:2380"],"name":"n1"}"#,
    )
    .unwrap();
    e.delete(b"meta", b"confState").unwrap();
    let old_db = t.path().join("old-db");
    etcd_disk::bolt::patch(&src, &e, &old_db).unwrap();
    drop(src);
    std::fs::rename(&old_db, &db).unwrap();
    assert_eq!(db_members(&db).0, vec![node.clone()]);
    let bytes = std::fs::read(&db).unwrap();
    let mpath = b.join("manifest.json");
    let mut man: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    for f in man["files"].as_array_mut().unwrap() {
        if f["path"] == "member/snap/db" {
            f["sha256"] = Value::String(hex(&sha2::Sha256::digest(&bytes)));
            f["size_bytes"] = Value::from(bytes.len());
        }
    }
    std::fs::write(&mpath, serde_json::to_vec(&man).unwrap()).unwrap();

    let r = t.path().join("r");
    let (code, v, err) = run(&["restore", "--backup-dir", p(&b), "--data-dir", p(&r)]);
    assert_eq!(code, 0, "{v} {err}");
    let (m, rem, cs) = db_members(&r.join("member/snap/db"));
    assert!(m.is_empty(), "{m:?}");
    assert_eq!(rem, vec![node]);
    assert_eq!(cs.as_deref(), Some(want_cs.as_str()));
    assert_eq!(mode(&r.join("member/snap/db")), 0o600);
    assert_eq!(
        v["facts"]["restore"]["db_membership"]["conf_state_voters"][0],
        new_id.as_str()
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
