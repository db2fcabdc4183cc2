//! etcd-health against real 3-member clusters of etcd 3.4.23 and 3.5.1.
#![allow(clippy::unwrap_used)]

use etcd_rescue_tests::{Cluster, ClusterOpts, Version};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn run(cmd: &mut Command) -> (i32, Value, String) {
    let out: Output = cmd.output().expect("run etcd-health");
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

fn health(c: &Cluster, args: &[&str]) -> (i32, Value, String) {
    run(c.tool("etcd-health").args(args))
}

/// Healthy, then one member down (degraded, quorum held), `--wait` until it is back, then two
/// members down (quorum lost).
async fn members_up_and_down(v: Version) {
    let mut c = Cluster::start(v, ClusterOpts::default()).await.unwrap();

    let (code, out, stderr) = health(&c, &["--cluster"]);
    assert_eq!(code, 0, "{out}\n{stderr}");
    let h = &out["facts"]["health"];
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["quorum"], true);
    assert_eq!(h["members_total"], 3);
    assert_eq!(h["members_healthy"], 3);
    assert_eq!(out["facts"]["etcd_version"], v.as_str());
    let eps = out["data"]["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 3);
    assert!(eps
        .iter()
        .all(|e| e["healthy"] == true && e["reachable"] == true));
    assert_eq!(eps.iter().filter(|e| e["is_leader"] == true).count(), 1);
    // IDs are 16-digit hex strings, and the cluster ID is the one etcdctl reports.
    let cid = out["facts"]["cluster_id"].as_str().unwrap();
    assert_eq!(cid.len(), 16);
    let ctl = c
        .etcdctl(0)
        .args(["endpoint", "status", "-w", "json"])
        .output()
        .unwrap();
    let ctl: Value = serde_json::from_slice(&ctl.stdout).unwrap();
    let ctl_cid = ctl[0]["Status"]["header"]["cluster_id"].as_u64().unwrap();
    assert_eq!(cid, format!("{ctl_cid:016x}"));
    assert!(
        stderr.starts_with("etcd-health: healthy: 3/3 members healthy"),
        "{stderr}"
    );

    // One member stopped: degraded, quorum held, exit 5, the stopped member named.
    c.stop_member(2).await.unwrap();
    let (code, out, stderr) = health(&c, &["--cluster", "--dial-timeout", "1s"]);
    assert_eq!(code, 5, "{out}");
    let h = &out["facts"]["health"];
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["degraded"], true);
    assert_eq!(h["quorum"], true);
    assert_eq!(h["members_healthy"], 2);
    assert_eq!(out["error"]["exit_code"], 5);
    assert!(stderr.contains(&c.members[2].name), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let down_id = out["facts"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == c.members[2].name.as_str())
        .map(|m| m["id"].as_str().unwrap().to_string())
        .unwrap();

    // Issue 13: with --endpoints listing all three (with or without the scheme) the stopped
    // member is named by name too (it was named by its ID), in the summary, the problems and
    // its endpoint's report.
    for eps in [c.endpoints(), c.endpoints_no_scheme()] {
        let (code, out, stderr) = health(&c, &["--endpoints", &eps, "--dial-timeout", "1s"]);
        assert_eq!(code, 5, "{out}");
        let h = &out["facts"]["health"];
        assert_eq!(h["status"], "degraded", "{out}");
        assert_eq!(h["members_healthy"], 2);
        let name = c.members[2].name.as_str();
        assert!(stderr.contains(&format!("; {name} (")), "{eps}: {stderr}");
        assert!(!stderr.contains(&down_id), "{eps}: named by ID: {stderr}");
        let problems = out["data"]["problems"].as_array().unwrap();
        assert!(
            problems[0]
                .as_str()
                .unwrap()
                .starts_with(&format!("{name} (")),
            "{eps}: {problems:?}"
        );
        assert_eq!(out["data"]["endpoints"][2]["name"], name, "{out}");
        assert_eq!(out["data"]["endpoints"][2]["member_id"], down_id.as_str());
    }

    // --wait polls until the member is back.
    let t = Instant::now();
    let waiter = c
        .tool("etcd-health")
        .args([
            "--cluster",
            "--wait",
            "60s",
            "--retry-interval",
            "300ms",
            "--dial-timeout",
            "1s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.start_member(2).await.unwrap();
    let out = tokio::task::spawn_blocking(move || waiter.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let v2: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v2}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v2["facts"]["health"]["status"], "healthy");
    assert!(v2["data"]["attempts"].as_u64().unwrap() > 1, "{v2}");
    assert!(t.elapsed() < Duration::from_secs(60));

    // --retries with a cluster that stays degraded: exactly 1 + N attempts.
    c.stop_member(1).await.unwrap();
    c.stop_member(2).await.unwrap();
    let (code, out, _) = health(
        &c,
        &[
            "--cluster",
            "--retries",
            "1",
            "--retry-interval",
            "100ms",
            "--dial-timeout",
            "1s",
            "--command-timeout",
            "2s",
        ],
    );
    assert_eq!(code, 5, "{out}");
    assert_eq!(out["data"]["attempts"], 2);
    let h = &out["facts"]["health"];
    assert_eq!(h["quorum"], false, "{out}");
    assert_eq!(h["status"], "unhealthy");
    assert_eq!(h["members_healthy"], 0);

    // Every member down: unreachable, exit 4.
    c.stop_member(0).await.unwrap();
    let (code, out, stderr) = health(&c, &["--dial-timeout", "1s"]);
    assert_eq!(code, 4, "{out}");
    assert_eq!(out["error"]["kind"], "unreachable");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A NOSPACE alarm (small quota, filled) makes the verdict unhealthy and names the alarm.
async fn nospace_alarm(v: Version) {
    let c = Cluster::start(
        v,
        ClusterOpts {
            members: 1,
            quota_backend_bytes: Some(2 * 1024 * 1024),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut client = c.client(0).await.unwrap();
    let big = vec![b'x'; 512 * 1024];
    let mut hit = false;
    for i in 0..64 {
        if let Err(e) = client.put(format!("/fill/{i}"), big.clone(), None).await {
            assert!(e.to_string().contains("database space exceeded"), "{e}");
            hit = true;
            break;
        }
    }
    assert!(hit, "quota never exceeded");
    let (code, out, stderr) = health(&c, &["--cluster"]);
    assert_eq!(code, 5, "{out}");
    assert_eq!(out["facts"]["health"]["status"], "unhealthy");
    assert_eq!(out["facts"]["health"]["alarms"][0]["alarm"], "NOSPACE");
    assert_eq!(out["data"]["endpoints"][0]["alarms"][0], "NOSPACE", "{out}");
    assert!(stderr.contains("NOSPACE"), "{stderr}");
}

/// TLS with client certificates: the right CA works; a wrong CA is a clear exit 4.
/// With auth on top: the password works, a wrong one is exit 4, and it is never printed.
async fn tls_and_auth(v: Version) {
    let c = Cluster::start(
        v,
        ClusterOpts {
            tls: true,
            auth: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let tls = c.tls.as_ref().unwrap();

    let (code, out, stderr) = health(&c, &["--cluster"]);
    assert_eq!(code, 0, "{out}\n{stderr}");
    assert!(out["facts"]["endpoints"][0]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    assert!(out["data"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["endpoint"].as_str().unwrap().starts_with("https://")));

    let (code, out, stderr) = run(c
        .tool("etcd-health")
        .env("ETCDCTL_CACERT", &tls.wrong_ca)
        .args(["--dial-timeout", "1s"]));
    assert_eq!(code, 4, "{out}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let msg = out["error"]["message"].as_str().unwrap().to_lowercase();
    assert!(
        msg.contains("certificate") || msg.contains("tls") || msg.contains("issuer"),
        "unclear TLS error: {msg}"
    );

    let (code, out, stderr) = run(c
        .tool("etcd-health")
        .env("ETCDCTL_PASSWORD", "not-the-password"));
    assert_eq!(code, 4, "{out}");
    let all = format!("{out}{stderr}");
    assert!(all.contains("auth"), "{all}");
    assert!(!all.contains("not-the-password"));
    assert!(!all.contains(&c.auth.as_ref().unwrap().1));
}

macro_rules! both_versions {
    ($($name:ident),* $(,)?) => {
        etcd_rescue_tests::each_version!($($name),*);
    };
}

both_versions!(members_up_and_down, nospace_alarm, tls_and_auth);
