//! CLI contract of etcd-rejoin without a server: help, usage errors, stdin, unreachable.
#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use etcd_test_support::{run, tool};

fn cmd() -> Command {
    tool("etcd-rejoin")
}

#[test]
fn help_and_version() {
    let out = cmd()
        .args(["add", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    for flag in [
        "--name",
        "--peer-urls",
        "--learner",
        "--wait-started",
        "--wait",
        "--env-file",
        "--endpoints",
        "--cacert",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    let out = cmd()
        .args(["remove", "--help"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    assert!(help.contains("--id") && help.contains("--name"));
    cmd().arg("--help").assert().success();
    cmd().arg("--version").assert().success();
}

#[test]
fn usage_errors() {
    let (code, v, err) = run(&mut cmd());
    assert_eq!(code, 2, "{v}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, err) = run(cmd().args([
        "add",
        "--peer-urls",
        "http://a:1",
        "--endpoints",
        "127.0.0.1:1",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no member name"), "{err}");
    let (code, _, err) = run(cmd().args(["add", "--name", "x", "--endpoints", "127.0.0.1:1"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(cmd().args(["add", "--name", "x", "--peer-urls", "a:1"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(cmd().args(["remove"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(cmd().args(["remove", "--id", "nothex"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(cmd().args([
        "add",
        "--name",
        "x",
        "--peer-urls",
        "http://a:1",
        "--wait",
        "soon",
    ]));
    assert_eq!(code, 2);
}

#[test]
fn bad_stdin() {
    cmd()
        .args(["add", "--name", "x", "--peer-urls", "http://a:1"])
        .write_stdin("nope")
        .assert()
        .code(3);
}

#[test]
fn unreachable_endpoint() {
    let t = tempfile::tempdir().unwrap();
    let env = t.path().join("etcd.env");
    // The joiner's env file: its own client URL must not be used as the endpoint.
    std::fs::write(
        &env,
        "ETCD_NAME=n2\nETCD_INITIAL_ADVERTISE_PEER_URLS=http://10.0.0.2:2380\nETCD_ADVERTISE_CLIENT_URLS=http://10.0.0.2:2379\n",
    )
    .unwrap();
    let (code, v, err) = run(cmd().args([
        "add",
        "--env-file",
        env.to_str().unwrap(),
        "--endpoints",
        "127.0.0.1:1",
        "--dial-timeout",
        "1s",
        "--wait",
        "1s",
    ]));
    assert_eq!(code, 4, "{v}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    let (code, _, err) = run(cmd().args(["remove", "--name", "n2", "--endpoints", "127.0.0.1:1"]));
    assert_eq!(code, 4, "{err}");
}

/// Issue 13: the global flags (-q, -v, --pretty, --input) and the connection flags work before
/// the subcommand, right after it and at the end, for both subcommands.
#[test]
fn global_flags_before_and_after_the_subcommand() {
    use etcd_test_support::{global_positions, run_pretty};
    let globals = [
        "-q",
        "--pretty",
        "--input",
        "none",
        "--endpoints",
        "127.0.0.1:1",
        "--dial-timeout",
        "300ms",
    ];
    for args in [
        &[
            "add",
            "--name",
            "n2",
            "--peer-urls",
            "http://10.0.0.2:2380",
            "--wait",
            "1s",
        ][..],
        &["remove", "--name", "n2", "--wait", "1s"],
    ] {
        for argv in global_positions(&globals, args) {
            let (code, v, err) = run_pretty(cmd().args(&argv));
            assert_eq!(code, 4, "{argv:?}: {v}\n{err}");
            assert_eq!(v["error"]["kind"], "unreachable", "{argv:?}");
            // The endpoint given is the one dialled (not the default 127.0.0.1:2379).
            assert!(err.contains("127.0.0.1:1"), "{argv:?}: {err}");
        }
    }
}
