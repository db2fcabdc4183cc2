//! `cargo xtask demo`: the README's first command — the whole job on a local cluster.
//!
//! A local 3-member etcd cluster (each member on its own loopback address, run from its env
//! file with a pid file, as `scripts/` manages hosts with `--runner local`) gets a
//! Kubernetes-like v3 dataset and a few flannel-like v2 keys → `scripts/backup.sh` (which picks
//! the v2 method because of the v2 keys; v3 with `--v3-only`) → the cluster destroyed (every key
//! deleted, one member SIGKILLed) → the matching `scripts/restore-v2.sh` / `restore-v3.sh` →
//! `etcd-health --cluster` → a summary of what came back and how long each step took.

use anyhow::{bail, Context, Result};
use etcd_rescue_tests::{fill_k8s_like, Cluster, ClusterOpts, ScriptHosts, Version};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HELP: &str =
    "usage: cargo xtask demo [--etcd 3.4.23|3.5.1|3.5.16|3.5.30] [--keys N] [--v3-only]

Default: etcd 3.5.30, the newest 3.5 release (Debian sid).

A local 3-member etcd cluster on 127.0.K.1-3 with N Kubernetes-like v3 keys (default 2000) and
20 flannel-like v2 keys (none with --v3-only) -> scripts/backup.sh -> the cluster destroyed
(every key deleted, member m2 SIGKILLed) -> scripts/restore-v2.sh or restore-v3.sh, as the
backup's method says -> etcd-health --cluster -> a summary: what was restored, how long each
step took. The cluster is stopped and its dir removed at the end.
Exit status: 0 when every key came back and the cluster is healthy.";

const V2_KEYS: usize = 20;

struct Opts {
    version: Version,
    keys: usize,
    v2: bool,
}

fn parse() -> Result<Opts> {
    let mut o = Opts {
        version: Version::V3530,
        keys: 2000,
        v2: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--etcd" => {
                let v = args.next();
                o.version = v.as_deref().and_then(Version::parse).with_context(|| {
                    format!("--etcd takes 3.4.23, 3.5.1, 3.5.16 or 3.5.30, not {v:?}")
                })?;
            }
            "--keys" => {
                o.keys = args
                    .next()
                    .context("--keys needs a number")?
                    .parse()
                    .context("--keys")?
            }
            "--v3-only" => o.v2 = false,
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{HELP}"),
        }
    }
    Ok(o)
}

fn step_line(name: &str, t: Instant, what: &str) {
    eprintln!(
        "demo: {name:<8} {:>7.2}s  {what}",
        t.elapsed().as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    match run().await {
        Ok(()) => println!("demo: exit code 0"),
        Err(e) => {
            eprintln!("demo: error: {e:#}");
            println!("demo: exit code 1");
            std::process::exit(1);
        }
    }
}

async fn http(client_url: &str, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let hostport = client_url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(hostport)
        .await
        .with_context(|| format!("connecting to {hostport}"))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
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
    Ok((status, body))
}

/// Leaf keys under the v2 dir /coreos.com (flannel's).
async fn v2_count(url: &str) -> Result<usize> {
    let (st, body) = http(url, "GET", "/v2/keys/coreos.com?recursive=true", "").await?;
    if st == 404 {
        return Ok(0);
    }
    if st != 200 {
        bail!("v2 GET: {st} {body}");
    }
    fn walk(n: &Value) -> usize {
        n.get("nodes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| {
                        if c.get("dir").and_then(Value::as_bool).unwrap_or(false) {
                            walk(c)
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    Ok(walk(&serde_json::from_str::<Value>(&body)?["node"]))
}

async fn v3_count(c: &Cluster, i: usize) -> Result<i64> {
    let mut cl = c.client(i).await?;
    let r = cl
        .get(
            vec![0u8],
            Some(
                etcd_client::GetOptions::new()
                    .with_all_keys()
                    .with_count_only(),
            ),
        )
        .await?;
    Ok(r.count())
}

fn check(o: &Output, what: &str) -> Result<()> {
    if !o.status.success() {
        bail!(
            "{what} exited with {}:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

/// Seconds per step name (summed over hosts) of the last run in a script's run log.
fn step_times(log: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let run = events
        .last()
        .and_then(|e| e["run"].as_str())
        .unwrap_or("")
        .to_string();
    let mut order: Vec<String> = Vec::new();
    let mut ms: BTreeMap<String, f64> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e["run"] == run.as_str() && e["event"] == "done" && e["step"] != "end")
    {
        let mut name = e["step"].as_str().unwrap_or("?").to_string();
        if name.starts_with("healthy-after-restart") {
            name = "healthy-after-restart".into();
        }
        if !order.contains(&name) {
            order.push(name.clone());
        }
        *ms.entry(name).or_default() += e["ms"].as_f64().unwrap_or(0.0) / 1000.0;
    }
    order
        .into_iter()
        .map(|n| {
            let s = ms.get(&n).copied().unwrap_or(0.0);
            (n, s)
        })
        .collect()
}

async fn run() -> Result<()> {
    let o = parse()?;
    let t_all = Instant::now();

    let t = Instant::now();
    let mut c = Cluster::start(
        o.version,
        ClusterOpts {
            members: 3,
            enable_v2: o.v2,
            ..Default::default()
        },
    )
    .await?;
    step_line(
        "start",
        t,
        &format!("etcd {} cluster of 3 at {}", o.version, c.endpoints()),
    );

    let t = Instant::now();
    let mut client = c.client_all().await?;
    let bytes = fill_k8s_like(&mut client, o.keys, 1024, 8192, 16).await?;
    drop(client);
    if o.v2 {
        for i in 0..V2_KEYS {
            let (st, body) = http(
                &c.members[i % 3].client_url,
                "PUT",
                &format!("/v2/keys/coreos.com/network/subnets/10.244.{i}.0-24"),
                &format!("value={{\"PublicIP\":\"192.168.0.{i}\",\"BackendType\":\"vxlan\"}}"),
            )
            .await?;
            if st != 200 && st != 201 {
                bail!("v2 put: {st} {body}");
            }
        }
    }
    let want_v3 = v3_count(&c, 0).await?;
    let want_v2 = if o.v2 {
        v2_count(&c.members[0].client_url).await?
    } else {
        0
    };
    step_line(
        "write",
        t,
        &format!(
            "{want_v3} v3 keys ({:.1} MB of values), {want_v2} v2 keys",
            bytes as f64 / 1e6
        ),
    );

    // From here on the members run from their env files with pid files, as the scripts
    // manage hosts with --runner local --control pidfile:...
    let t = Instant::now();
    let hosts = ScriptHosts::new(&c)?;
    hosts.take_over(&mut c).await?;
    step_line(
        "env",
        t,
        &format!(
            "members run from {}/m*.env (pid files in run/)",
            c.dir.display()
        ),
    );

    let t = Instant::now();
    let bdir = c.dir.join("backups/demo");
    let env0 = c.dir.join("m0.env");
    let out = hosts
        .script(&c, "backup.sh")
        .arg("--env-file")
        .arg(&env0)
        .arg(&bdir)
        .output()
        .context("running backup.sh")?;
    check(&out, "backup.sh")?;
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(bdir.join("backup.json")).context("backup.json")?,
    )?;
    let method = meta["method"].as_str().unwrap_or("?").to_string();
    step_line(
        "backup",
        t,
        &format!(
            "backup.sh chose the {method} method (detected {}): {}/{}",
            meta["detected_method"].as_str().unwrap_or("?"),
            bdir.display(),
            meta["file"].as_str().unwrap_or("?")
        ),
    );

    let t = Instant::now();
    // Retried: just after the members restarted, a request may meet "leader changed".
    let mut tries = 0;
    loop {
        let mut cl = c.client(0).await?;
        match cl
            .delete(
                vec![0u8],
                Some(etcd_client::DeleteOptions::new().with_all_keys()),
            )
            .await
        {
            Ok(_) => break,
            Err(e) if tries < 20 => {
                tries += 1;
                eprintln!("demo: delete: {e}; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if o.v2 {
        http(
            &c.members[0].client_url,
            "DELETE",
            "/v2/keys/coreos.com?recursive=true",
            "",
        )
        .await?;
    }
    let pid: i32 = std::fs::read_to_string(hosts.pid_file("m2"))?
        .trim()
        .parse()?;
    let left = v3_count(&c, 0).await?;
    killpg(Pid::from_raw(pid), Signal::SIGKILL)?;
    step_line(
        "destroy",
        t,
        &format!("every key deleted ({left} v3 keys left), m2 SIGKILLed"),
    );

    let t = Instant::now();
    let script = format!("restore-{method}.sh");
    let out = hosts
        .script(&c, &script)
        .arg(&bdir)
        .output()
        .with_context(|| format!("running {script}"))?;
    check(&out, &script)?;
    step_line("restore", t, &format!("{script} {}", bdir.display()));
    for (name, secs) in step_times(&bdir.join(format!("restore-{method}.jsonl"))) {
        eprintln!("demo:   {name:<22} {secs:>6.2}s");
    }

    let t = Instant::now();
    let out = c
        .tool("etcd-health")
        .args(["--cluster", "--wait", "30s", "--retry-interval", "500ms"])
        .output()
        .context("running etcd-health")?;
    let summary = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let envelope: Value = serde_json::from_slice(&out.stdout).context("etcd-health output")?;
    step_line("health", t, &summary);
    check(&out, "etcd-health")?;

    let got_v3 = v3_count(&c, 1).await?;
    let got_v2 = if o.v2 {
        v2_count(&c.members[2].client_url).await?
    } else {
        0
    };
    drop(hosts);
    let ok = got_v3 == want_v3 && got_v2 == want_v2;
    println!(
        "demo: {} in {:.1}s: etcd {} cluster backed up with the {method} method, destroyed and \
         restored by {script}: {got_v3}/{want_v3} v3 keys and {got_v2}/{want_v2} v2 keys back, \
         cluster {} {}",
        if ok { "done" } else { "FAILED" },
        t_all.elapsed().as_secs_f64(),
        o.version,
        envelope["facts"]["cluster_id"].as_str().unwrap_or("?"),
        envelope["facts"]["health"]["status"]
            .as_str()
            .unwrap_or("?"),
    );
    if !ok {
        bail!("keys missing after the restore");
    }
    Ok(())
}
