//! End to end: scripts/backup.sh, restore-v3.sh and restore-v2.sh on real 3-member etcd 3.4.23
//! and 3.5.1 clusters, run with the local runner (`--runner local`) and pid-file control
//! (`--control pidfile:DIR/run/{name}.pid`): each "host" is a loopback address with its own env
//! file (`DIR/{name}.env`, what etcd reads as its ETCD_* variables) and data dir.
//!
//! The harness starts the cluster and writes the data; then it is stopped and run by the
//! scripts' own control (etcd started from the env files, pid files), so the restore stops it
//! the way it would on a host. "Destroy" = every key deleted and member 2 SIGKILLed.
//!
//! - `v3_*`: v3 keys only → backup.sh picks v3 → destroy → restore-v3.sh → etcd-health exit 0,
//!   every key back, a new cluster ID.
//! - `v2_*`: `--enable-v2`, v2 and v3 keys → backup.sh picks v2 → destroy → restore-v2.sh →
//!   healthy, 3 members with their real peer URLs, every v2 and v3 key back.
//! - `faults_*`: the restore SIGKILLed (its whole process group: the script and the etcd-* tool
//!   it runs) in EVERY step in turn, in one chain: a run is killed in the first step no earlier
//!   run was killed in (as soon as that step's tool runs, or 1 s after the step began when it
//!   runs no tool: start/restart), its rerun continues from the state file and is killed in the
//!   next one, ... until a rerun completes → healthy with all data. A step that completes
//!   within that second is not a kill point of its own (the list is printed; the test requires
//!   the steps that take seconds: purge on every host, and for v2 rejoin on m1 and m2; plus at
//!   least one of the quick restore (v3) / joiner start (v2) steps). Both paths run on both
//!   versions. Measured once: v3 on 3.4.23 (9 kills: purge ×3, restore ×3, start m0/m2,
//!   health; 21 s; 7 kills on a quieter machine), v2 on 3.5.1 (18
//!   kills: purge ×3, wal-restore, start-first, health-first, member-fix, rejoin m1/m2, start m2,
//!   started m1/m2, restart ×3, health after each restart; 53 s).
//! - `unreachable_*`: the runner says member 1 cannot be reached (exit 255, like ssh) →
//!   exit 4, the error names m1 and the step (preflight), nothing purged anywhere: every member
//!   still runs on its untouched data dir.
#![allow(clippy::unwrap_used)]

use etcd_rescue_tests::{Cluster, ClusterOpts, ScriptHosts as Hosts, Version};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const N_V3: usize = 200;
const N_V2: usize = 50;

fn health(c: &Cluster, wait: &str) -> Value {
    let o = c
        .tool("etcd-health")
        .args(["--cluster", "--wait", wait, "--retry-interval", "300ms"])
        .output()
        .unwrap();
    let v = envelope(&o);
    assert!(
        o.status.success(),
        "etcd-health: {v}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    v
}

fn envelope(o: &Output) -> Value {
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(s.lines().count(), 1, "one line on stdout: {s}");
    serde_json::from_str(s.trim()).unwrap()
}

fn run_ok(cmd: &mut Command, what: &str) -> (Output, f64) {
    let t = Instant::now();
    let o = cmd.output().unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o, secs)
}

async fn http(client_url: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let hostport = client_url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(hostport).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    let body = body
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or("")
        .to_string();
    (status, body)
}

async fn v2_put(url: &str, key: &str, value: &str) {
    let (st, body) = http(
        url,
        "PUT",
        &format!("/v2/keys{key}"),
        &format!("value={value}"),
    )
    .await;
    assert!(st == 200 || st == 201, "v2 put {key}: {st} {body}");
}

/// Every v2 key (not dirs) under `/app` with its value.
async fn v2_all(url: &str) -> BTreeMap<String, String> {
    let (st, body) = http(url, "GET", "/v2/keys/app?recursive=true", "").await;
    if st == 404 {
        return BTreeMap::new();
    }
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    fn walk(n: &Value, out: &mut BTreeMap<String, String>) {
        for c in n
            .get("nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if c.get("dir").and_then(Value::as_bool).unwrap_or(false) {
                walk(c, out);
            } else {
                out.insert(
                    c["key"].as_str().unwrap().to_string(),
                    c["value"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&v["node"], &mut out);
    out
}

async fn v3_all(c: &Cluster, i: usize) -> BTreeMap<String, String> {
    let mut cl = c.client(i).await.unwrap();
    let r = cl
        .get(
            vec![0u8],
            Some(etcd_client::GetOptions::new().with_all_keys()),
        )
        .await
        .unwrap();
    r.kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).to_string(),
                String::from_utf8_lossy(kv.value()).to_string(),
            )
        })
        .collect()
}

struct Data {
    v3: BTreeMap<String, String>,
    v2: BTreeMap<String, String>,
}

/// A populated cluster: v3 keys (and with `v2`, v2 keys under /app), under pid-file control.
async fn populated(v: Version, with_v2: bool) -> (Cluster, Hosts, Data) {
    populated_with(v, with_v2, false).await
}

/// [`populated`], with etcd auth on (user root, password) when `auth`: every tool the scripts
/// run gets ETCDCTL_USER/ETCDCTL_PASSWORD from the environment, as an operator's shell has.
async fn populated_with(v: Version, with_v2: bool, auth: bool) -> (Cluster, Hosts, Data) {
    let mut c = Cluster::start(
        v,
        ClusterOpts {
            members: 3,
            enable_v2: with_v2,
            auth,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut v3 = BTreeMap::new();
    let mut v2 = BTreeMap::new();
    {
        // One endpoint: with auth, a token from one member can reach another before it has
        // applied the login ("invalid auth token"; etcdctl re-authenticates, etcd-client not).
        let mut cl = if auth {
            c.client(0).await.unwrap()
        } else {
            c.client_all().await.unwrap()
        };
        let n = if with_v2 { N_V2 } else { N_V3 };
        for k in 0..n {
            let (key, val) = (format!("/scripts/k{k:04}"), format!("value-{k}"));
            cl.put(key.clone(), val.clone(), None).await.unwrap();
            v3.insert(key, val);
        }
        if with_v2 {
            for k in 0..N_V2 {
                let (key, val) = (format!("/app/net/k{k:03}"), format!("v2-{k}"));
                v2_put(&c.members[k % 3].client_url, &key, &val).await;
                v2.insert(key, val);
            }
        }
    }
    let hosts = Hosts::new(&c).unwrap();
    hosts.take_over(&mut c).await.unwrap();
    (c, hosts, Data { v3, v2 })
}

/// Back up from member 0 with backup.sh; returns the backup dir and backup.json.
fn backup(c: &Cluster, hosts: &Hosts, want: &str) -> (PathBuf, Value, f64) {
    let dir = c.dir.join("backups/b1");
    let env0 = c.dir.join("m0.env");
    // The dry run detects (read-only) and names the method the real run then uses.
    let (o, _) = run_ok(
        hosts
            .script(c, "backup.sh")
            .args(["--dry-run", "--env-file", env0.to_str().unwrap()])
            .arg(&dir),
        "backup.sh --dry-run",
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("method: {want} (detected {want})")),
        "backup.sh --dry-run: {err}"
    );
    assert!(!dir.exists(), "the dry run wrote {}", dir.display());
    let (_, secs) = run_ok(
        hosts
            .script(c, "backup.sh")
            .args(["--env-file", env0.to_str().unwrap()])
            .arg(&dir),
        "backup.sh",
    );
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("backup.json")).unwrap()).unwrap();
    assert_eq!(meta["method"], want, "{meta}");
    if want == "v3" {
        // Issue 17: on the member's host the db is copied from its data dir.
        assert_eq!(meta["save"]["snapshot"]["source"], "disk", "{meta}");
    }
    // One JSON line per step event, the tools' envelopes kept.
    let log = std::fs::read_to_string(dir.join("run.jsonl")).unwrap();
    let steps: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for s in ["detect", "save", "verify"] {
        assert!(
            steps
                .iter()
                .any(|e| e["step"] == s && e["event"] == "done" && e["envelope"]["ok"] == true),
            "{s} in {log}"
        );
    }
    // A rerun on a complete backup changes nothing.
    run_ok(
        hosts
            .script(c, "backup.sh")
            .args(["--env-file", env0.to_str().unwrap()])
            .arg(&dir),
        "backup.sh rerun",
    );
    assert_eq!(std::fs::read_to_string(dir.join("run.jsonl")).unwrap(), log);
    (dir, meta, secs)
}

/// Delete every key, SIGKILL member 2.
async fn destroy(c: &Cluster, hosts: &Hosts, data: &Data) {
    // Retried: just after the members restarted, a request may meet "leader changed".
    for tries in 0.. {
        let mut cl = c.client(0).await.unwrap();
        match cl
            .delete(
                vec![0u8],
                Some(etcd_client::DeleteOptions::new().with_all_keys()),
            )
            .await
        {
            Ok(_) => break,
            Err(e) if tries < 20 => {
                eprintln!("destroy: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("delete: {e}"),
        }
    }
    if !data.v2.is_empty() {
        let (st, body) = http(
            &c.members[0].client_url,
            "DELETE",
            "/v2/keys/app?recursive=true",
            "",
        )
        .await;
        assert_eq!(st, 200, "{body}");
        assert!(v2_all(&c.members[0].client_url).await.is_empty());
    }
    assert!(v3_all(c, 0).await.is_empty());
    let pid: i32 = std::fs::read_to_string(hosts.pid_file("m2"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    killpg(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
}

/// Healthy, 3 members with their real peer URLs, no learner, every key back, new cluster ID.
async fn verify(c: &Cluster, data: &Data, old_cluster: &str) {
    let h = health(c, "30s");
    assert_ne!(h["facts"]["cluster_id"], old_cluster, "{h}");
    let mut cl = c.client(1).await.unwrap();
    let l = cl.member_list().await.unwrap();
    let mut got: Vec<(String, Vec<String>, bool)> = l
        .members()
        .iter()
        .map(|m| (m.name().to_string(), m.peer_urls().to_vec(), m.is_learner()))
        .collect();
    got.sort();
    let want: Vec<(String, Vec<String>, bool)> = c
        .members
        .iter()
        .map(|m| (m.name.clone(), vec![m.peer_url.clone()], false))
        .collect();
    assert_eq!(got, want);
    for i in 0..3 {
        assert_eq!(v3_all(c, i).await, data.v3, "v3 keys on m{i}");
    }
    if !data.v2.is_empty() {
        for m in &c.members {
            assert_eq!(
                v2_all(&m.client_url).await,
                data.v2,
                "v2 keys on {}",
                m.name
            );
        }
    }
}

fn cluster_id(c: &Cluster) -> String {
    health(c, "10s")["facts"]["cluster_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn v3_path(v: Version) {
    let t0 = Instant::now();
    let (c, hosts, data) = populated(v, false).await;
    let old = cluster_id(&c);
    let (dir, meta, t_backup) = backup(&c, &hosts, "v3");
    assert!(dir.join("snapshot.db").is_file(), "{meta}");
    destroy(&c, &hosts, &data).await;
    // --dry-run: every command printed host by host, nothing changed.
    let (o, _) = run_ok(
        hosts.script(&c, "restore-v3.sh").arg("--dry-run").arg(&dir),
        "restore-v3.sh --dry-run",
    );
    let plan = String::from_utf8_lossy(&o.stdout);
    for n in ["m0", "m1", "m2"] {
        assert!(plan.contains(&format!("[{n}] etcd-purge")), "{plan}");
        assert!(plan.contains(&format!("[{n}] etcd-snap restore")), "{plan}");
    }
    assert!(c.members[0].data_dir.join("member").is_dir());
    let (_, t_restore) = run_ok(hosts.script(&c, "restore-v3.sh").arg(&dir), "restore-v3.sh");
    verify(&c, &data, &old).await;
    // A whole-cluster restore bumps the revision by default (1,000,000,000) and marks the old
    // ones compacted: a watcher never sees the revision go back.
    {
        let mut cl = c.client(0).await.unwrap();
        let r = cl.get("/scripts/k0000", None).await.unwrap();
        let rev = r.header().unwrap().revision();
        assert!(rev > 1_000_000_000, "revision {rev} not bumped");
        let old_rev = etcd_client::GetOptions::new().with_revision(rev - 1_000_000_000);
        let e = cl.get("/scripts/k0000", Some(old_rev)).await.unwrap_err();
        assert!(e.to_string().contains("compacted"), "{e}");
    }
    // A finished restore is not redone by accident.
    let o = hosts
        .script(&c, "restore-v3.sh")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!(
        "scripts v3 {v}: backup {t_backup:.1}s, restore {t_restore:.1}s, total {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

async fn v2_path(v: Version) {
    let t0 = Instant::now();
    let (c, hosts, data) = populated(v, true).await;
    let old = cluster_id(&c);
    let (dir, meta, t_backup) = backup(&c, &hosts, "v2");
    assert!(dir.join("wal-backup/manifest.json").is_file(), "{meta}");
    destroy(&c, &hosts, &data).await;
    let (_, t_restore) = run_ok(hosts.script(&c, "restore-v2.sh").arg(&dir), "restore-v2.sh");
    verify(&c, &data, &old).await;
    eprintln!(
        "scripts v2 {v}: backup {t_backup:.1}s, restore {t_restore:.1}s, total {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

/// restore-v2.sh (plain, or with `--learner`) and restore-v3.sh on a cluster with etcd password
/// auth: each passes the first time. On 3.5, adding the second member leaves a 2-voter cluster
/// without quorum until the joiner publishes itself (7-22 s), and a password login needs
/// quorum: the tools' connection retries must span --wait, not --command-timeout.
async fn password_auth(v: Version) {
    let t0 = Instant::now();
    let (c, hosts, data) = populated_with(v, true, true).await;
    let old = cluster_id(&c);
    let (dir, _, _) = backup(&c, &hosts, "v2");
    destroy(&c, &hosts, &data).await;
    run_ok(
        hosts.script(&c, "restore-v2.sh").arg(&dir),
        "restore-v2.sh with password auth",
    );
    verify(&c, &data, &old).await;
    let t_plain = t0.elapsed().as_secs_f64();
    // (The same backup restores to the same new cluster ID: compared with the original.)
    destroy(&c, &hosts, &data).await;
    run_ok(
        hosts
            .script(&c, "restore-v2.sh")
            .args(["--again", "--learner"])
            .arg(&dir),
        "restore-v2.sh --learner with password auth",
    );
    verify(&c, &data, &old).await;
    // Nothing of the scripts' environment reached etcd's (the password above all).
    for n in &hosts.names {
        let pid = std::fs::read_to_string(hosts.pid_file(n)).unwrap();
        let environ = std::fs::read(format!("/proc/{}/environ", pid.trim())).unwrap();
        let environ = String::from_utf8_lossy(&environ);
        for bad in ["ETCDCTL_", "ETCD_RESCUE_", etcd_rescue_tests::ROOT_PASSWORD] {
            assert!(
                !environ.contains(bad),
                "{n}: etcd's environment has {bad}: {environ}"
            );
        }
        assert!(environ.contains("ETCD_NAME="), "{n}: {environ}");
    }
    // Auth is still enforced: no credentials, no keys.
    let o = c
        .etcdctl(0)
        .env_remove("ETCDCTL_USER")
        .env_remove("ETCDCTL_PASSWORD")
        .args(["get", "/scripts/k0000"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "auth no longer enforced");
    eprintln!(
        "scripts password auth {v}: v2 {t_plain:.1}s, with --learner {:.1}s",
        t0.elapsed().as_secs_f64() - t_plain
    );
}

/// The step events of the run log after its first `from` lines: (event, step, host).
fn step_events(log: &Path, from: usize) -> Vec<(String, String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .skip(from)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["step"] != "begin" && e["step"] != "end")
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (f("event"), f("step"), f("host"))
        })
        .collect()
}

fn log_lines(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |s| s.lines().count())
}

/// The step in progress after line `from`: started, not yet done, skipped or failed.
fn in_progress(log: &Path, from: usize) -> Option<(String, String)> {
    let mut cur = None;
    for (e, s, h) in step_events(log, from) {
        if e == "start" {
            cur = Some((s, h));
        } else if cur.as_ref() == Some(&(s, h)) {
            cur = None;
        }
    }
    cur
}

/// The state ('R', 'S', 'T', ...) and comm of every process of group `pgid` but the leader.
fn group_procs(pgid: i32) -> Vec<(i32, char, String)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // pid (comm) state ppid pgrp ...
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let state = f.first()?.chars().next()?;
            (f.get(2)?.parse::<i32>().ok()? == pgid && pid != pgid).then_some((pid, state, comm))
        })
        .collect()
}

/// A tool shim of group `pgid` that has stopped itself before running its tool.
fn stopped_tool(pgid: i32) -> Option<i32> {
    group_procs(pgid)
        .into_iter()
        .find(|(_, st, comm)| *st == 'T' && comm.starts_with("etcd-"))
        .map(|(p, _, _)| p)
}

/// Whether a process of group `pgid` other than the leader (the script) runs an etcd-* tool.
fn tool_running(pgid: i32) -> bool {
    group_procs(pgid)
        .iter()
        .any(|(_, _, comm)| comm.starts_with("etcd-"))
}

/// A pseudo-random number of milliseconds in `0..n` (the clock's nanoseconds; no seed to keep).
fn jitter_ms(n: u64) -> u64 {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (ns / 1000) % n.max(1)
}

/// Shims for the tools, first on the script's PATH: each stops itself (SIGSTOP) before it
/// execs the real tool, so the test sees every tool step begin, however quick the step is.
fn tool_shims(c: &Cluster) -> PathBuf {
    let dir = c.dir.join("tool-shims");
    std::fs::create_dir_all(&dir).unwrap();
    for t in [
        "etcd-detect-version",
        "etcd-snap",
        "etcd-wal-backup",
        "etcd-purge",
        "etcd-member-fix",
        "etcd-rejoin",
        "etcd-health",
    ] {
        let p = dir.join(t);
        std::fs::write(
            &p,
            format!(
                "#!/bin/bash\n# test shim: wait for the fault test, then run the tool\nkill -STOP $$\nexec {} \"$@\"\n",
                etcd_rescue_tests::tool_bin(t).display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    dir
}

/// The restore SIGKILLed (script + tool) at the start of every step in turn, one rerun after
/// each, then a rerun that completes. Every step that runs a tool is killed twice, through the
/// tool shims (deterministic, whatever the machine's speed): once as its tool is about to start,
/// and once, on the rerun, after its tool has run a random 0-150 ms (in the tool, unless the
/// step ended sooner). Steps without a tool (copy, start) are killed when seen in progress.
async fn faults(v: Version, script: &str, with_v2: bool) {
    let t0 = Instant::now();
    let (c, hosts, data) = populated(v, with_v2).await;
    let old = cluster_id(&c);
    let (dir, _, _) = backup(&c, &hosts, if with_v2 { "v2" } else { "v3" });
    destroy(&c, &hosts, &data).await;
    let kind = if with_v2 { "v2" } else { "v3" };
    let log = dir.join(format!("restore-{kind}.jsonl"));
    let shims = tool_shims(&c);
    // Killed at the start of the step (before its tool ran, or a tool-less step in progress).
    let mut killed: Vec<(String, String)> = Vec::new();
    // Killed while the step's tool ran.
    let mut mid: Vec<(String, String)> = Vec::new();
    // Steps whose in-tool kill was tried (killed, or the step ended first).
    let mut mid_tried: Vec<(String, String)> = Vec::new();
    let done_marker = dir.join(format!("restore-{kind}.done"));
    'runs: loop {
        let before = log_lines(&log);
        let mut cmd = hosts.script(&c, script);
        let path = cmd
            .get_envs()
            .find(|(k, _)| *k == "PATH")
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().to_string()))
            .unwrap_or_default();
        let mut child = cmd
            .env("PATH", format!("{}:{path}", shims.display()))
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let grp = Pid::from_raw(pgid);
        let deadline = Instant::now() + Duration::from_secs(180);
        // When a tool-less step was first seen in progress, and the delay before its kill.
        let mut seen: Option<((String, String), Instant, Duration)> = None;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                assert!(
                    st.success(),
                    "rerun after {killed:?} / {mid:?} failed: {st}\n{err}"
                );
                // Completed: no step left to kill in.
                break 'runs;
            }
            assert!(
                Instant::now() < deadline,
                "restore stuck after {killed:?} / {mid:?}"
            );
            let cur = in_progress(&log, before);
            let stopped = stopped_tool(pgid);
            let mut kill_as: Option<bool> = None; // Some(in_tool)
            match (&cur, stopped) {
                (Some(s), Some(_)) if !killed.contains(s) => kill_as = Some(false),
                (Some(s), Some(pid)) if !mid_tried.contains(s) => {
                    mid_tried.push(s.clone());
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGCONT);
                    tokio::time::sleep(Duration::from_millis(jitter_ms(150))).await;
                    if in_progress(&log, before).as_ref() == Some(s) {
                        kill_as = Some(true);
                    }
                }
                (_, Some(pid)) => {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGCONT);
                }
                (Some(s), None) if !killed.contains(s) && !tool_running(pgid) => {
                    // A step without a tool, or a tool step before its shim started.
                    match &seen {
                        Some((t, at, d)) if t == s => {
                            if at.elapsed() >= *d {
                                kill_as = Some(false);
                            }
                        }
                        _ => {
                            seen = Some((
                                s.clone(),
                                Instant::now(),
                                Duration::from_millis(jitter_ms(50)),
                            ))
                        }
                    }
                }
                _ => {}
            }
            let Some(in_tool) = kill_as else {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            };
            let _ = killpg(grp, Signal::SIGKILL);
            let st = child.wait().unwrap();
            if (st.success() && in_progress(&log, before).is_none()) || done_marker.exists() {
                // The run completed before the kill landed (a kill after the done marker leaves
                // a completed restore, which a rerun rightly refuses without --again).
                break 'runs;
            }
            let s = cur.unwrap();
            if in_progress(&log, before).as_ref() != Some(&s) {
                // The step ended between the check and the kill: a kill between steps.
            } else if in_tool {
                mid.push(s);
            } else {
                killed.push(s);
            }
            continue 'runs;
        }
    }
    eprintln!(
        "scripts faults {kind} {v}: killed at the start of {} steps: {killed:?}; in the tool of {}: {mid:?}",
        killed.len(),
        mid.len()
    );
    // Every step that runs a tool stops in its shim until the test lets it go: each is killed
    // at its start whatever the machine's speed. Tool-less steps (copy, start) are killed when
    // seen in progress, which a quick one can slip past.
    let mut required: Vec<(&str, &str)> = Vec::new();
    for h in ["m0", "m1", "m2"] {
        required.push(("purge", h));
        if !with_v2 {
            // (copy and verify on each host are no steps with the local runner.)
            required.push(("restore", h));
        }
    }
    if with_v2 {
        required.extend([
            ("wal-restore", "m0"),
            ("health-first", "m0"),
            ("member-fix", "m0"),
        ]);
        for h in ["m1", "m2"] {
            required.push(("rejoin", h));
            required.push(("started", h));
        }
    }
    required.push(("health", "m0"));
    for (step, host) in &required {
        assert!(
            killed.iter().any(|(s, h)| s == step && h == host),
            "no kill at the start of step {step} on {host}: {killed:?}"
        );
    }
    // Purge stops etcd and moves its dir aside: it takes longer than the longest delay.
    assert!(
        mid.iter().any(|(s, _)| s == "purge"),
        "no kill inside any purge: {mid:?}"
    );
    verify(&c, &data, &old).await;
    eprintln!(
        "scripts faults {kind} {v}: {} kills + final run, total {:.1}s",
        killed.len() + mid.len(),
        t0.elapsed().as_secs_f64()
    );
}

/// A corrupt backup against a healthy cluster: the restore script verifies it before anything
/// changes, exits 3, and every member still runs on its own, untouched member dir (same
/// inode), with every key. v3: one byte of the snapshot flipped; v2: one byte of the newest WAL
/// segment flipped (the manifest left as it was).
async fn corrupt_backup(v: Version, with_v2: bool) {
    use std::os::unix::fs::MetadataExt;
    let (c, hosts, data) = populated(v, with_v2).await;
    let (dir, _, _) = backup(&c, &hosts, if with_v2 { "v2" } else { "v3" });
    let victim = if with_v2 {
        let wal = dir.join("wal-backup/member/wal");
        let mut segs: Vec<PathBuf> = std::fs::read_dir(&wal)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        segs.sort();
        segs.pop().unwrap()
    } else {
        dir.join("snapshot.db")
    };
    let mut bytes = std::fs::read(&victim).unwrap();
    let at = if with_v2 { 200 } else { bytes.len() / 2 };
    bytes[at] ^= 0x5a;
    std::fs::write(&victim, &bytes).unwrap();
    let inodes: Vec<u64> = c
        .members
        .iter()
        .map(|m| std::fs::metadata(m.data_dir.join("member")).unwrap().ino())
        .collect();
    let script = if with_v2 {
        "restore-v2.sh"
    } else {
        "restore-v3.sh"
    };
    let o = hosts.script(&c, script).arg(&dir).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{script}: {err}");
    assert!(
        err.contains("failed verification") && err.contains("nothing was changed"),
        "{err}"
    );
    for (m, ino) in c.members.iter().zip(&inodes) {
        let now = std::fs::metadata(m.data_dir.join("member")).unwrap().ino();
        assert_eq!(now, *ino, "{}: member dir replaced", m.name);
        let names: Vec<String> = std::fs::read_dir(&m.data_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["member".to_string()], "{}", m.name);
    }
    health(&c, "10s");
    assert_eq!(v3_all(&c, 0).await, data.v3);
}

/// A good backup against a cluster that is healthy right now: the dry run warns that a real run
/// would refuse; the real run refuses (7) and changes nothing; with --yes it restores.
async fn healthy_guard(v: Version) {
    use std::os::unix::fs::MetadataExt;
    let (c, hosts, data) = populated(v, false).await;
    let old = cluster_id(&c);
    let (dir, _, _) = backup(&c, &hosts, "v3");
    let ino = |i: usize| {
        std::fs::metadata(c.members[i].data_dir.join("member"))
            .unwrap()
            .ino()
    };
    let before: Vec<u64> = (0..3).map(ino).collect();
    let (o, _) = run_ok(
        hosts.script(&c, "restore-v3.sh").arg("--dry-run").arg(&dir),
        "restore-v3.sh --dry-run",
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("healthy right now") && err.contains("would refuse"),
        "{err}"
    );
    let o = hosts
        .script(&c, "restore-v3.sh")
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(
        err.contains("healthy right now") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!((0..3).map(ino).collect::<Vec<_>>(), before);
    health(&c, "10s");
    run_ok(
        hosts.script(&c, "restore-v3.sh").arg("--yes").arg(&dir),
        "restore-v3.sh --yes",
    );
    verify(&c, &data, &old).await;
}

async fn unreachable(v: Version) {
    let (c, hosts, data) = populated(v, false).await;
    let (dir, _, _) = backup(&c, &hosts, "v3");
    let bad = c.members[1].ip.clone();
    let runner = c.dir.join("fake-ssh");
    std::fs::write(
        &runner,
        format!(
            "#!/bin/bash\n# like ssh: exit 255 when the host cannot be reached\n\
             if [[ $1 == {bad} ]]; then echo \"ssh: connect to host $1 port 22: No route to host\" >&2; exit 255; fi\n\
             exec bash -c \"$2\" </dev/null\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&runner, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for script in ["restore-v3.sh", "restore-v2.sh"] {
        let o = hosts
            .script(&c, script)
            .env("ETCD_RESCUE_RUNNER", format!("exec:{}", runner.display()))
            .arg(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if script == "restore-v2.sh" {
            // A v3 backup: refused before any host is touched.
            assert_eq!(o.status.code(), Some(3), "{err}");
            continue;
        }
        assert_eq!(o.status.code(), Some(4), "{err}");
        assert!(
            err.contains("host m1") && err.contains(&bad) && err.contains("preflight"),
            "{err}"
        );
        assert!(err.contains("nothing was changed"), "{err}");
    }
    // Nothing purged: every member dir in place, no moved-aside copy, the cluster serves.
    for m in &c.members {
        assert!(m.data_dir.join("member/wal").is_dir());
        let names: Vec<String> = std::fs::read_dir(&m.data_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["member".to_string()], "{}", m.name);
    }
    health(&c, "10s");
    assert_eq!(v3_all(&c, 0).await, data.v3);
}

etcd_rescue_tests::each_version!(v3_path, v2_path, password_auth);
etcd_rescue_tests::smoke_3_5_16!(v3_path, v2_path);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_v3_etcd_3_4() {
    faults(Version::V34, "restore-v3.sh", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_v2_etcd_3_5() {
    faults(Version::V35, "restore-v2.sh", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_v3_etcd_3_5() {
    faults(Version::V35, "restore-v3.sh", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_v2_etcd_3_4() {
    faults(Version::V34, "restore-v2.sh", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_v3_etcd_3_5_30() {
    faults(Version::V3530, "restore-v3.sh", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_v2_etcd_3_5_30() {
    faults(Version::V3530, "restore-v2.sh", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_backup_changes_nothing_etcd_3_5_30() {
    corrupt_backup(Version::V3530, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_v2_backup_changes_nothing_etcd_3_5_30() {
    corrupt_backup(Version::V3530, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster_not_purged_without_yes_etcd_3_4_23() {
    healthy_guard(Version::V34).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_host_etcd_3_5() {
    unreachable(Version::V35).await
}

/// The user and password reach the command's environment on the host, and never any process's
/// command line there (visible to every user in `ps`): lib.sh sends them on the runner's stdin.
#[test]
fn credentials_never_on_a_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let runner = dir.path().join("runner");
    // Like ssh: the command string arrives as an argument and lives as long as the command.
    std::fs::write(&runner, "#!/bin/bash\nbash -c \"$2\"\n").unwrap();
    std::fs::set_permissions(&runner, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let pat = dir.path().join("pw.pat");
    let lib = etcd_rescue_tests::workspace_root().join("scripts/lib.sh");
    let script = format!(
        r#"set -euo pipefail
source {lib}
HOST_NAMES=(h1); HOST_PEERS=(http://127.0.0.1:2380); HOST_ADDRS=(127.0.0.1)
RUNNER=exec:{runner}
on_host h1 sh -c 'echo "env:$ETCDCTL_USER:$ETCDCTL_PASSWORD:$ETCDCTL_CACERT"; printenv ETCDCTL_PASSWORD > {pat}; n=0; for p in /proc/[0-9]*/cmdline; do if tr "\0" " " < "$p" 2>/dev/null | grep -q -F -f {pat}; then n=$((n+1)); fi; done; echo "cmdlines:$n"'
"#,
        lib = lib.display(),
        runner = runner.display(),
        pat = pat.display()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("ETCDCTL_USER", "root")
        .env("ETCDCTL_PASSWORD", "s3cr3t-pw-7f3a")
        .env("ETCDCTL_CACERT", "/etc/ca.pem")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("env:root:s3cr3t-pw-7f3a:/etc/ca.pem"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cmdlines:0"),
        "the password is on a command line: {stdout}"
    );
}
