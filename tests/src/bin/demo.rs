//! `cargo xtask demo`: the README's first command, on an embedded default.
//!
//! Starts a local 3-member etcd cluster (each member on its own loopback address), writes a
//! Kubernetes-like dataset, and runs the toolkit on it, printing what each step did and how
//! long it took. Today the steps are: write data, verify health with `etcd-health --cluster`.
//! The backup → destroy → restore → verify steps join as their tools land.

use anyhow::{bail, Context, Result};
use etcd_rescue_tests::{fill_k8s_like, Cluster, ClusterOpts, Version};
use std::time::Instant;

const HELP: &str = "usage: cargo xtask demo [--etcd 3.4.23|3.5.1] [--keys N]

Starts a local 3-member etcd cluster on 127.0.K.1-3, writes N Kubernetes-like keys (default
2000), checks the cluster with etcd-health --cluster, stops the cluster and cleans up.
Exit status: 0 when every step succeeded.";

struct Opts {
    version: Version,
    keys: usize,
}

fn parse() -> Result<Opts> {
    let mut o = Opts {
        version: Version::V35,
        keys: 2000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--etcd" => {
                o.version = match args.next().as_deref() {
                    Some("3.4.23") | Some("3.4") => Version::V34,
                    Some("3.5.1") | Some("3.5") => Version::V35,
                    other => bail!("--etcd takes 3.4.23 or 3.5.1, not {other:?}"),
                }
            }
            "--keys" => {
                o.keys = args
                    .next()
                    .context("--keys needs a number")?
                    .parse()
                    .context("--keys")?
            }
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
        Ok(()) => {}
        Err(e) => {
            eprintln!("demo: error: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn run() -> Result<()> {
    let o = parse()?;
    let t_all = Instant::now();

    let t = Instant::now();
    let mut cluster = Cluster::start(o.version, ClusterOpts::default()).await?;
    step_line(
        "start",
        t,
        &format!("etcd {} cluster of 3 at {}", o.version, cluster.endpoints()),
    );

    let t = Instant::now();
    let mut client = cluster.client_all().await?;
    let bytes = fill_k8s_like(&mut client, o.keys, 1024, 8192, 16).await?;
    step_line(
        "write",
        t,
        &format!("{} keys, {:.1} MB of values", o.keys, bytes as f64 / 1e6),
    );

    let t = Instant::now();
    let out = cluster
        .tool("etcd-health")
        .arg("--cluster")
        .output()
        .context("run etcd-health")?;
    let summary = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let envelope: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("etcd-health output")?;
    step_line("health", t, &summary);
    if !out.status.success() {
        bail!(
            "etcd-health exited with {}: {}",
            out.status,
            envelope["error"]["message"]
        );
    }

    let t = Instant::now();
    cluster.stop_all().await?;
    step_line("stop", t, "all members stopped");
    drop(cluster);

    let status = envelope["facts"]["health"]["status"]
        .as_str()
        .unwrap_or("?");
    println!(
        "demo: done in {:.1}s: etcd {} cluster {} was {status} with {} keys",
        t_all.elapsed().as_secs_f64(),
        o.version,
        envelope["facts"]["cluster_id"].as_str().unwrap_or("?"),
        o.keys
    );
    Ok(())
}
