//! Smoke tests of the end-to-end harness itself, on etcd 3.4.23 and 3.5.1.

use etcd_rescue_tests::{fill_k8s_like, k8s_key, k8s_value, Cluster, ClusterOpts, Version, ALL};
use std::time::{Duration, Instant};

async fn get(c: &mut etcd_client::Client, key: &str) -> Option<Vec<u8>> {
    let r = c.get(key, None).await.expect("get");
    r.kvs().first().map(|kv| kv.value().to_vec())
}

async fn three_members(v: Version) {
    let t = Instant::now();
    let mut c = Cluster::start(v, ClusterOpts::default())
        .await
        .expect("start");
    let started = t.elapsed();
    assert_eq!(c.members.len(), 3);
    assert_eq!(c.endpoints().split(',').count(), 3);
    assert!(c.members[0].ip.starts_with(&format!("127.0.{}.", c.slot)));

    let mut c0 = c.client(0).await.expect("client 0");
    let st = c0.status().await.expect("status");
    assert!(
        st.version().starts_with(v.minor()),
        "{} vs {v}",
        st.version()
    );
    c0.put("/smoke/a", "1", None).await.expect("put");
    let mut c2 = c.client(2).await.expect("client 2");
    assert_eq!(get(&mut c2, "/smoke/a").await.as_deref(), Some(&b"1"[..]));

    // etcdctl side by side sees the same.
    let out = c
        .etcdctl(2)
        .args(["get", "/smoke/a", "--print-value-only"])
        .output()
        .expect("etcdctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");

    // Stop a member: the rest still serve; restart it: it catches up.
    let t_stop = Instant::now();
    c.stop_member(1).await.expect("stop 1");
    let stop_ms = t_stop.elapsed().as_millis();
    assert!(!c.members[1].is_running());
    let mut all = c.client_all().await.expect("client all");
    all.put("/smoke/b", "2", None)
        .await
        .expect("put with a member down");
    let t_restart = Instant::now();
    c.start_member(1).await.expect("restart 1");
    let restart_ms = t_restart.elapsed().as_millis();
    let mut c1 = c.client(1).await.expect("client 1");
    // A restarted member serves linearizable reads once it caught up.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = c1.get("/smoke/b", None).await {
            if r.kvs().first().map(|kv| kv.value()) == Some(&b"2"[..]) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "member 1 did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Kill one, the cluster is still ready after it comes back.
    c.kill_member(2).await.expect("kill 2");
    c.start_member(2).await.expect("restart 2");
    c.wait_ready().await.expect("ready again");

    // A balanced client that saw a member down hands out one stale connect error for it after
    // it is back (tonic's reconnect): use a fresh client after restarts.
    let mut all = c.client_all().await.expect("client all");
    let bytes = fill_k8s_like(&mut all, 200, 100, 1000, 8)
        .await
        .expect("fill");
    assert!(bytes > 200 * 100);
    assert_eq!(
        get(&mut c2, &k8s_key(17)).await,
        Some(k8s_value(17, 100, 1000))
    );

    let out = c
        .etcdctl(ALL)
        .args(["endpoint", "health"])
        .output()
        .expect("etcdctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let t_stop_all = Instant::now();
    c.stop_all().await.expect("stop all");
    let stop_all_ms = t_stop_all.elapsed().as_millis();

    // Flag overrides: m0 alone with --force-new-cluster, then a fresh member joins it.
    c.start_member_with(0, &["--force-new-cluster"])
        .await
        .expect("force-new-cluster");
    let mut c0 = c.client(0).await.expect("client 0");
    assert_eq!(c0.member_list().await.expect("members").members().len(), 1);
    assert_eq!(
        get(&mut c0, &k8s_key(17)).await,
        Some(k8s_value(17, 100, 1000))
    );
    if !v.is_34() {
        // 3.5.1 stalls about 7 s on a first joiner (a failed linearized read for the downgrade
        // status); the 3.4 run covers add_member_slot + start_member_with for the harness.
        eprintln!(
            "harness smoke {v}: start {} ms, stop member {stop_ms} ms, restart member {restart_ms} ms, stop all {stop_all_ms} ms, total {} ms",
            started.as_millis(),
            t.elapsed().as_millis()
        );
        return;
    }
    let j = c.add_member_slot().expect("new member");
    let (m0, mj) = (&c.members[0], &c.members[j]);
    let initial = format!("{}={},{}={}", m0.name, m0.peer_url, mj.name, mj.peer_url);
    let peer = mj.peer_url.clone();
    let mut tries = 0;
    loop {
        // Refused as "unhealthy cluster" for a few seconds after a (re)start: retry.
        match c0.member_add([peer.as_str()], None).await {
            Ok(_) => break,
            Err(e) if tries < 100 => {
                tries += 1;
                if tries == 1 {
                    eprintln!("member add: {e}; retrying");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("member add: {e}"),
        }
    }
    c.start_member_with(j, &["--initial-cluster", &initial])
        .await
        .expect("start the new member");
    let mut cj = c.client(j).await.expect("client new");
    assert_eq!(cj.member_list().await.expect("members").members().len(), 2);
    c.wait_ready().await.expect("2-member cluster ready");

    eprintln!(
        "harness smoke {v}: start {} ms, stop member {stop_ms} ms, restart member {restart_ms} ms, stop all {stop_all_ms} ms, total {} ms",
        started.as_millis(),
        t.elapsed().as_millis()
    );
}

async fn tls(v: Version) {
    let t = Instant::now();
    let c = Cluster::start(
        v,
        ClusterOpts {
            tls: true,
            ..Default::default()
        },
    )
    .await
    .expect("start tls");
    assert!(c.endpoints().starts_with("https://"));
    let mut ok = c.client(0).await.expect("client");
    ok.put("/tls", "yes", None).await.expect("put over TLS");
    let mut m2 = c.client(2).await.expect("client 2");
    assert_eq!(get(&mut m2, "/tls").await.as_deref(), Some(&b"yes"[..]));

    let tls = c.tls.as_ref().expect("tls files");
    // The wrong CA: the server's certificate is not trusted.
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(3))
        .with_tls(c.tls_options_with(&tls.wrong_ca, true).expect("tls opts"));
    let mut bad = c.connect(0, opts).await.expect("lazy connect");
    let e = bad.status().await.expect_err("wrong CA must fail");
    eprintln!("tls {v}: wrong CA error: {e}");
    // The right CA but no client certificate: refused by --client-cert-auth.
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(3))
        .with_tls(c.tls_options_with(&tls.ca, false).expect("tls opts"));
    let mut anon = c.connect(0, opts).await.expect("lazy connect");
    let e = anon.status().await.expect_err("no client cert must fail");
    eprintln!("tls {v}: no client cert error: {e}");

    // etcdctl with the env the harness sets.
    let out = c
        .etcdctl(0)
        .args(["get", "/tls", "--print-value-only"])
        .output()
        .expect("etcdctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes");
    let out = c
        .etcdctl(0)
        .env("ETCDCTL_CACERT", &tls.wrong_ca)
        .args(["get", "/tls", "--dial-timeout=1s", "--command-timeout=2s"])
        .output()
        .expect("etcdctl");
    assert!(!out.status.success());
    eprintln!("harness tls {v}: {} ms", t.elapsed().as_millis());
}

async fn auth(v: Version) {
    let t = Instant::now();
    let c = Cluster::start(
        v,
        ClusterOpts {
            members: 3,
            auth: true,
            enable_v2: true,
            ..Default::default()
        },
    )
    .await
    .expect("start auth");
    let (user, _) = c.auth.clone().expect("auth");
    assert_eq!(user, "root");
    let mut ok = c.client_all().await.expect("client with password");
    ok.put("/auth", "ok", None).await.expect("put as root");
    let mut m1 = c.client(1).await.expect("client 1");
    assert_eq!(get(&mut m1, "/auth").await.as_deref(), Some(&b"ok"[..]));

    // Without credentials: refused.
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(3));
    let mut anon = c.connect(0, opts.clone()).await.expect("connect");
    anon.get("/auth", None)
        .await
        .expect_err("anonymous get must fail");
    // A wrong password: refused at connect (authenticate).
    assert!(c.connect(0, opts.with_user("root", "wrong")).await.is_err());

    let out = c
        .etcdctl(ALL)
        .args(["get", "/auth", "--print-value-only"])
        .output()
        .expect("etcdctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    eprintln!("harness auth {v}: {} ms", t.elapsed().as_millis());
}

etcd_rescue_tests::each_version!(three_members, tls, auth);
etcd_rescue_tests::smoke_3_5_16!(three_members);

/// Two clusters at once in one process get different slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_clusters_get_distinct_slots() {
    let (a, b) = tokio::join!(
        Cluster::start(Version::V35, ClusterOpts::members(1)),
        Cluster::start(Version::V34, ClusterOpts::members(1)),
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_ne!(a.slot, b.slot);
    assert_ne!(a.dir, b.dir);
}
