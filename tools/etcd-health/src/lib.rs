//! etcd-health: verify an etcd cluster, with retries.
//!
//! Per endpoint: reachable, etcd version, db size, leader, raft term and index, learner or not,
//! a linearizable read (what `etcdctl endpoint health` does), time taken. For the cluster:
//! quorum held, exactly one leader, every member started and healthy, raft index spread, no
//! alarms. The verdict is computed by a pure function ([`verdict`]) from what was observed.

use clap::Parser;
use etcd_common::conn::{etcd_error, ConnArgs, ConnConfig, ProcessEnv};
use etcd_common::envelope::{keys, Facts};
use etcd_common::envfile::EnvFile;
use etcd_common::man::ManExtra;
use etcd_common::runner::CommonArgs;
use etcd_common::{diag, duration, ids, Ctx, Error, Outcome, Result, Tool};
use serde::Serialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    duration::parse(s)
}

/// Verify an etcd cluster: every member reachable and serving linearizable reads, exactly one
/// leader, quorum held, no alarms. Exit 0 healthy, 5 degraded or unhealthy, 4 unreachable.
#[derive(Parser, Debug, Clone)]
#[command(name = "etcd-health", version, about, long_about = None)]
pub struct Args {
    /// Check every member: discover their client URLs from the member list
    #[arg(long)]
    pub cluster: bool,
    /// Check again up to N more times while the verdict is not healthy
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// Pause between checks
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub retry_interval: Duration,
    /// Poll (every --retry-interval) until healthy or until this much time has passed
    #[arg(long, value_name = "TIMEOUT", value_parser = parse_duration)]
    pub wait: Option<Duration>,
    /// etcd's settings file (/etc/etcd.env): ETCD_ADVERTISE_CLIENT_URLS gives the endpoints
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// A member as the member list gives it.
pub use etcd_common::members::Member as MemberInfo;

fn label(m: &MemberInfo) -> String {
    if m.name.is_empty() {
        ids::hex(m.id)
    } else {
        m.name.clone()
    }
}

/// What one endpoint answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointReport {
    pub endpoint: String,
    pub reachable: bool,
    /// The linearizable read succeeded (the member serves with quorum).
    pub healthy: bool,
    pub member_id: Option<u64>,
    pub cluster_id: Option<u64>,
    pub version: Option<String>,
    pub db_size_bytes: Option<i64>,
    pub db_size_in_use_bytes: Option<i64>,
    pub leader: Option<u64>,
    pub raft_term: Option<u64>,
    pub raft_index: Option<u64>,
    pub raft_applied_index: Option<u64>,
    pub is_learner: Option<bool>,
    pub errors: Vec<String>,
    pub took_ms: u64,
    pub error: Option<String>,
}

/// An active alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmInfo {
    pub member_id: u64,
    pub alarm: String,
}

/// The cluster verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub quorum: bool,
    pub leader: Option<u64>,
    pub leaders_seen: Vec<u64>,
    pub members_total: usize,
    pub members_healthy: usize,
    pub raft_index_spread: Option<u64>,
    /// Plain-words reasons the verdict is not healthy, most important first.
    pub problems: Vec<String>,
}

/// Decide the verdict from what was observed. `members` is the member list (None when no
/// endpoint could give one); in `--cluster` mode every member must have been checked.
pub fn verdict(
    members: Option<&[MemberInfo]>,
    reports: &[EndpointReport],
    alarms: &[AlarmInfo],
) -> Verdict {
    verdict_in(members, members.unwrap_or(&[]), reports, alarms)
}

/// [`verdict`] where the members that must all be healthy (`checked`: the member list with
/// `--cluster`, None with `--endpoints`, where the endpoints given are what is judged) and
/// the members known by name (`known`: the member list whenever an endpoint gave one) differ.
/// Members are named by name whenever it is known, in both modes.
pub fn verdict_in(
    members: Option<&[MemberInfo]>,
    known: &[MemberInfo],
    reports: &[EndpointReport],
    alarms: &[AlarmInfo],
) -> Verdict {
    let mut problems = Vec::new();
    let reachable: Vec<&EndpointReport> = reports.iter().filter(|r| r.reachable).collect();
    let mut leaders_seen: Vec<u64> = reachable
        .iter()
        .filter_map(|r| r.leader)
        .filter(|l| *l != 0)
        .collect();
    leaders_seen.sort_unstable();
    leaders_seen.dedup();
    let quorum = reports.iter().any(|r| r.healthy);
    let spread = {
        let idx: Vec<u64> = reachable.iter().filter_map(|r| r.raft_index).collect();
        match (idx.iter().min(), idx.iter().max()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        }
    };
    let name_of = |id: u64| -> String {
        known
            .iter()
            .chain(members.unwrap_or(&[]))
            .find(|m| m.id == id)
            .map(label)
            .unwrap_or_else(|| ids::hex(id))
    };

    // Which members are healthy: by member ID from status, else by client URL.
    let healthy_ids: Vec<u64> = reports
        .iter()
        .filter(|r| r.healthy)
        .filter_map(|r| r.member_id)
        .collect();
    let (members_total, members_healthy) = match members {
        Some(ms) => (
            ms.len(),
            ms.iter().filter(|m| healthy_ids.contains(&m.id)).count(),
        ),
        None => (reports.len(), reports.iter().filter(|r| r.healthy).count()),
    };

    if reachable.is_empty() {
        let why = reports
            .first()
            .map(|r| {
                format!(
                    "{}: {}",
                    r.endpoint,
                    r.error.as_deref().unwrap_or("no answer")
                )
            })
            .unwrap_or_else(|| "no endpoint given".into());
        problems.push(format!("no endpoint reachable: {why}"));
        return Verdict {
            status: Status::Unreachable,
            quorum: false,
            leader: None,
            leaders_seen,
            members_total,
            members_healthy: 0,
            raft_index_spread: None,
            problems,
        };
    }

    let mut fatal = false;
    if !quorum {
        fatal = true;
        problems.push("quorum lost: no member serves a linearizable read".into());
    }
    match leaders_seen.len() {
        0 => {
            fatal = true;
            problems.push("no leader".into());
        }
        1 => {}
        _ => {
            fatal = true;
            let names: Vec<String> = leaders_seen.iter().map(|l| name_of(*l)).collect();
            problems.push(format!(
                "members disagree on the leader: {}",
                names.join(", ")
            ));
        }
    }
    for a in alarms {
        fatal = true;
        problems.push(format!(
            "alarm {} on member {}",
            a.alarm,
            name_of(a.member_id)
        ));
    }
    let mut cluster_ids: Vec<u64> = reachable.iter().filter_map(|r| r.cluster_id).collect();
    cluster_ids.sort_unstable();
    cluster_ids.dedup();
    if cluster_ids.len() > 1 {
        fatal = true;
        let l: Vec<String> = cluster_ids.iter().map(|c| ids::hex(*c)).collect();
        problems.push(format!(
            "endpoints belong to different clusters: {}",
            l.join(", ")
        ));
    }
    for r in reports.iter().filter(|r| !r.healthy) {
        let who = r
            .member_id
            .map(name_of)
            .map(|n| format!("{n} ({})", r.endpoint))
            .unwrap_or_else(|| r.endpoint.clone());
        let why = r.error.clone().unwrap_or_else(|| "not healthy".into());
        problems.push(format!("{who}: {why}"));
    }
    if let Some(ms) = members {
        for m in ms {
            if !m.started() {
                problems.push(format!(
                    "member {} ({}) was added but has not started",
                    ids::hex(m.id),
                    m.peer_urls.join(",")
                ));
            } else if m.is_learner {
                problems.push(format!(
                    "member {} is a learner, not yet promoted",
                    label(m)
                ));
            }
        }
    }
    for r in &reachable {
        for e in &r.errors {
            problems.push(format!("{}: {e}", r.endpoint));
        }
    }
    let all_members_checked_healthy = match members {
        Some(ms) => ms
            .iter()
            .all(|m| healthy_ids.contains(&m.id) && m.started() && !m.is_learner),
        None => true,
    };
    let status = if fatal {
        Status::Unhealthy
    } else if problems.is_empty()
        && all_members_checked_healthy
        && reports.iter().all(|r| r.healthy)
    {
        Status::Healthy
    } else {
        Status::Degraded
    };
    Verdict {
        status,
        quorum,
        leader: (leaders_seen.len() == 1).then(|| leaders_seen[0]),
        leaders_seen,
        members_total,
        members_healthy,
        raft_index_spread: spread,
        problems,
    }
}

async fn check_endpoint(cfg: &ConnConfig, ep: String) -> EndpointReport {
    let start = Instant::now();
    let mut r = EndpointReport {
        endpoint: ep.clone(),
        ..Default::default()
    };
    let mut client = match cfg.connect(std::slice::from_ref(&ep)).await {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(e.message);
            r.took_ms = start.elapsed().as_millis() as u64;
            return r;
        }
    };
    match cfg.call(format!("status of {ep}"), client.status()).await {
        Ok(s) => {
            r.reachable = true;
            r.version = Some(s.version().to_string());
            r.db_size_bytes = Some(s.db_size());
            r.db_size_in_use_bytes = Some(s.raft_used_db_size());
            r.leader = Some(s.leader());
            r.raft_term = Some(s.raft_term());
            r.raft_index = Some(s.raft_index());
            r.raft_applied_index = Some(s.raft_applied_index());
            r.is_learner = Some(s.is_learner());
            r.errors = s.errors().to_vec();
            if let Some(h) = s.header() {
                r.member_id = Some(h.member_id());
                r.cluster_id = Some(h.cluster_id());
            }
        }
        Err(e) => {
            r.error = Some(strip_prefix(&e.message, &ep));
            r.took_ms = start.elapsed().as_millis() as u64;
            return r;
        }
    }
    // What `etcdctl endpoint health` does: one linearizable read. Permission denied still
    // proves the member answered through raft.
    match tokio::time::timeout(cfg.command_timeout, client.get("health", None)).await {
        Ok(Ok(_)) => r.healthy = true,
        Ok(Err(etcd_client::Error::GRpcStatus(s))) if s.code() == tonic::Code::PermissionDenied => {
            r.healthy = true
        }
        Ok(Err(e)) => {
            r.error = Some(strip_prefix(
                &etcd_error(e, "linearizable read").message,
                &ep,
            ))
        }
        Err(_) => {
            r.error = Some(format!(
                "linearizable read: deadline exceeded after {}",
                duration::display(cfg.command_timeout)
            ))
        }
    }
    r.took_ms = start.elapsed().as_millis() as u64;
    r
}

fn strip_prefix(msg: &str, ep: &str) -> String {
    msg.strip_prefix(&format!("status of {ep}: "))
        .unwrap_or(msg)
        .to_string()
}

/// The member list and alarms, from the first endpoint that answers.
async fn cluster_view(
    cfg: &ConnConfig,
) -> (Option<Vec<MemberInfo>>, Vec<AlarmInfo>, Option<String>) {
    let mut last_err = None;
    for ep in &cfg.endpoints {
        let mut c = match cfg.connect(std::slice::from_ref(ep)).await {
            Ok(c) => c,
            Err(e) => {
                last_err = Some(e.message);
                continue;
            }
        };
        let members = match cfg
            .call(format!("member list from {ep}"), c.member_list())
            .await
        {
            Ok(l) => l
                .members()
                .iter()
                .map(MemberInfo::from_etcd)
                .collect::<Vec<_>>(),
            Err(e) => {
                last_err = Some(e.message);
                continue;
            }
        };
        let alarms = match cfg
            .call(
                format!("alarm list from {ep}"),
                c.alarm(
                    etcd_client::AlarmAction::Get,
                    etcd_client::AlarmType::None,
                    None,
                ),
            )
            .await
        {
            Ok(a) => a
                .alarms()
                .iter()
                .map(|a| AlarmInfo {
                    member_id: a.member_id(),
                    alarm: alarm_name(a.alarm()),
                })
                .collect(),
            Err(e) => {
                diag::debug(&e.message);
                Vec::new()
            }
        };
        return (Some(members), alarms, None);
    }
    (None, Vec::new(), last_err)
}

fn alarm_name(a: etcd_client::AlarmType) -> String {
    match a {
        etcd_client::AlarmType::None => "NONE".into(),
        etcd_client::AlarmType::Nospace => "NOSPACE".into(),
        etcd_client::AlarmType::Corrupt => "CORRUPT".into(),
    }
}

/// `host:port` of an endpoint or URL (scheme and path dropped), for matching an endpoint
/// given as `10.0.0.1:2379` to a member's client URL `https://10.0.0.1:2379`.
fn host_port(u: &str) -> &str {
    let rest = u.split_once("://").map_or(u, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// Attribute the endpoints that did not answer (no member ID from their status) to members,
/// by client URL, so that a member that is down is named (by name) and counted.
pub fn attribute(reports: &mut [EndpointReport], members: &[MemberInfo]) {
    for r in reports.iter_mut().filter(|r| r.member_id.is_none()) {
        let ep = host_port(&r.endpoint);
        if let Some(m) = members
            .iter()
            .find(|m| m.client_urls.iter().any(|u| host_port(u) == ep))
        {
            r.member_id = Some(m.id);
        }
    }
}

struct Observation {
    members: Option<Vec<MemberInfo>>,
    alarms: Vec<AlarmInfo>,
    reports: Vec<EndpointReport>,
    verdict: Verdict,
}

async fn observe(cfg: &ConnConfig, cluster: bool) -> Observation {
    let (members, alarms, view_err) = cluster_view(cfg).await;
    let endpoints: Vec<String> = match (&members, cluster) {
        (Some(ms), true) => {
            let mut eps: Vec<String> = ms
                .iter()
                .flat_map(|m| m.client_urls.iter().take(1).cloned())
                .collect();
            eps.dedup();
            eps
        }
        _ => cfg.endpoints.clone(),
    };
    let mut set = tokio::task::JoinSet::new();
    for (i, ep) in endpoints.into_iter().enumerate() {
        let cfg = cfg.clone();
        set.spawn(async move { (i, check_endpoint(&cfg, ep).await) });
    }
    let mut reports: Vec<(usize, EndpointReport)> = Vec::new();
    while let Some(res) = set.join_next().await {
        match res {
            Ok(r) => reports.push(r),
            Err(e) => diag::debug(&format!("endpoint check task failed: {e}")),
        }
    }
    reports.sort_by_key(|(i, _)| *i);
    let mut reports: Vec<EndpointReport> = reports.into_iter().map(|(_, r)| r).collect();
    if reports.is_empty() {
        reports.push(EndpointReport {
            endpoint: cfg.endpoints.join(","),
            error: view_err.or(Some("no endpoint to check".into())),
            ..Default::default()
        });
    }
    if let Some(ms) = &members {
        attribute(&mut reports, ms);
    }
    let members_for_verdict = if cluster { members.as_deref() } else { None };
    let verdict = verdict_in(
        members_for_verdict,
        members.as_deref().unwrap_or(&[]),
        &reports,
        &alarms,
    );
    Observation {
        members,
        alarms,
        reports,
        verdict,
    }
}

fn report_json(r: &EndpointReport, members: Option<&[MemberInfo]>, alarms: &[AlarmInfo]) -> Value {
    let own_alarms: Vec<&str> = alarms
        .iter()
        .filter(|a| Some(a.member_id) == r.member_id)
        .map(|a| a.alarm.as_str())
        .collect();
    let name = r.member_id.and_then(|id| {
        members
            .and_then(|ms| ms.iter().find(|m| m.id == id))
            .map(|m| m.name.clone())
    });
    json!({
        "endpoint": r.endpoint,
        "member_id": r.member_id.map(ids::hex),
        "name": name,
        "reachable": r.reachable,
        "healthy": r.healthy,
        "cluster_id": r.cluster_id.map(ids::hex),
        "etcd_version": r.version,
        "db_size_bytes": r.db_size_bytes,
        "db_size_in_use_bytes": r.db_size_in_use_bytes,
        "leader": r.leader.filter(|l| *l != 0).map(ids::hex),
        "is_leader": r.leader.is_some() && r.leader == r.member_id,
        "raft_term": r.raft_term,
        "raft_index": r.raft_index,
        "raft_applied_index": r.raft_applied_index,
        "is_learner": r.is_learner,
        "errors": r.errors,
        "alarms": own_alarms,
        "took_ms": r.took_ms,
        "error": r.error,
    })
}

fn summary_line(v: &Verdict, members: Option<&[MemberInfo]>) -> String {
    let status = match v.status {
        Status::Healthy => "healthy",
        Status::Degraded => "degraded",
        Status::Unhealthy => "unhealthy",
        Status::Unreachable => "unreachable",
    };
    let leader = v
        .leader
        .map(|l| {
            members
                .and_then(|ms| ms.iter().find(|m| m.id == l))
                .map(label)
                .unwrap_or_else(|| ids::hex(l))
        })
        .unwrap_or_else(|| "none".into());
    let mut s = format!(
        "{status}: {}/{} members healthy, leader {leader}, quorum {}",
        v.members_healthy,
        v.members_total,
        if v.quorum { "held" } else { "lost" }
    );
    if let Some(p) = v.problems.first() {
        s.push_str("; ");
        s.push_str(p);
        if v.problems.len() > 1 {
            s.push_str(&format!(" (+{} more)", v.problems.len() - 1));
        }
    }
    s
}

impl Tool for Args {
    const NAME: &'static str = "etcd-health";

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    async fn run(self, ctx: Ctx) -> Result<Outcome> {
        let env_file = match &self.env_file {
            Some(p) => Some(EnvFile::load(p)?),
            None => None,
        };
        let cfg = self
            .conn
            .resolve(&ctx.upstream, &ProcessEnv, env_file.as_ref())?;
        let started = Instant::now();
        let deadline = self.wait.map(|w| started + w);
        let mut attempts = 0u32;
        let obs = loop {
            attempts += 1;
            let obs = observe(&cfg, self.cluster).await;
            if obs.verdict.status == Status::Healthy {
                break obs;
            }
            let more = match deadline {
                Some(d) => Instant::now() + self.retry_interval < d,
                None => attempts <= self.retries,
            };
            if !more {
                break obs;
            }
            diag::info(&format!(
                "attempt {attempts}: {}",
                summary_line(&obs.verdict, obs.members.as_deref())
            ));
            tokio::time::sleep(self.retry_interval).await;
        };
        let waited_ms = started.elapsed().as_millis() as u64;
        let v = &obs.verdict;
        let members = obs.members.as_deref();

        let mut facts = Facts::new();
        facts.insert(keys::ENDPOINTS.into(), cfg.endpoints_fact());
        let first_ok = obs.reports.iter().find(|r| r.reachable);
        if let Some(c) = first_ok.and_then(|r| r.cluster_id) {
            facts.insert(keys::CLUSTER_ID.into(), json!(ids::hex(c)));
        }
        if let Some(ver) = obs
            .reports
            .iter()
            .find(|r| r.reachable && r.leader.is_some() && r.leader == r.member_id)
            .or(first_ok)
            .and_then(|r| r.version.clone())
        {
            facts.insert(keys::ETCD_VERSION.into(), json!(ver));
        }
        if let Some(ms) = members {
            facts.insert(
                keys::MEMBERS.into(),
                Value::Array(ms.iter().map(MemberInfo::json).collect()),
            );
        }
        let health = json!({
            "status": v.status,
            "healthy": v.status == Status::Healthy,
            "degraded": v.status == Status::Degraded,
            "quorum": v.quorum,
            "leader": v.leader.map(ids::hex),
            "members_total": v.members_total,
            "members_healthy": v.members_healthy,
            "alarms": obs.alarms.iter().map(|a| json!({"member_id": ids::hex(a.member_id), "alarm": a.alarm})).collect::<Vec<_>>(),
        });
        facts.insert("health".into(), health.clone());

        let mut data = health;
        if let Some(o) = data.as_object_mut() {
            o.insert(
                "leaders_seen".into(),
                json!(v
                    .leaders_seen
                    .iter()
                    .map(|l| ids::hex(*l))
                    .collect::<Vec<_>>()),
            );
            o.insert("raft_index_spread".into(), json!(v.raft_index_spread));
            o.insert("problems".into(), json!(v.problems));
            o.insert(
                "endpoints".into(),
                Value::Array(
                    obs.reports
                        .iter()
                        .map(|r| report_json(r, members, &obs.alarms))
                        .collect(),
                ),
            );
            o.insert("attempts".into(), json!(attempts));
            o.insert("waited_ms".into(), json!(waited_ms));
        }
        let summary = summary_line(v, members);
        let failure = match v.status {
            Status::Healthy => None,
            Status::Unreachable => Some(Error::unreachable(summary.clone())),
            Status::Degraded | Status::Unhealthy => Some(Error::check_failed(summary.clone())),
        };
        Ok(Outcome {
            changed: false,
            facts,
            data,
            warnings: Vec::new(),
            summary,
            failure,
        })
    }
}

/// Man page sections beyond clap's.
pub fn man() -> ManExtra {
    ManExtra {
        connects: true,
        input: "An upstream envelope on stdin (pipe or file) may give the endpoints in facts.endpoints; \
--endpoints, ETCDCTL_ENDPOINTS and --env-file's ETCD_ADVERTISE_CLIENT_URLS are used in that order after it.",
        output: "facts.health {status, healthy, degraded, quorum, leader, members_total, members_healthy, alarms}, \
facts.cluster_id, facts.etcd_version (the leader's), facts.members [{id, name, peer_urls, client_urls, is_learner, started}], \
facts.endpoints. data adds problems (plain words), raft_index_spread, leaders_seen, attempts, waited_ms and, per endpoint, \
reachable, healthy, member_id, etcd_version, db_size_bytes, db_size_in_use_bytes, leader, is_leader, raft_term, raft_index, alarms, \
raft_applied_index, is_learner, took_ms, error. Status healthy exits 0; degraded (quorum held, a member down, unstarted or \
a learner) and unhealthy (quorum lost, no or several leaders, an alarm, mixed clusters) exit 5; no endpoint reachable exits 4.",
        environment: &[],
        examples: r#"Check every member of a TLS cluster:
  etcd-health --cluster --endpoints https://10.0.0.1:2379 \
      --cacert ca.pem --cert client.pem --key client-key.pem

Wait up to two minutes for a restored cluster to become healthy, then read the verdict with jq:
  etcd-health --cluster --wait 2m | jq -r .facts.health.status

As an Ansible task:
  - name: etcd is healthy
    ansible.builtin.command: etcd-health --cluster --wait 2m --env-file /etc/etcd.env
    changed_when: false"#,
        see_also: &["etcd-snap", "etcd-rejoin", "etcdctl"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn member(id: u64, name: &str) -> MemberInfo {
        MemberInfo {
            id,
            name: name.into(),
            peer_urls: vec![format!("http://127.0.1.{id}:2380")],
            client_urls: vec![format!("http://127.0.1.{id}:2379")],
            is_learner: false,
        }
    }

    fn ok_report(id: u64, leader: u64, index: u64) -> EndpointReport {
        EndpointReport {
            endpoint: format!("http://127.0.1.{id}:2379"),
            reachable: true,
            healthy: true,
            member_id: Some(id),
            cluster_id: Some(99),
            leader: Some(leader),
            raft_index: Some(index),
            ..Default::default()
        }
    }

    fn down(id: u64) -> EndpointReport {
        EndpointReport {
            endpoint: format!("http://127.0.1.{id}:2379"),
            member_id: Some(id),
            error: Some("connection refused".into()),
            ..Default::default()
        }
    }

    #[test]
    fn args_are_well_formed() {
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "etcd-health",
            "--cluster",
            "--wait",
            "1m",
            "--endpoints",
            "a:1,b:2",
        ])
        .unwrap();
        assert!(a.cluster);
        assert_eq!(a.wait, Some(Duration::from_secs(60)));
        assert_eq!(
            a.conn.endpoints,
            Some(vec!["a:1".to_string(), "b:2".to_string()])
        );
        assert!(Args::try_parse_from(["etcd-health", "--wait", "soon"]).is_err());
    }

    #[test]
    fn all_healthy() {
        let ms = vec![member(1, "a"), member(2, "b"), member(3, "c")];
        let rs = vec![
            ok_report(1, 2, 10),
            ok_report(2, 2, 12),
            ok_report(3, 2, 11),
        ];
        let v = verdict(Some(&ms), &rs, &[]);
        assert_eq!(v.status, Status::Healthy, "{:?}", v.problems);
        assert!(v.quorum);
        assert_eq!(v.leader, Some(2));
        assert_eq!((v.members_healthy, v.members_total), (3, 3));
        assert_eq!(v.raft_index_spread, Some(2));
    }

    #[test]
    fn one_down_is_degraded_with_quorum() {
        let ms = vec![member(1, "a"), member(2, "b"), member(3, "c")];
        let rs = vec![ok_report(1, 2, 10), ok_report(2, 2, 10), down(3)];
        let v = verdict(Some(&ms), &rs, &[]);
        assert_eq!(v.status, Status::Degraded);
        assert!(v.quorum);
        assert_eq!(v.members_healthy, 2);
        assert!(v.problems[0].contains("c ("), "{:?}", v.problems);
    }

    #[test]
    fn two_down_loses_quorum() {
        let ms = vec![member(1, "a"), member(2, "b"), member(3, "c")];
        let mut lonely = ok_report(1, 0, 10);
        lonely.healthy = false;
        lonely.error = Some("linearizable read: deadline exceeded".into());
        let v = verdict(Some(&ms), &[lonely, down(2), down(3)], &[]);
        assert_eq!(v.status, Status::Unhealthy);
        assert!(!v.quorum);
    }

    #[test]
    fn alarm_is_unhealthy_and_named() {
        let ms = vec![member(1, "a")];
        let v = verdict(
            Some(&ms),
            &[ok_report(1, 1, 5)],
            &[AlarmInfo {
                member_id: 1,
                alarm: "NOSPACE".into(),
            }],
        );
        assert_eq!(v.status, Status::Unhealthy);
        assert!(v
            .problems
            .iter()
            .any(|p| p.contains("NOSPACE") && p.contains('a')));
    }

    #[test]
    fn split_leaders_and_mixed_clusters_are_unhealthy() {
        let v = verdict(None, &[ok_report(1, 1, 5), ok_report(2, 2, 5)], &[]);
        assert_eq!(v.status, Status::Unhealthy);
        let mut other = ok_report(2, 1, 5);
        other.cluster_id = Some(7);
        let v = verdict(None, &[ok_report(1, 1, 5), other], &[]);
        assert_eq!(v.status, Status::Unhealthy);
    }

    #[test]
    fn unstarted_member_and_learner_degrade() {
        let mut ms = vec![member(1, "a"), member(2, "b")];
        ms.push(MemberInfo {
            id: 3,
            name: String::new(),
            peer_urls: vec!["http://x:2380".into()],
            client_urls: vec![],
            is_learner: false,
        });
        let v = verdict(Some(&ms), &[ok_report(1, 1, 5), ok_report(2, 1, 5)], &[]);
        assert_eq!(v.status, Status::Degraded);
        assert!(v.problems.iter().any(|p| p.contains("has not started")));
        ms.pop();
        ms[1].is_learner = true;
        let v = verdict(Some(&ms), &[ok_report(1, 1, 5), ok_report(2, 1, 5)], &[]);
        assert_eq!(v.status, Status::Degraded);
    }

    /// Issue 13: with --endpoints (no member list judged) a member that is down is still
    /// named by name, whether the endpoint was given with or without its scheme.
    #[test]
    fn endpoints_mode_names_a_down_member_by_name() {
        let ms = vec![member(1, "a"), member(2, "b"), member(3, "c")];
        for ep in [
            "http://127.0.1.3:2379",
            "127.0.1.3:2379",
            "http://127.0.1.3:2379/",
        ] {
            let mut gone = down(3);
            gone.member_id = None;
            gone.endpoint = ep.into();
            let mut rs = vec![ok_report(1, 2, 10), ok_report(2, 2, 10), gone];
            attribute(&mut rs, &ms);
            assert_eq!(rs[2].member_id, Some(3), "{ep}");
            let v = verdict_in(None, &ms, &rs, &[]);
            assert_eq!(v.status, Status::Degraded);
            assert_eq!((v.members_healthy, v.members_total), (2, 3));
            assert!(
                v.problems[0].starts_with(&format!("c ({ep})")),
                "{ep}: {:?}",
                v.problems
            );
            assert!(!v.problems[0].contains(&ids::hex(3)), "{:?}", v.problems);
        }
        // An endpoint no member advertises stays unattributed.
        let mut rs = vec![down(9)];
        rs[0].member_id = None;
        attribute(&mut rs, &ms);
        assert_eq!(rs[0].member_id, None);
    }

    #[test]
    fn nothing_reachable() {
        let v = verdict(None, &[down(1)], &[]);
        assert_eq!(v.status, Status::Unreachable);
        assert!(v.problems[0].contains("connection refused"));
    }
}
