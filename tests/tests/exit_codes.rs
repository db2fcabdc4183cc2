//! One exit-code table, kept by every tool (issue 11, class 10): authentication failures are 4
//! (unreachable: dial, TLS, auth) in every tool that connects, and say "authentication failed";
//! a bad port is a usage error (2) naming it, never a dial of another port; wrong-typed facts
//! are bad input (3) naming the key; an upstream `ok:false` with an exit code outside 1..=255
//! is bad input (3), never success. On real etcd with auth enabled (3.4.23, 3.5.1, 3.5.30).

#![allow(clippy::unwrap_used)]

use etcd_rescue_tests::{Cluster, ClusterOpts, Version};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn parse(out: &Output) -> (i32, Value, String) {
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("stdout is not one JSON envelope ({e}): {stdout:?}"));
    (code, v, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every tool that connects, with arguments that make it connect first (nothing is changed:
/// the connection fails before any change).
fn connecting(c: &Cluster, scratch: &std::path::Path) -> Vec<(&'static str, Command)> {
    let mk = |tool: &str, args: &[&str]| {
        let mut cmd = c.tool(tool);
        cmd.args(args);
        cmd
    };
    let snap = scratch.join("s.db");
    let bdir = scratch.join("b");
    let dd = c.members[0].data_dir.display().to_string();
    vec![
        (
            "etcd-snap save",
            mk("etcd-snap", &["save", snap.to_str().unwrap()]),
        ),
        ("etcd-health", mk("etcd-health", &[])),
        ("etcd-detect-version", mk("etcd-detect-version", &[])),
        (
            "etcd-member-fix",
            mk(
                "etcd-member-fix",
                &[
                    "--name",
                    "m0",
                    "--peer-urls",
                    &c.members[0].peer_url,
                    "--wait",
                    "1s",
                ],
            ),
        ),
        (
            "etcd-rejoin add",
            mk(
                "etcd-rejoin",
                &[
                    "add",
                    "--name",
                    "mx",
                    "--peer-urls",
                    "http://127.0.0.99:2380",
                ],
            ),
        ),
        (
            "etcd-wal-backup backup",
            mk(
                "etcd-wal-backup",
                &[
                    "backup",
                    "--data-dir",
                    &dd,
                    "--backup-dir",
                    bdir.to_str().unwrap(),
                ],
            ),
        ),
    ]
}

async fn auth_failures_exit_4(v: Version) {
    let c = Cluster::start(
        v,
        ClusterOpts {
            members: 1,
            auth: true,
            enable_v2: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let scratch = c.dir.join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let wrong = "Wr0ng-pa55word-x";
    for (what, mut cmd) in connecting(&c, &scratch) {
        cmd.env("ETCDCTL_PASSWORD", wrong);
        let (code, env, err) = parse(&cmd.output().unwrap());
        assert_eq!(code, 4, "{what} with a wrong password: {env}\n{err}");
        assert_eq!(env["error"]["exit_code"], 4, "{what}: {env}");
        assert!(
            err.contains("authentication failed"),
            "{what}: the error says what failed: {err}"
        );
        let all = format!("{env}{err}");
        assert!(
            !all.contains(wrong),
            "{what}: the password was printed: {all}"
        );
        assert_eq!(
            std::fs::read_dir(&scratch).unwrap().count(),
            0,
            "{what}: wrote something"
        );
    }
    // The cluster is untouched: one member, named m0, still serving.
    let (code, env, err) = parse(&c.tool("etcd-health").output().unwrap());
    assert_eq!(code, 0, "{env}\n{err}");
}

etcd_rescue_tests::each_version!(auth_failures_exit_4);

fn tool_with_stdin(c: &Cluster, tool: &str, args: &[&str], stdin: &str) -> Output {
    let mut cmd = c.tool(tool);
    cmd.args(args)
        .args(["--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut ch = cmd.spawn().unwrap();
    ch.stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    ch.wait_with_output().unwrap()
}

/// Bad ports and wrong-typed facts (no server needed for these, but the cluster gives a real
/// endpoint that would answer if the tool dialled a port other than the one given).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ports_and_wrong_typed_facts() {
    let c = Cluster::start(Version::V35, ClusterOpts::members(1))
        .await
        .unwrap();
    let ip = c.members[0].ip.clone();
    for bad in ["99999", "0", "x1", "65536"] {
        let url = format!("http://{ip}:{bad}");
        for tool in ["etcd-health", "etcd-detect-version"] {
            let (code, env, err) =
                parse(&c.tool(tool).args(["--endpoints", &url]).output().unwrap());
            assert_eq!(code, 2, "{tool} --endpoints {url}: {env}\n{err}");
            assert!(err.contains("port"), "{tool}: names the port: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{tool}: one line: {err}");
        }
    }
    // Well-known facts of the wrong type: 3, naming the key.
    for (key, val) in [
        ("endpoints", "\"http://127.0.0.1:2379\""),
        ("endpoints", "[1,2]"),
        ("cluster_id", "12"),
        ("data_dir", "[\"/var/lib/etcd\"]"),
        ("snapshot", "\"/tmp/x.db\""),
        ("members", "{}"),
    ] {
        let up = format!(
            "{{\"v\":1,\"tool\":\"x\",\"tool_version\":\"0\",\"ok\":true,\"changed\":false,\"facts\":{{\"{key}\":{val}}}}}\n"
        );
        let out = tool_with_stdin(&c, "etcd-health", &[], &up);
        let (code, env, err) = parse(&out);
        assert_eq!(code, 3, "fact {key}={val}: {env}\n{err}");
        assert!(err.contains(key), "names the key {key}: {err}");
    }
    // An upstream failure is passed on with its code; a code outside 1..=255 is bad input.
    for (code_in, want) in [(5, 5), (0, 3), (-1, 3), (256, 3), (7, 7)] {
        let up = format!(
            "{{\"v\":1,\"tool\":\"x\",\"tool_version\":\"0\",\"ok\":false,\"changed\":false,\"facts\":{{}},\"error\":{{\"kind\":\"k\",\"message\":\"m\",\"exit_code\":{code_in}}}}}\n"
        );
        let out = tool_with_stdin(&c, "etcd-health", &[], &up);
        let (code, env, err) = parse(&out);
        assert_eq!(code, want, "upstream exit_code {code_in}: {env}\n{err}");
        assert_eq!(env["ok"], false, "{env}");
    }
    // ok:false without an error object: not success either.
    let up = "{\"v\":1,\"tool\":\"x\",\"tool_version\":\"0\",\"ok\":false,\"changed\":false}\n";
    let (code, env, err) = parse(&tool_with_stdin(&c, "etcd-health", &[], up));
    assert_eq!(code, 3, "{env}\n{err}");
}

/// A missing required argument is named (clap puts it on the line after its message).
#[test]
fn missing_required_arguments_are_named() {
    for (tool, args, want) in [
        ("etcd-snap", vec!["save"], "<FILE>"),
        ("etcd-rejoin", vec!["remove"], "--name"),
    ] {
        let out = Command::new(etcd_rescue_tests::tool_bin(tool))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let (code, env, err) = parse(&out);
        assert_eq!(code, 2, "{tool} {args:?}: {env}\n{err}");
        assert!(err.contains(want), "{tool} {args:?} names {want}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
