//! CLI contract of etcd-member-fix without a server: help, usage errors, stdin, unreachable.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use etcd_test_support::{run, tool};

fn cmd() -> Command {
    tool("etcd-member-fix")
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
        "--name",
        "--id",
        "--peer-urls",
        "--env-file",
        "--wait",
        "--endpoints",
        "--cacert",
        "--user",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    cmd().arg("--version").assert().success();
}

#[test]
fn usage_errors() {
    let (code, v, err) = run(cmd().args(["--endpoints", "127.0.0.1:1"]));
    assert_eq!(code, 2, "{v}");
    assert!(err.contains("no peer URL"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, _) = run(cmd().args(["--id", "not-hex", "--peer-urls", "http://a:1"]));
    assert_eq!(code, 2);
    let (code, _, err) = run(cmd().args(["--peer-urls", "10.0.0.1:2380"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(cmd().args(["--id", "1", "--name", "x", "--peer-urls", "http://a:1"]));
    assert_eq!(code, 2);
}

#[test]
fn bad_stdin_and_env_file() {
    cmd()
        .args(["--peer-urls", "http://a:1"])
        .write_stdin("nope")
        .assert()
        .code(3);
    cmd()
        .args(["--env-file", "/nonexistent/etcd.env"])
        .assert()
        .code(3);
}

#[test]
fn unreachable_endpoint() {
    let t = tempfile::tempdir().unwrap();
    let env = t.path().join("etcd.env");
    std::fs::write(
        &env,
        "ETCD_NAME=etcd1\nETCD_INITIAL_ADVERTISE_PEER_URLS=http://10.0.0.1:2380\nETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:1\n",
    )
    .unwrap();
    let (code, v, err) =
        run(cmd().args(["--env-file", env.to_str().unwrap(), "--dial-timeout", "1s"]));
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["error"]["kind"], "unreachable");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
}
