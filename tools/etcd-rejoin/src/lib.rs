//! etcd-rejoin: add a member back to a running cluster (one at a time), print what it needs to
//! start, promote a learner once it caught up; remove a stale member.
//!
//! `add` is idempotent: a member with exactly these peer URLs already there is not added again,
//! and the same `initial_cluster` is printed (computed the way etcdctl does from the member
//! list: every member's `name=peer_url`, the new member under the requested name). Guards
//! (exit 7): a member still advertising a loopback peer URL (`--force-new-cluster` leaves
//! `http://localhost:2380`) while the new one is on another address; another added member that
//! has not started (strict reconfiguration would lose quorum). etcd refuses a member add for a
//! few seconds after a member starts ("unhealthy cluster"): retried with backoff until `--wait`.

use clap::{Parser, Subcommand};
use etcd_common::conn::{ConnArgs, ConnConfig, ProcessEnv};
use etcd_common::envelope::{keys, Facts};
use etcd_common::envfile::EnvFile;
use etcd_common::man::ManExtra;
use etcd_common::runner::CommonArgs;
use etcd_common::{diag, duration, ids, Ctx, Error, ErrorKind, Outcome, Result, Tool};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    duration::parse(s)
}

fn parse_id(s: &str) -> std::result::Result<u64, String> {
    ids::parse_hex(s).ok_or_else(|| format!("{s:?} is not a hex member ID"))
}

/// Add a member back to a running etcd cluster (printing what it needs to start), or remove a
/// stale one.
#[derive(Parser, Debug, Clone)]
#[command(name = "etcd-rejoin", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
    /// Every subcommand talks to the cluster: the connection flags, like `-q`, `-v` and
    /// `--pretty`, go before or after the subcommand.
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Cmd {
    /// Add a member (idempotent) and print its initial cluster, env lines and etcd flags
    Add(AddArgs),
    /// Remove a member by name or ID (refuses to remove the last voter)
    Remove(RemoveArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct AddArgs {
    /// The new member's name [default: --env-file's ETCD_NAME]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The new member's peer URLs, comma separated [default: --env-file's ETCD_INITIAL_ADVERTISE_PEER_URLS]
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    pub peer_urls: Option<Vec<String>>,
    /// The new member's settings file (/etc/etcd.env on the joining host): ETCD_NAME,
    /// ETCD_INITIAL_ADVERTISE_PEER_URLS (not used for endpoints)
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Add as a learner; once it has started and caught up, promote it (on a rerun, or with
    /// --wait-started)
    #[arg(long)]
    pub learner: bool,
    /// Wait until the member has started and serves (and, with --learner, is promoted)
    #[arg(long)]
    pub wait_started: bool,
    /// How long to retry refusals ("unhealthy cluster"), the promotion and --wait-started
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub wait: Duration,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RemoveArgs {
    /// The member's name
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "id",
        required_unless_present = "id"
    )]
    pub name: Option<String>,
    /// The member's ID (hex)
    #[arg(long, value_name = "HEX", value_parser = parse_id)]
    pub id: Option<u64>,
    /// How long to retry transient refusals
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub wait: Duration,
}

pub use etcd_common::members::Member;

fn label(m: &Member) -> String {
    if m.name.is_empty() {
        format!("{} ({})", ids::hex(m.id), m.peer_urls.join(","))
    } else {
        format!("{} ({})", m.name, ids::hex(m.id))
    }
}

fn host_of(u: &str) -> &str {
    let rest = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if let Some(end) = hostport.find(']') {
        return &hostport[..=end];
    }
    hostport
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(hostport)
}

/// etcd's loopback defaults: `localhost`, `127.0.0.1`, `::1` (what `--force-new-cluster`
/// leaves is `http://localhost:2380`).
pub fn is_loopback_default(u: &str) -> bool {
    matches!(host_of(u), "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

/// Check and normalize peer URLs: `http(s)://host:port`, no path, no duplicates.
pub fn normalize_urls(urls: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for u in urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
        let Some((scheme, rest)) = u.split_once("://") else {
            return Err(Error::usage(format!(
                "peer URL {u:?}: expected http://host:port or https://host:port"
            )));
        };
        let rest = rest.trim_end_matches('/');
        if (scheme != "http" && scheme != "https")
            || rest.contains('/')
            || !rest.contains(':')
            || rest.ends_with(':')
            || rest.starts_with(':')
        {
            return Err(Error::usage(format!(
                "peer URL {u:?}: expected http://host:port or https://host:port"
            )));
        }
        let v = format!("{scheme}://{rest}");
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(Error::usage("no peer URL given"));
    }
    Ok(out)
}

fn same_urls(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<&String> = a.iter().collect();
    let mut b: Vec<&String> = b.iter().collect();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// `--initial-cluster` for the new member, as etcdctl computes it from the member add
/// response: every member's `name=peer_url` in etcd's order, the new member under `new_name`.
pub fn initial_cluster(members: &[Member], new_id: u64, new_name: &str) -> String {
    let mut parts = Vec::new();
    for m in members {
        let n = if m.id == new_id {
            new_name
        } else {
            m.name.as_str()
        };
        for u in &m.peer_urls {
            parts.push(format!("{n}={u}"));
        }
    }
    parts.join(",")
}

/// What `add` will do, decided from the member list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddPlan {
    /// A member with these peer URLs is already there.
    Exists(Member),
    /// Add it.
    Add,
}

/// Decide, and apply the guards (exit 7).
pub fn plan_add(members: &[Member], name: &str, urls: &[String]) -> Result<AddPlan> {
    if let Some(m) = members.iter().find(|m| same_urls(&m.peer_urls, urls)) {
        if !m.name.is_empty() && m.name != name {
            return Err(Error::refused(format!(
                "member {} already has peer URLs {}: not adding {name:?}",
                label(m),
                urls.join(",")
            )));
        }
        return Ok(AddPlan::Exists(m.clone()));
    }
    if let Some(m) = members
        .iter()
        .find(|m| m.peer_urls.iter().any(|u| urls.contains(u)))
    {
        return Err(Error::refused(format!(
            "member {} has some of the peer URLs {} (its own: {}): remove or fix it first",
            label(m),
            urls.join(","),
            m.peer_urls.join(",")
        )));
    }
    if let Some(m) = members
        .iter()
        .find(|m| !m.name.is_empty() && m.name == name)
    {
        return Err(Error::refused(format!(
            "a member named {name:?} already exists with other peer URLs ({}): remove it first (etcd-rejoin remove --id {})",
            m.peer_urls.join(","),
            ids::hex(m.id)
        )));
    }
    for m in members {
        for u in m.peer_urls.iter().filter(|u| is_loopback_default(u)) {
            if urls.iter().any(|n| host_of(n) != host_of(u)) {
                return Err(Error::refused(format!(
                    "member {} advertises the peer URL {u}: a member on {} could not reach it, would fail to join and the cluster would lose quorum; fix it first (etcd-member-fix)",
                    label(m),
                    urls.join(",")
                )));
            }
        }
    }
    if let Some(m) = members.iter().find(|m| !m.started()) {
        return Err(Error::refused(format!(
            "member {} was added but has not started: start it (or remove it) before adding another",
            label(m)
        )));
    }
    Ok(AddPlan::Add)
}

/// Refusals worth retrying: etcd says the cluster is not ready yet.
pub fn retryable(e: &Error) -> bool {
    let m = e.message.to_lowercase();
    if m.contains("authentication failed") {
        // A wrong password stays wrong; "no quorum yet" for a login comes as a timeout.
        return false;
    }
    e.kind == ErrorKind::Unreachable
        || m.contains("unhealthy cluster")
        || m.contains("not enough started members")
        || m.contains("leader changed")
        || m.contains("no leader")
        || m.contains("timed out")
        || m.contains("too many learner")
        || m.contains("in sync with leader")
        || m.contains("not ready")
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(4)).min(2000))
}

async fn list(cfg: &ConnConfig, c: &mut etcd_client::Client) -> Result<(Vec<Member>, Option<u64>)> {
    let r = cfg
        .call(
            format!("member list from {}", cfg.endpoints.join(",")),
            c.member_list(),
        )
        .await?;
    Ok((
        r.members().iter().map(Member::from_etcd).collect(),
        r.header().map(|h| h.cluster_id()),
    ))
}

/// A learner's answer when etcd auth is on: no login for learners, and no status without one.
fn auth_refusal(msg: &str) -> bool {
    msg.contains("user name is empty")
        || msg.contains("not supported for learner")
        || msg.contains("authentication failed")
        || msg.contains("permission denied")
}

/// [`list`], retried while the cluster cannot answer yet (no quorum, leader election) and the
/// deadline allows.
async fn list_until(
    cfg: &ConnConfig,
    c: &mut etcd_client::Client,
    deadline: Instant,
) -> Result<(Vec<Member>, Option<u64>)> {
    let what = format!("member list from {}", cfg.endpoints.join(","));
    let (r, _) = retry(&what, deadline, || {
        let mut c = c.clone();
        async move { list(cfg, &mut c).await }
    })
    .await?;
    Ok(r)
}

/// Retry `f` while it fails with a retryable error and the deadline allows.
async fn retry<T, F, Fut>(what: &str, deadline: Instant, mut f: F) -> Result<(T, u32)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match f().await {
            Ok(v) => return Ok((v, attempt)),
            Err(e) if retryable(&e) && Instant::now() + backoff(attempt) < deadline => {
                if attempt == 1 {
                    diag::info(&format!("{what}: {}; retrying", e.message));
                } else {
                    diag::debug(&format!("{what} attempt {attempt}: {}", e.message));
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Is the member serving: its status answers with a leader, and a read goes through.
async fn serving(cfg: &ConnConfig, m: &Member) -> std::result::Result<(), String> {
    let Some(ep) = m.client_urls.first() else {
        return Err("no client URL published yet".into());
    };
    // A learner refuses every RPC but status and serializable reads, the login included
    // ("rpc not supported for learner"): it is asked for its status without credentials
    // (status needs none).
    let anon;
    let cfg = if m.is_learner {
        anon = ConnConfig {
            user: None,
            ..cfg.clone()
        };
        &anon
    } else {
        cfg
    };
    let mut c = cfg
        .connect(std::slice::from_ref(ep))
        .await
        .map_err(|e| e.message)?;
    match cfg.call("status", c.status()).await {
        Ok(s) if s.leader() != 0 && s.errors().is_empty() => {}
        Ok(s) if s.leader() == 0 => return Err(format!("{ep}: no leader yet")),
        Ok(s) => return Err(format!("{ep}: {}", s.errors().join("; "))),
        Err(e) => return Err(e.message),
    }
    if m.is_learner {
        // Learners refuse linearizable reads; status with a leader is what they can give.
        return Ok(());
    }
    cfg.call(format!("read from {ep}"), c.get("health", None))
        .await
        .map(|_| ())
        .map_err(|e| e.message)
}

fn member_facts(facts: &mut Facts, cfg: &ConnConfig, cluster_id: Option<u64>, members: &[Member]) {
    facts.insert(keys::ENDPOINTS.into(), cfg.endpoints_fact());
    if let Some(c) = cluster_id {
        facts.insert(keys::CLUSTER_ID.into(), json!(ids::hex(c)));
    }
    facts.insert(
        keys::MEMBERS.into(),
        Value::Array(members.iter().map(Member::json).collect()),
    );
}

async fn add(a: AddArgs, conn: ConnArgs, ctx: Ctx) -> Result<Outcome> {
    let t0 = Instant::now();
    let deadline = t0 + a.wait;
    let env = match &a.env_file {
        Some(p) => Some(EnvFile::load(p)?),
        None => None,
    };
    let name = a
        .name
        .clone()
        .or_else(|| {
            env.as_ref()
                .and_then(|e| e.get("ETCD_NAME"))
                .map(String::from)
        })
        .ok_or_else(|| Error::usage("no member name: give --name, or --env-file with ETCD_NAME"))?;
    let urls = match (
        &a.peer_urls,
        env.as_ref()
            .and_then(|e| e.get("ETCD_INITIAL_ADVERTISE_PEER_URLS")),
    ) {
        (Some(u), _) => normalize_urls(u)?,
        (None, Some(e)) => normalize_urls(&e.split(',').map(String::from).collect::<Vec<_>>())?,
        (None, None) => return Err(Error::usage(
            "no peer URL: give --peer-urls, or --env-file with ETCD_INITIAL_ADVERTISE_PEER_URLS",
        )),
    };
    // The env file is the joining member's: its client URL is not an endpoint of the cluster.
    let cfg = conn.resolve(&ctx.upstream, &ProcessEnv, None)?;
    // A password login is a raft request: while a joiner has not published itself, the
    // cluster has no quorum and the login times out. Retried until --wait, like refusals.
    let (mut client, _) = retry("connect", deadline, || cfg.connect_all()).await?;
    let (members, mut cluster_id) = list_until(&cfg, &mut client, deadline).await?;
    let mut warnings = Vec::new();
    let mut changed = false;
    let mut add_attempts = 0u32;
    let mut add_waited_ms = 0u64;
    let (new_id, mut members) = match plan_add(&members, &name, &urls)? {
        AddPlan::Exists(m) => {
            diag::info(&format!(
                "member {} already has peer URLs {}",
                label(&m),
                urls.join(",")
            ));
            (m.id, members)
        }
        AddPlan::Add => {
            let t_add = Instant::now();
            let opts = a
                .learner
                .then(|| etcd_client::MemberAddOptions::new().with_is_learner());
            let what = format!("member add {name} {}", urls.join(","));
            let (resp, attempts) = retry(&what, deadline, || {
                let mut c = client.clone();
                let (urls, opts, cfg, what) =
                    (urls.clone(), opts.clone(), cfg.clone(), what.clone());
                async move { cfg.call(what, c.member_add(urls, opts)).await }
            })
            .await?;
            add_attempts = attempts;
            add_waited_ms = t_add.elapsed().as_millis() as u64;
            changed = true;
            let id = resp
                .member()
                .map(|m| m.id())
                .ok_or_else(|| Error::internal("member add response without the member"))?;
            cluster_id = resp.header().map(|h| h.cluster_id()).or(cluster_id);
            (
                id,
                resp.member_list().iter().map(Member::from_etcd).collect(),
            )
        }
    };
    let ic = initial_cluster(&members, new_id, &name);

    // Wait until started (and promote a learner that has caught up).
    let mut started = members.iter().any(|m| m.id == new_id && m.started());
    let mut promoted = false;
    let mut promote_attempts = 0u32;
    let is_learner = members.iter().any(|m| m.id == new_id && m.is_learner);
    let mut learner_unchecked = false;
    if a.wait_started || (a.learner && is_learner && started) {
        loop {
            let (ms, _) = list_until(&cfg, &mut client, deadline).await?;
            members = ms;
            let me = members.iter().find(|m| m.id == new_id).cloned();
            let Some(me) = me else {
                return Err(Error::check_failed(format!(
                    "member {} disappeared from the member list",
                    ids::hex(new_id)
                )));
            };
            let why = if me.started() {
                match serving(&cfg, &me).await {
                    Ok(()) => {
                        started = true;
                        break;
                    }
                    // With etcd auth on, a learner answers nothing a client can use (3.5.x
                    // asks for a login even for status, and refuses the login): that it has
                    // published itself is all it can show; the promotion below is retried
                    // until the leader finds it in sync, and it is checked as a voter after.
                    Err(e) if me.is_learner && auth_refusal(&e) => {
                        started = true;
                        learner_unchecked = true;
                        break;
                    }
                    Err(e) => e,
                }
            } else {
                "not started (it has not published its name yet)".to_string()
            };
            diag::debug(&format!("waiting for {name}: {why}"));
            if Instant::now() >= deadline {
                return Err(Error::check_failed(format!(
                    "member {name} ({}) has not started and served within {}: {why}",
                    ids::hex(new_id),
                    duration::display(a.wait)
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    if started && members.iter().any(|m| m.id == new_id && m.is_learner) {
        if a.learner {
            let (_, attempts) = retry(
                &format!("member promote {}", ids::hex(new_id)),
                deadline,
                || {
                    let mut c = client.clone();
                    let cfg = cfg.clone();
                    async move {
                        cfg.call(
                            format!("member promote {}", ids::hex(new_id)),
                            c.member_promote(new_id),
                        )
                        .await
                    }
                },
            )
            .await?;
            promote_attempts = attempts;
            promoted = true;
            changed = true;
            let (ms, _) = list_until(&cfg, &mut client, deadline).await?;
            members = ms;
            if learner_unchecked {
                // Now a voter: it takes the login, and must serve a read.
                let me = members.iter().find(|m| m.id == new_id).cloned();
                loop {
                    let why = match &me {
                        Some(m) => match serving(&cfg, m).await {
                            Ok(()) => break,
                            Err(e) => e,
                        },
                        None => "not in the member list".to_string(),
                    };
                    if Instant::now() >= deadline {
                        return Err(Error::check_failed(format!(
                            "member {name} ({}) was promoted but has not served within {}: {why}",
                            ids::hex(new_id),
                            duration::display(a.wait)
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        } else {
            warnings.push(format!(
                "member {name} is a learner: rerun with --learner to promote it"
            ));
        }
    } else if a.learner && !started {
        warnings.push(format!(
            "learner {name} not started yet: start it, then rerun with --wait-started to promote it"
        ));
    }

    let mut facts = Facts::new();
    member_facts(&mut facts, &cfg, cluster_id, &members);
    let env_pairs = [
        ("ETCD_NAME", name.clone()),
        ("ETCD_INITIAL_CLUSTER", ic.clone()),
        ("ETCD_INITIAL_CLUSTER_STATE", "existing".to_string()),
        ("ETCD_INITIAL_ADVERTISE_PEER_URLS", urls.join(",")),
    ];
    let env_lines: Vec<String> = env_pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    let flags = vec![
        format!("--name={name}"),
        format!("--initial-cluster={ic}"),
        "--initial-cluster-state=existing".to_string(),
        format!("--initial-advertise-peer-urls={}", urls.join(",")),
    ];
    facts.insert(keys::MEMBER_ID.into(), json!(ids::hex(new_id)));
    facts.insert(
        "rejoin".into(),
        json!({
            "member_id": ids::hex(new_id),
            "name": name,
            "peer_urls": urls,
            "learner": a.learner,
            "initial_cluster": ic,
            "initial_cluster_state": "existing",
            "env": env_pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "env_lines": env_lines,
            "etcd_flags": flags,
        }),
    );
    let data = json!({
        "added": changed && add_attempts > 0,
        "add_attempts": add_attempts,
        "add_waited_ms": add_waited_ms,
        "started": started,
        "promoted": promoted,
        "promote_attempts": promote_attempts,
        "took_ms": t0.elapsed().as_millis() as u64,
    });
    let mut summary = if add_attempts > 0 {
        format!(
            "added {name} ({}){} after {} attempt(s) in {} ms; start it with --initial-cluster={ic} --initial-cluster-state=existing",
            ids::hex(new_id),
            if a.learner { " as a learner" } else { "" },
            add_attempts,
            add_waited_ms
        )
    } else {
        format!(
            "{name} ({}) is already a member; --initial-cluster={ic}",
            ids::hex(new_id)
        )
    };
    if promoted {
        summary.push_str("; promoted");
    } else if a.wait_started && started {
        summary.push_str("; started and serving");
    }
    Ok(Outcome {
        changed,
        facts,
        data,
        warnings,
        summary,
        failure: None,
    })
}

async fn remove(a: RemoveArgs, conn: ConnArgs, ctx: Ctx) -> Result<Outcome> {
    let t0 = Instant::now();
    let deadline = t0 + a.wait;
    let cfg = conn.resolve(&ctx.upstream, &ProcessEnv, None)?;
    let (mut client, _) = retry("connect", deadline, || cfg.connect_all()).await?;
    let (members, cluster_id) = list_until(&cfg, &mut client, deadline).await?;
    let found: Vec<&Member> = members
        .iter()
        .filter(|m| match (&a.id, &a.name) {
            (Some(id), _) => m.id == *id,
            (None, Some(n)) => &m.name == n,
            _ => false,
        })
        .collect();
    let wanted = a.id.map(ids::hex).or(a.name.clone()).unwrap_or_default();
    let target = match found.as_slice() {
        [] => None,
        [one] => Some((*one).clone()),
        _ => {
            return Err(Error::usage(format!(
                "several members are named {wanted:?}: give --id"
            )))
        }
    };
    let mut members_after = members.clone();
    if let Some(t) = &target {
        let voters = members.iter().filter(|m| !m.is_learner).count();
        if !t.is_learner && voters <= 1 {
            return Err(Error::refused(format!(
                "member {} is the last voter: removing it would destroy the cluster",
                label(t)
            )));
        }
        let id = t.id;
        retry(&format!("member remove {}", ids::hex(id)), deadline, || {
            let mut c = client.clone();
            let cfg = cfg.clone();
            async move {
                cfg.call(
                    format!("member remove {}", ids::hex(id)),
                    c.member_remove(id),
                )
                .await
            }
        })
        .await?;
        members_after.retain(|m| m.id != id);
    }
    let mut facts = Facts::new();
    member_facts(&mut facts, &cfg, cluster_id, &members_after);
    facts.insert(
        "rejoin".into(),
        json!({"removed": wanted, "member_id": target.as_ref().map(|t| ids::hex(t.id))}),
    );
    let summary = match &target {
        Some(t) => format!("removed member {}", label(t)),
        None => format!("no member {wanted}: nothing to remove"),
    };
    if target.is_none() {
        // The ID of an already removed member is not known on a rerun by name.
        if let Some(r) = facts.get_mut("rejoin").and_then(Value::as_object_mut) {
            r.insert("member_id".into(), json!(a.id.map(ids::hex)));
        }
    }
    Ok(Outcome {
        changed: target.is_some(),
        facts,
        data: json!({"took_ms": t0.elapsed().as_millis() as u64}),
        warnings: Vec::new(),
        summary,
        failure: None,
    })
}

impl Tool for Args {
    const NAME: &'static str = "etcd-rejoin";

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    async fn run(self, ctx: Ctx) -> Result<Outcome> {
        match self.cmd {
            Cmd::Add(a) => add(a, self.conn, ctx).await,
            Cmd::Remove(r) => remove(r, self.conn, ctx).await,
        }
    }
}

/// Man page sections beyond clap's.
pub fn man() -> ManExtra {
    ManExtra {
        connects: true,
        input: "An upstream envelope may give the endpoints in facts.endpoints. add --env-file is the joining member's settings file \
(ETCD_NAME, ETCD_INITIAL_ADVERTISE_PEER_URLS); endpoints come from --endpoints, facts.endpoints or ETCDCTL_ENDPOINTS, never from it.",
        output: "add: facts.rejoin {member_id, name, peer_urls, learner, initial_cluster (as etcdctl computes it from the member add response), \
initial_cluster_state (existing), env {ETCD_NAME, ETCD_INITIAL_CLUSTER, ETCD_INITIAL_CLUSTER_STATE, ETCD_INITIAL_ADVERTISE_PEER_URLS}, env_lines, etcd_flags}, \
facts.member_id, facts.cluster_id, facts.members, facts.endpoints; data {added, add_attempts, add_waited_ms (time spent retrying \"unhealthy cluster\" refusals), \
started, promoted, promote_attempts, took_ms}. A rerun with the same peer URLs adds nothing (changed:false) and prints the same facts; \
with --learner it promotes a learner that has started (changed:true). remove: facts.rejoin {removed, member_id}; an absent member is changed:false. \
Exit 7 (refused): a member advertises a loopback peer URL (localhost, 127.0.0.1, ::1) while the new one is on another address; another added member \
has not started; a member with the same name or some of the peer URLs exists; removing the last voter. Exit 5: --wait-started timed out.",
        environment: &[],
        examples: r#"Add the second host, then start etcd there with the printed settings:
  etcd-rejoin add --endpoints https://10.0.0.1:2379 --name etcd2 --peer-urls https://10.0.0.2:2380 \
    | jq -r '.facts.rejoin.env_lines[]' >> /etc/etcd.env

As a learner; after starting it, rerun to wait for it and promote it:
  etcd-rejoin add --name etcd3 --peer-urls https://10.0.0.3:2380 --learner
  etcd-rejoin add --name etcd3 --peer-urls https://10.0.0.3:2380 --learner --wait-started

Remove a stale member:
  etcd-rejoin remove --id 8e9e05c52164694d

As an Ansible task:
  - name: add etcd2 back
    ansible.builtin.command: etcd-rejoin add --name etcd2 --peer-urls https://10.0.0.2:2380
    register: rejoin
    changed_when: (rejoin.stdout | from_json).changed"#,
        see_also: &["etcd-member-fix", "etcd-purge", "etcd-health"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn m(id: u64, name: &str, peer: &str) -> Member {
        Member {
            id,
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: if name.is_empty() {
                vec![]
            } else {
                vec![format!("http://{name}:2379")]
            },
            is_learner: false,
        }
    }

    #[test]
    fn args_are_well_formed() {
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "etcd-rejoin",
            "add",
            "--name",
            "n2",
            "--peer-urls",
            "http://10.0.0.2:2380",
            "--learner",
            "--wait",
            "30s",
        ])
        .unwrap();
        let Cmd::Add(add) = a.cmd else { panic!("add") };
        assert!(add.learner && !add.wait_started);
        assert_eq!(add.wait, Duration::from_secs(30));
        let r =
            Args::try_parse_from(["etcd-rejoin", "remove", "--id", "8e9e05c52164694d"]).unwrap();
        let Cmd::Remove(rm) = r.cmd else {
            panic!("remove")
        };
        assert_eq!(rm.id, Some(0x8e9e05c52164694d));
        assert!(Args::try_parse_from(["etcd-rejoin", "remove"]).is_err());
        assert!(Args::try_parse_from(["etcd-rejoin", "remove", "--id", "zz"]).is_err());
        assert!(Args::try_parse_from(["etcd-rejoin"]).is_err());
    }

    #[test]
    fn initial_cluster_like_etcdctl() {
        let ms = vec![
            m(1, "a", "http://10.0.0.1:2380"),
            m(2, "", "http://10.0.0.2:2380"),
            Member {
                peer_urls: vec!["http://10.0.0.3:2380".into(), "http://10.1.0.3:2380".into()],
                ..m(3, "c", "")
            },
        ];
        assert_eq!(
            initial_cluster(&ms, 2, "b"),
            "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380,c=http://10.1.0.3:2380"
        );
    }

    #[test]
    fn guards() {
        let urls = vec!["http://10.0.0.2:2380".to_string()];
        // After --force-new-cluster, before member-fix.
        let e = plan_add(&[m(1, "a", "http://localhost:2380")], "b", &urls).unwrap_err();
        assert_eq!(e.exit_code().code(), 7);
        assert!(e.message.contains("localhost"), "{}", e.message);
        // A joiner on the same loopback host can reach it.
        assert_eq!(
            plan_add(
                &[m(1, "a", "http://localhost:2380")],
                "b",
                &["http://localhost:12380".into()]
            )
            .unwrap(),
            AddPlan::Add
        );
        let fixed = vec![m(1, "a", "http://10.0.0.1:2380")];
        assert_eq!(plan_add(&fixed, "b", &urls).unwrap(), AddPlan::Add);
        // Another added member not started yet.
        let pending = vec![
            m(1, "a", "http://10.0.0.1:2380"),
            m(2, "", "http://10.0.0.2:2380"),
        ];
        let e = plan_add(&pending, "c", &["http://10.0.0.3:2380".into()]).unwrap_err();
        assert_eq!(e.exit_code().code(), 7);
        assert!(e.message.contains("has not started"), "{}", e.message);
        // The same member again: idempotent.
        assert!(matches!(plan_add(&pending, "b", &urls).unwrap(), AddPlan::Exists(x) if x.id == 2));
        // Same URLs, started under another name; same name with other URLs; overlapping URLs.
        let two = vec![
            m(1, "a", "http://10.0.0.1:2380"),
            m(2, "b", "http://10.0.0.2:2380"),
        ];
        assert_eq!(
            plan_add(&two, "z", &urls).unwrap_err().exit_code().code(),
            7
        );
        assert_eq!(
            plan_add(&two, "b", &["http://10.0.0.9:2380".into()])
                .unwrap_err()
                .exit_code()
                .code(),
            7
        );
        assert_eq!(
            plan_add(
                &two,
                "b",
                &["http://10.0.0.2:2380".into(), "http://10.0.0.9:2380".into()]
            )
            .unwrap_err()
            .exit_code()
            .code(),
            7
        );
    }

    #[test]
    fn retry_classes() {
        assert!(retryable(&Error::check_failed(
            "member add: etcdserver: unhealthy cluster"
        )));
        assert!(retryable(&Error::unreachable(
            "member add: deadline exceeded"
        )));
        assert!(retryable(&Error::check_failed(
            "etcdserver: can only promote a learner member which is in sync with leader"
        )));
        assert!(!retryable(&Error::check_failed(
            "etcdserver: Peer URLs already exists"
        )));
        assert!(!retryable(&Error::usage("bad")));
        assert_eq!(backoff(1), Duration::from_millis(400));
        assert_eq!(backoff(9), Duration::from_millis(2000));
    }

    #[test]
    fn urls() {
        assert!(is_loopback_default("http://localhost:2380"));
        assert!(is_loopback_default("http://127.0.0.1:2380"));
        assert!(is_loopback_default("https://[::1]:2380"));
        assert!(!is_loopback_default("http://127.0.3.1:2380"));
        assert!(normalize_urls(&["10.0.0.1:2380".into()]).is_err());
        assert_eq!(
            normalize_urls(&["http://a:1/".into()]).unwrap(),
            ["http://a:1"]
        );
    }
}
