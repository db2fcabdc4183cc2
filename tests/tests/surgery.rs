//! End to end: the v2 restore procedure composed by hand from etcd-purge, etcd-member-fix and
//! etcd-rejoin on real 3-member etcd 3.4.23 and 3.5.1 clusters, with idempotence and refusals.
//!
//! etcd stopped by pid file → purge all three members → a real `etcdctl backup` (3.4) /
//! `etcdutl backup` (3.5) put in place on member 0 → `--force-new-cluster` → rejoin refused
//! (loopback peer URL) → member-fix → peer URL is the real 127.x one → rejoin m1 (refused for
//! m2 while m1 is unstarted), start m1 → rejoin m2 (3.5: as a learner, promoted) and start it →
//! restart all normally → etcd-health exits 0 → all data there.
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use etcd_rescue_tests::{Cluster, ClusterOpts, Version};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn run(c: &mut Command) -> (i32, Value, String) {
    let o = c.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        out.lines().count(),
        1,
        "one line on stdout: {out}\nstderr: {err}"
    );
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_str(out.trim()).unwrap(),
        err,
    )
}

fn sh(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(dir);
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let md = e.metadata().unwrap();
            // Names only: a running etcd keeps writing to its files.
            out.push(p.display().to_string());
            if md.is_dir() {
                out.extend(walk(&p));
            }
        }
    }
    out
}

async fn keys_present(c: &Cluster, i: usize, n: usize) {
    let mut cl = c.client(i).await.unwrap();
    for k in 0..n {
        let r = cl.get(format!("/surgery/k{k:03}"), None).await.unwrap();
        assert_eq!(
            r.kvs().first().map(|kv| kv.value().to_vec()),
            Some(format!("value-{k}").into_bytes()),
            "member {i} lacks /surgery/k{k:03}"
        );
    }
}

async fn member_peer_urls(c: &Cluster, i: usize) -> Vec<(String, Vec<String>, bool)> {
    let mut cl = c.client(i).await.unwrap();
    let l = cl.member_list().await.unwrap();
    l.members()
        .iter()
        .map(|m| (m.name().to_string(), m.peer_urls().to_vec(), m.is_learner()))
        .collect()
}

async fn surgery(v: Version) {
    let t0 = Instant::now();
    let mut c = Cluster::start(v, ClusterOpts::members(3)).await.unwrap();
    const N: usize = 50;
    {
        let mut cl = c.client_all().await.unwrap();
        for k in 0..N {
            cl.put(format!("/surgery/k{k:03}"), format!("value-{k}"), None)
                .await
                .unwrap();
        }
        // The commit index of the last write reaches the WAL only with a later write.
        for k in 0..3 {
            cl.put(format!("/surgery/trailer{k}"), "x", None)
                .await
                .unwrap();
        }
    }
    let m0 = c.members[0].client_url.clone();
    let dd: Vec<String> = c
        .members
        .iter()
        .map(|m| m.data_dir.display().to_string())
        .collect();

    // Refusals: purge while etcd runs → 7, dir untouched; a non-etcd dir → 7.
    let before = listing(&c.members[0].data_dir.join("member"));
    let (code, out, err) = run(c.tool("etcd-purge").args(["--data-dir", &dd[0]]));
    assert_eq!(code, 7, "{out}\n{err}");
    assert!(
        err.contains("flock held") || err.contains("ofd held"),
        "{err}"
    );
    assert!(c.members[0].data_dir.join("member/wal").is_dir());
    assert_eq!(listing(&c.members[0].data_dir.join("member")), before);
    let junk = c.dir.join("not-etcd");
    std::fs::create_dir_all(junk.join("stuff")).unwrap();
    std::fs::write(junk.join("file.txt"), b"keep me").unwrap();
    let (code, _, err) = run(c
        .tool("etcd-purge")
        .args(["--data-dir", junk.to_str().unwrap()]));
    assert_eq!(code, 7, "{err}");
    assert!(junk.join("file.txt").exists());

    // Stop every member through its pid file and purge it; a rerun changes nothing.
    let t_purge = Instant::now();
    let mut purge_facts = Vec::new();
    for i in 0..3 {
        let pidfile = c.dir.join(format!("m{i}.pid"));
        std::fs::write(&pidfile, format!("{}\n", c.members[i].pid().unwrap())).unwrap();
        let stop = format!("pid:{}", pidfile.display());
        let (code, out, err) =
            run(c
                .tool("etcd-purge")
                .args(["--data-dir", &dd[i], "--stop", &stop]));
        assert_eq!(code, 0, "{out}\n{err}");
        assert_eq!(out["changed"], true);
        assert_eq!(out["data"]["stop"]["stopped_now"], true, "{out}");
        assert!(!c.members[i].data_dir.join("member").exists());
        let p = &out["facts"]["purge"];
        assert!(p["files"].as_u64().unwrap() >= 2, "{p}");
        assert_eq!(p["db"]["sha256"].as_str().unwrap().len(), 64, "{p}");
        assert_eq!(p["wal_tail"]["sha256"].as_str().unwrap().len(), 64, "{p}");
        // The harness reaps its (already exited) child.
        c.stop_member(i).await.unwrap();
        let (code, again, _) =
            run(c
                .tool("etcd-purge")
                .args(["--data-dir", &dd[i], "--stop", &stop]));
        assert_eq!(code, 0);
        assert_eq!(again["changed"], false, "{again}");
        assert_eq!(again["facts"], out["facts"]);
        purge_facts.push(out);
    }
    let purge_ms = t_purge.elapsed().as_millis();

    // A real v2 backup of member 0's purged copy (etcd tools need <dir>/member).
    let src = c.dir.join("backup-src");
    let bk = c.dir.join("backup");
    std::fs::create_dir_all(&src).unwrap();
    let copy0 = purge_facts[0]["facts"]["purge"]["purged"][0]["to"]
        .as_str()
        .unwrap()
        .to_string();
    sh(Command::new("cp").args(["-a", &copy0, src.join("member").to_str().unwrap()]));
    match v {
        Version::V34 => sh(c.etcdctl(0).env("ETCDCTL_API", "2").args([
            "backup",
            "--data-dir",
            src.to_str().unwrap(),
            "--backup-dir",
            bk.to_str().unwrap(),
            "--with-v3",
        ])),
        _ => sh(c.etcdutl().unwrap().args([
            "backup",
            "--data-dir",
            src.to_str().unwrap(),
            "--backup-dir",
            bk.to_str().unwrap(),
        ])),
    }
    sh(Command::new("cp").args([
        "-a",
        bk.join("member").to_str().unwrap(),
        c.members[0].data_dir.join("member").to_str().unwrap(),
    ]));
    c.start_member_with(0, &["--force-new-cluster"])
        .await
        .unwrap();
    let urls = member_peer_urls(&c, 0).await;
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert_eq!(
        urls[0].1,
        vec!["http://localhost:2380".to_string()],
        "{urls:?}"
    );

    // Rejoin before the fix: refused, nothing added.
    let peer1 = c.members[1].peer_url.clone();
    let peer2 = c.members[2].peer_url.clone();
    let (code, out, err) = run(c.tool("etcd-rejoin").env("ETCDCTL_ENDPOINTS", &m0).args([
        "add",
        "--name",
        "m1",
        "--peer-urls",
        &peer1,
    ]));
    assert_eq!(code, 7, "{out}\n{err}");
    assert!(err.contains("localhost"), "{err}");
    assert_eq!(member_peer_urls(&c, 0).await.len(), 1);

    // member-fix, verified, restart_required false; a rerun changes nothing.
    let peer0 = c.members[0].peer_url.clone();
    let t_fix = Instant::now();
    let (code, fix, err) = run(c
        .tool("etcd-member-fix")
        .env("ETCDCTL_ENDPOINTS", &m0)
        .args(["--name", "m0", "--peer-urls", &peer0]));
    let fix_ms = t_fix.elapsed().as_millis();
    assert_eq!(code, 0, "{fix}\n{err}");
    assert_eq!(fix["changed"], true);
    assert_eq!(fix["facts"]["member_fix"]["peer_urls"][0], peer0.as_str());
    assert_eq!(fix["facts"]["member_fix"]["restart_required"], false);
    assert_eq!(fix["facts"]["member_id"].as_str().unwrap().len(), 16);
    let urls = member_peer_urls(&c, 0).await;
    assert_eq!(urls[0].1, vec![peer0.clone()], "{urls:?}");
    assert!(peer0.starts_with(&format!("http://127.0.{}.", c.slot)));
    let (code, fix2, _) = run(c
        .tool("etcd-member-fix")
        .env("ETCDCTL_ENDPOINTS", &m0)
        .args(["--name", "m0", "--peer-urls", &peer0]));
    assert_eq!(code, 0);
    assert_eq!(fix2["changed"], false);
    assert_eq!(fix2["facts"], fix["facts"]);

    // Rejoin m1 WITHOUT restarting m0 (this is the restart_required evidence); rerun = same.
    let t_add1 = Instant::now();
    let (code, add1, err) = run(c.tool("etcd-rejoin").env("ETCDCTL_ENDPOINTS", &m0).args([
        "add",
        "--name",
        "m1",
        "--peer-urls",
        &peer1,
    ]));
    let add1_ms = t_add1.elapsed().as_millis();
    assert_eq!(code, 0, "{add1}\n{err}");
    assert_eq!(add1["changed"], true);
    let r = &add1["facts"]["rejoin"];
    let ic1 = r["initial_cluster"].as_str().unwrap().to_string();
    let mut want = vec![format!("m0={peer0}"), format!("m1={peer1}")];
    let mut got: Vec<String> = ic1.split(',').map(String::from).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{ic1}");
    assert_eq!(r["initial_cluster_state"], "existing");
    assert_eq!(r["member_id"].as_str().unwrap().len(), 16);
    assert!(r["env_lines"]
        .as_array()
        .unwrap()
        .contains(&Value::from(format!("ETCD_INITIAL_CLUSTER=\"{ic1}\""))));
    let (code, again, _) = run(c.tool("etcd-rejoin").env("ETCDCTL_ENDPOINTS", &m0).args([
        "add",
        "--name",
        "m1",
        "--peer-urls",
        &peer1,
    ]));
    assert_eq!(code, 0);
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["facts"], add1["facts"]);
    // m1 not started yet: adding m2 is refused.
    let (code, _, err) = run(c.tool("etcd-rejoin").env("ETCDCTL_ENDPOINTS", &m0).args([
        "add",
        "--name",
        "m2",
        "--peer-urls",
        &peer2,
    ]));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("has not started"), "{err}");

    let t_start1 = Instant::now();
    c.start_member_with(
        1,
        &[
            "--initial-cluster",
            &ic1,
            "--initial-cluster-state",
            "existing",
        ],
    )
    .await
    .unwrap();
    let (code, started1, err) = run(c.tool("etcd-rejoin").env("ETCDCTL_ENDPOINTS", &m0).args([
        "add",
        "--name",
        "m1",
        "--peer-urls",
        &peer1,
        "--wait-started",
        "--wait",
        "60s",
    ]));
    assert_eq!(code, 0, "{started1}\n{err}");
    assert_eq!(started1["changed"], false);
    assert_eq!(started1["data"]["started"], true);
    assert_eq!(started1["facts"]["rejoin"], add1["facts"]["rejoin"]);
    let start1_ms = t_start1.elapsed().as_millis();

    // m2: a learner on 3.5 (promoted on the --wait-started rerun), a voter on 3.4. The add is
    // retried while etcd says "unhealthy cluster" just after m1 started.
    let eps = format!("{m0},{}", c.members[1].client_url);
    let mut add2_args = vec!["add", "--name", "m2", "--peer-urls", &peer2];
    let learner = !v.is_34();
    if learner {
        add2_args.push("--learner");
    }
    let t_add2 = Instant::now();
    let (code, add2, err) = run(c
        .tool("etcd-rejoin")
        .env("ETCDCTL_ENDPOINTS", &m0)
        .args(&add2_args));
    let add2_ms = t_add2.elapsed().as_millis();
    assert_eq!(code, 0, "{add2}\n{err}");
    assert_eq!(add2["changed"], true);
    let ic2 = add2["facts"]["rejoin"]["initial_cluster"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ic2.split(',').count(), 3, "{ic2}");
    let add2_waited = add2["data"]["add_waited_ms"].as_u64().unwrap();
    if learner {
        assert!(
            member_peer_urls(&c, 0).await.iter().any(|m| m.2),
            "m2 is a learner"
        );
    }
    c.start_member_with(
        2,
        &[
            "--initial-cluster",
            &ic2,
            "--initial-cluster-state",
            "existing",
        ],
    )
    .await
    .unwrap();
    let mut wait_args = add2_args.clone();
    wait_args.extend(["--wait-started", "--wait", "60s"]);
    let (code, w2, err) = run(c
        .tool("etcd-rejoin")
        .env("ETCDCTL_ENDPOINTS", &eps)
        .args(&wait_args));
    assert_eq!(code, 0, "{w2}\n{err}");
    assert_eq!(w2["data"]["started"], true);
    assert_eq!(w2["data"]["promoted"], learner, "{w2}");
    assert_eq!(w2["changed"], learner);
    assert!(
        member_peer_urls(&c, 0).await.iter().all(|m| !m.2),
        "no learner left"
    );
    assert_eq!(w2["facts"]["rejoin"]["initial_cluster"], ic2.as_str());

    // remove refuses the last voter only: checked by name on an absent member (no change).
    let (code, rm, err) = run(c
        .tool("etcd-rejoin")
        .env("ETCDCTL_ENDPOINTS", &m0)
        .args(["remove", "--name", "nobody"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rm["changed"], false);

    // Restart everything normally (one at a time: m0 drops --force-new-cluster, the joiners
    // their --initial-cluster), then healthy, all data there. (A lone member of three never
    // serves, so the harness cannot start them from all-stopped one by one.)
    for i in 0..3 {
        c.stop_member(i).await.unwrap();
        c.start_member(i).await.unwrap();
    }
    c.wait_ready().await.unwrap();
    let (code, h, err) = run(c.tool("etcd-health").args([
        "--cluster",
        "--wait",
        "30s",
        "--retry-interval",
        "500ms",
    ]));
    assert_eq!(code, 0, "{h}\n{err}");
    let members = member_peer_urls(&c, 1).await;
    assert_eq!(members.len(), 3);
    for (i, m) in c.members.iter().enumerate() {
        assert!(
            members
                .iter()
                .any(|(n, u, l)| n == &m.name && u == &vec![m.peer_url.clone()] && !l),
            "{i}: {members:?}"
        );
    }
    for i in 0..3 {
        keys_present(&c, i, N).await;
    }
    eprintln!(
        "surgery {v}: purge x3 (stop by pid + move + rerun) {purge_ms} ms, member-fix {fix_ms} ms, rejoin m1 {add1_ms} ms, \
         start m1 + wait-started {start1_ms} ms, rejoin m2{} {add2_ms} ms (retried unhealthy cluster for {add2_waited} ms), total {} ms",
        if learner { " (learner)" } else { "" },
        t0.elapsed().as_millis()
    );
}

async fn remove_last_voter(v: Version) {
    let c = Cluster::start(v, ClusterOpts::members(1)).await.unwrap();
    let (code, out, err) = run(c.tool("etcd-rejoin").args(["remove", "--name", "m0"]));
    assert_eq!(code, 7, "{out}\n{err}");
    assert!(err.contains("last voter"), "{err}");
    let mut cl = c.client(0).await.unwrap();
    assert_eq!(cl.member_list().await.unwrap().members().len(), 1);
}

macro_rules! both_versions {
    ($($name:ident),* $(,)?) => {
        etcd_rescue_tests::each_version!($($name),*);
    };
}

both_versions!(surgery, remove_last_voter);
