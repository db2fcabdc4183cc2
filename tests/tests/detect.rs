//! etcd-detect-version end to end on 3-member etcd 3.4.23 and 3.5.1 clusters with --enable-v2:
//! v3 only → v3 (online and offline); one v2 key, still only in the WAL → v2 offline (found
//! in the WAL tail) and online; after a `.snap` holds it → v2 with the key in the snapshot and
//! the etcd 3.6 refusal; --require v3 exits 5; offline reading while etcd runs does not block.
#![allow(clippy::unwrap_used)]

use etcd_rescue_tests::{Cluster, ClusterOpts, Version};
use serde_json::Value;
use std::process::Output;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `PUT /v2/keys<key>` with `value=...` over plain HTTP; returns the status line.
pub async fn v2_put(client_url: &str, key: &str, value: &str) -> String {
    let hostport = client_url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(hostport).await.unwrap();
    let body = format!("value={value}");
    let req = format!(
        "PUT /v2/keys{key} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    text.lines().next().unwrap_or("").to_string()
}

fn envelope(o: &Output) -> Value {
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(s.lines().count(), 1, "one line on stdout: {s}");
    serde_json::from_str(s.trim()).unwrap()
}

fn detect(c: &Cluster, args: &[&str]) -> (i32, Value, String) {
    let o = c.tool("etcd-detect-version").args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        envelope(&o),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn snaps(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("member/snap"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
                .count()
        })
        .unwrap_or(0)
}

async fn v3_then_v2(v: Version) {
    let mut c = Cluster::start(
        v,
        ClusterOpts {
            enable_v2: true,
            snapshot_count: Some(60),
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let d0 = c.members[0].data_dir.display().to_string();
    let ep0 = c.members[0].client_url.clone();
    let mut k = c.client_all().await.unwrap();
    for i in 0..5 {
        k.put(format!("/v3/k{i}"), "x", None).await.unwrap();
    }

    // v3 only: v3, online and offline.
    let (code, on, _) = detect(&c, &["--endpoints", &ep0]);
    assert_eq!(code, 0, "{on}");
    assert_eq!(on["facts"]["backup_method"], "v3", "{on}");
    assert_eq!(on["facts"]["v2"]["api_served"], true, "{on}");
    assert!(on["facts"]["etcd_version"]
        .as_str()
        .unwrap()
        .starts_with(v.minor()));
    assert!(on["facts"]["cluster_version"].as_str().is_some(), "{on}");
    assert_eq!(on["facts"]["v3"]["keys"], 5, "{on}");
    // etcd commits its backend every 100 ms: give the db on disk time to catch up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let (code, off, _) = detect(&c, &["--data-dir", &d0]);
    let took = t.elapsed();
    assert_eq!(code, 0, "{off}");
    assert_eq!(off["facts"]["backup_method"], "v3", "{off}");
    assert_eq!(off["facts"]["etcd_running"], true, "{off}");
    assert_eq!(off["facts"]["etcd36"]["would_refuse"], false, "{off}");
    assert_eq!(off["facts"]["v3"]["keys"], 5, "{off}");
    assert_eq!(
        off["facts"]["member_id"], on["facts"]["member_id"],
        "offline and online agree on the member"
    );
    assert!(
        took < Duration::from_secs(5),
        "offline detect took {took:?}"
    );
    assert_eq!(snaps(&c.members[0].data_dir), 0, "no .snap expected yet");

    // One v2 key, still only in the WAL (no .snap yet): v2 offline and online.
    let st = v2_put(&c.members[1].client_url, "/v2dir/only-in-wal", "w").await;
    assert!(st.contains("201"), "{st}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, off, _) = detect(&c, &["--data-dir", &d0]);
    assert_eq!(code, 0);
    assert_eq!(off["facts"]["backup_method"], "v2", "{off}");
    assert_eq!(off["facts"]["v2"]["keys"], 0, "not in a .snap: {off}");
    assert_eq!(off["facts"]["v2"]["wal_writes"], 1, "{off}");
    assert_eq!(
        off["facts"]["v2"]["wal_write_examples"][0]["key"], "/v2dir/only-in-wal",
        "{off}"
    );
    assert_eq!(off["facts"]["etcd36"]["would_refuse"], true, "{off}");
    assert!(off["data"]["offline"]["snapshot"].is_null());
    let (code, on, _) = detect(&c, &[]); // endpoints from ETCDCTL_ENDPOINTS
    assert_eq!(code, 0);
    assert_eq!(on["facts"]["backup_method"], "v2", "{on}");
    assert_eq!(on["facts"]["v2"]["keys"], 1, "{on}");
    assert_eq!(on["facts"]["v2"]["dirs"], 1, "{on}");
    let (code, req, stderr) = detect(&c, &["--data-dir", &d0, "--require", "v3"]);
    assert_eq!(code, 5, "{req}");
    assert_eq!(req["facts"]["backup_method"], "v2");
    assert_eq!(req["error"]["kind"], "check_failed");
    assert!(req["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--require v3"));
    assert!(stderr.contains("backup method v2"), "{stderr}");

    // Enough v3 writes for a .snap: the v2 key is now in the snapshot's v2 store.
    for i in 0..80 {
        k.put(format!("/v3/fill{i}"), "y", None).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while snaps(&c.members[0].data_dir) == 0 {
        assert!(Instant::now() < deadline, "no .snap after 80 writes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, off, _) = detect(&c, &["--data-dir", &d0, "-q"]);
    assert_eq!(code, 0);
    assert_eq!(off["facts"]["backup_method"], "v2", "{off}");
    assert_eq!(off["facts"]["v2"]["keys"], 1, "{off}");
    assert_eq!(off["facts"]["v2"]["dirs"], 1, "{off}");
    let ex: Vec<String> = off["facts"]["v2"]["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert!(ex.contains(&"/v2dir/only-in-wal".to_string()), "{ex:?}");
    let reasons = off["facts"]["etcd36"]["reasons"].to_string();
    assert!(reasons.contains("custom content in v2store"), "{reasons}");
    assert!(off["data"]["offline"]["snapshot"]["file"]
        .as_str()
        .unwrap()
        .ends_with(".snap"));
    assert_eq!(off["facts"]["v3"]["keys"], 85, "{off}");
    c.stop_all().await.unwrap();
    // Stopped: same answer, etcd_running false.
    let (code, off, _) = detect(&c, &["--data-dir", &d0]);
    assert_eq!(code, 0);
    assert_eq!(off["facts"]["backup_method"], "v2");
    assert_eq!(off["facts"]["etcd_running"], false);
}

/// Online over TLS (client certificates) with auth: HTTPS `/version` and `/v2/keys` with the
/// etcdctl CA and client key, gRPC with the user.
async fn tls_and_auth(v: Version) {
    let c = Cluster::start(
        v,
        ClusterOpts {
            enable_v2: true,
            tls: true,
            auth: true,
            members: 1,
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let (code, on, err) = detect(&c, &[]);
    assert_eq!(code, 0, "{on} {err}");
    assert_eq!(on["facts"]["backup_method"], "v3", "{on}");
    assert_eq!(on["facts"]["v2"]["api_served"], true, "{on}");
    assert!(on["facts"]["cluster_version"].as_str().is_some(), "{on}");
    assert!(on["facts"]["endpoints"][0]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    assert_eq!(on["warnings"], serde_json::json!([]), "{on}");
    // Without the CA the HTTPS probe cannot verify the server: unreachable (gRPC fails first).
    let (code, on, _) = detect_env(&c, &[], &[("ETCDCTL_CACERT", "")]);
    assert_ne!(code, 0, "{on}");
}

fn detect_env(c: &Cluster, args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut cmd = c.tool("etcd-detect-version");
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let o = cmd.args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        envelope(&o),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

macro_rules! both_versions {
    ($($name:ident),* $(,)?) => {
        etcd_rescue_tests::each_version!($($name),*);
    };
}

both_versions!(v3_then_v2, tls_and_auth);
