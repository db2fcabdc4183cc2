//! CLI contract of etcd-health without a server: help, usage errors, stdin rules, unreachable.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use etcd_test_support::{envelope, tool};

fn cmd() -> Command {
    tool("etcd-health")
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
        "--cert",
        "--key",
        "--user",
        "--password",
        "--dial-timeout",
        "--command-timeout",
        "--cluster",
        "--retries",
        "--wait",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    cmd().arg("--version").assert().success();
}

#[test]
fn bad_flag_is_usage_error_with_envelope() {
    let a = cmd().arg("--no-such-flag").assert().code(2);
    let out = a.get_output();
    let v = envelope(&out.stdout);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "usage");
    assert_eq!(v["error"]["exit_code"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("etcd-health: error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bad_duration_is_usage_error() {
    cmd().args(["--wait", "forever"]).assert().code(2);
    cmd()
        .args(["--endpoints", "127.0.0.1:1"])
        .env("ETCDCTL_DIAL_TIMEOUT", "x")
        .assert()
        .code(2);
}

#[test]
fn bad_stdin_is_bad_input() {
    let a = cmd().write_stdin("this is not json").assert().code(3);
    let v = envelope(&a.get_output().stdout);
    assert_eq!(v["error"]["kind"], "bad_input");
    cmd().write_stdin("{\"v\":7,\"ok\":true}").assert().code(3);
}

#[test]
fn upstream_failure_is_passed_through() {
    let up = r#"{"v":1,"tool":"etcd-snap","tool_version":"0.1.0","ok":false,"changed":false,"facts":{"k":1},"data":{},"warnings":[],"error":{"kind":"refused","message":"target not empty","exit_code":7}}"#;
    let a = cmd().write_stdin(up).assert().code(7);
    let v = envelope(&a.get_output().stdout);
    assert_eq!(v["tool"], "etcd-snap");
    assert_eq!(v["error"]["message"], "target not empty");
}

#[test]
fn unreachable_endpoint_exits_4_with_one_line() {
    let a = cmd()
        .args(["--endpoints", "127.0.0.1:1", "--dial-timeout", "1s"])
        .assert()
        .code(4);
    let out = a.get_output();
    let v = envelope(&out.stdout);
    assert_eq!(v["error"]["kind"], "unreachable");
    assert_eq!(v["facts"]["health"]["status"], "unreachable");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn endpoints_from_upstream_fact_and_env() {
    let up = r#"{"v":1,"tool":"x","tool_version":"0","ok":true,"changed":false,"facts":{"endpoints":["http://127.0.0.1:2"],"custom":{"kept":true}}}"#;
    let a = cmd()
        .env("ETCDCTL_ENDPOINTS", "127.0.0.1:3")
        .write_stdin(up)
        .assert()
        .code(4);
    let v = envelope(&a.get_output().stdout);
    assert_eq!(v["facts"]["endpoints"][0], "http://127.0.0.1:2");
    assert_eq!(v["facts"]["custom"]["kept"], true);
    let a = cmd()
        .env("ETCDCTL_ENDPOINTS", "127.0.0.1:3")
        .assert()
        .code(4);
    let v = envelope(&a.get_output().stdout);
    assert_eq!(v["facts"]["endpoints"][0], "http://127.0.0.1:3");
}

#[test]
fn password_is_never_printed() {
    let a = cmd()
        .args([
            "--endpoints",
            "127.0.0.1:1",
            "--user",
            "root",
            "--password",
            "hunter2-secret",
        ])
        .assert()
        .code(4);
    let out = a.get_output();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2-secret"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2-secret"));
}

#[test]
fn quiet_silences_summary() {
    let a = cmd()
        .args(["-q", "--endpoints", "127.0.0.1:1"])
        .assert()
        .code(4);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("etcd-health: error: unreachable"), "{err}");
}
