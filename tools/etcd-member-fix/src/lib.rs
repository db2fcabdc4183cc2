//! etcd-member-fix: after `--force-new-cluster` the surviving member is listed with the peer
//! URL `http://localhost:2380`; set it to the member's real peer URL and verify it took.
//!
//! The member is found by `--id`, `--name` (or `--env-file`'s `ETCD_NAME`), or as the only
//! member (or the only one with a localhost peer URL). Its peer URLs are compared as sets with
//! the wanted ones (`--peer-urls`, or `ETCD_INITIAL_ADVERTISE_PEER_URLS`): equal → nothing to do
//! (`changed:false`); otherwise `member update`, then the member list is read again until it
//! shows the new URLs.
//!
//! `restart_required` is false: measured on etcd 3.4.23 and 3.5.1 (see `tests/tests/surgery.rs`
//! and the man page), a member whose peer URL was updated while running accepts joiners at the
//! new URL without a restart (the update only changes the membership record; the member keeps
//! listening on its `--listen-peer-urls`).

use clap::Parser;
use etcd_common::conn::{ConnArgs, ProcessEnv};
use etcd_common::envelope::{keys, Facts};
use etcd_common::envfile::EnvFile;
use etcd_common::man::ManExtra;
use etcd_common::runner::CommonArgs;
use etcd_common::{diag, duration, ids, Ctx, Error, Outcome, Result, Tool};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    duration::parse(s)
}

fn parse_id(s: &str) -> std::result::Result<u64, String> {
    ids::parse_hex(s).ok_or_else(|| format!("{s:?} is not a hex member ID"))
}

/// Set a member's peer URLs (after --force-new-cluster it is http://localhost:2380) and verify
/// the change took. Already right: changed:false.
#[derive(Parser, Debug, Clone)]
#[command(name = "etcd-member-fix", version, about, long_about = None)]
pub struct Args {
    /// The member's name [default: --env-file's ETCD_NAME, else the only member]
    #[arg(long, value_name = "NAME", conflicts_with = "id")]
    pub name: Option<String>,
    /// The member's ID (hex)
    #[arg(long, value_name = "HEX", value_parser = parse_id)]
    pub id: Option<u64>,
    /// The peer URLs to set, comma separated [default: --env-file's ETCD_INITIAL_ADVERTISE_PEER_URLS]
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    pub peer_urls: Option<Vec<String>>,
    /// etcd's settings file (/etc/etcd.env): ETCD_NAME, ETCD_INITIAL_ADVERTISE_PEER_URLS,
    /// ETCD_ADVERTISE_CLIENT_URLS (endpoints)
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// How long to retry the update and wait until the member list shows it
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub wait: Duration,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub use etcd_common::members::Member;

fn label(m: &Member) -> String {
    if m.name.is_empty() {
        ids::hex(m.id)
    } else {
        format!("{} ({})", m.name, ids::hex(m.id))
    }
}

/// A URL's host is a loopback name (`localhost`, `127.x`, `::1`).
pub fn is_localhost_url(u: &str) -> bool {
    let host = host_of(u);
    host == "localhost" || host.starts_with("127.") || host == "[::1]" || host == "::1"
}

fn host_of(u: &str) -> &str {
    let rest = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.starts_with('[') {
        return hostport
            .split_once(']')
            .map(|(h, _)| h)
            .map(|h| &hostport[..h.len() + 1])
            .unwrap_or(hostport);
    }
    hostport
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(hostport)
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
        if scheme != "http" && scheme != "https" {
            return Err(Error::usage(format!(
                "peer URL {u:?}: scheme must be http or https"
            )));
        }
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || !rest.contains(':') || rest.ends_with(':') || rest.starts_with(':')
        {
            return Err(Error::usage(format!(
                "peer URL {u:?}: expected {scheme}://host:port"
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

/// Same URLs regardless of order.
pub fn same_urls(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<&String> = a.iter().collect();
    let mut b: Vec<&String> = b.iter().collect();
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// How the member was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Id(u64),
    Name(String),
    Only,
}

/// Find the member: by ID, by name, or the only one (or the only one with a localhost peer
/// URL, which is the one `--force-new-cluster` left).
pub fn select<'a>(members: &'a [Member], sel: &Selector) -> Result<&'a Member> {
    match sel {
        Selector::Id(id) => members
            .iter()
            .find(|m| m.id == *id)
            .ok_or_else(|| Error::check_failed(format!("no member with ID {}", ids::hex(*id)))),
        Selector::Name(n) => {
            let found: Vec<&Member> = members.iter().filter(|m| &m.name == n).collect();
            match found.as_slice() {
                [one] => Ok(one),
                [] => Err(Error::check_failed(format!(
                    "no member named {n:?} (members: {})",
                    members.iter().map(label).collect::<Vec<_>>().join(", ")
                ))),
                _ => Err(Error::usage(format!(
                    "several members are named {n:?}: give --id"
                ))),
            }
        }
        Selector::Only => {
            if let [one] = members {
                return Ok(one);
            }
            let local: Vec<&Member> = members
                .iter()
                .filter(|m| m.peer_urls.iter().any(|u| is_localhost_url(u)))
                .collect();
            match local.as_slice() {
                [one] => Ok(one),
                _ => Err(Error::usage(format!(
                    "{} members: give --name or --id ({})",
                    members.len(),
                    members.iter().map(label).collect::<Vec<_>>().join(", ")
                ))),
            }
        }
    }
}

async fn list(
    cfg: &etcd_common::conn::ConnConfig,
    client: &mut etcd_client::Client,
) -> Result<(Vec<Member>, Option<u64>)> {
    let r = cfg
        .call(
            format!("member list from {}", cfg.endpoints.join(",")),
            client.member_list(),
        )
        .await?;
    Ok((
        r.members().iter().map(Member::from_etcd).collect(),
        r.header().map(|h| h.cluster_id()),
    ))
}

impl Tool for Args {
    const NAME: &'static str = "etcd-member-fix";

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    async fn run(self, ctx: Ctx) -> Result<Outcome> {
        let env_file = match &self.env_file {
            Some(p) => Some(EnvFile::load(p)?),
            None => None,
        };
        let wanted = match (&self.peer_urls, env_file.as_ref().and_then(|e| e.get("ETCD_INITIAL_ADVERTISE_PEER_URLS"))) {
            (Some(u), _) => normalize_urls(u)?,
            (None, Some(e)) => normalize_urls(&e.split(',').map(String::from).collect::<Vec<_>>())?,
            (None, None) => {
                return Err(Error::usage(
                    "no peer URL: give --peer-urls, or --env-file with ETCD_INITIAL_ADVERTISE_PEER_URLS",
                ))
            }
        };
        let sel = match (
            &self.id,
            &self.name,
            env_file.as_ref().and_then(|e| e.get("ETCD_NAME")),
        ) {
            (Some(id), _, _) => Selector::Id(*id),
            (None, Some(n), _) => Selector::Name(n.clone()),
            (None, None, Some(n)) => Selector::Name(n.to_string()),
            _ => Selector::Only,
        };
        let cfg = self
            .conn
            .resolve(&ctx.upstream, &ProcessEnv, env_file.as_ref())?;
        let mut client = cfg.connect_all().await?;
        let t0 = Instant::now();
        let deadline = t0 + self.wait;
        let (members, mut cluster_id) = list(&cfg, &mut client).await?;
        let target = select(&members, &sel)?.clone();
        // Another member already advertising one of these URLs: etcd would refuse the update.
        if let Some(other) = members
            .iter()
            .find(|m| m.id != target.id && m.peer_urls.iter().any(|u| wanted.contains(u)))
        {
            return Err(Error::refused(format!(
                "member {} already has peer URL {}: refusing to give it to {}",
                label(other),
                other.peer_urls.join(","),
                label(&target)
            )));
        }
        let mut warnings = Vec::new();
        if wanted.iter().all(|u| is_localhost_url(u)) {
            warnings.push(format!(
                "the new peer URLs {} are on localhost: members on other hosts cannot reach them",
                wanted.join(",")
            ));
        }
        let changed = !same_urls(&target.peer_urls, &wanted);
        let mut attempts = 0u32;
        let mut after = members.clone();
        if changed {
            diag::info(&format!(
                "updating {} peer URLs {} -> {}",
                label(&target),
                target.peer_urls.join(","),
                wanted.join(",")
            ));
            loop {
                attempts += 1;
                match cfg
                    .call(
                        format!("member update {}", ids::hex(target.id)),
                        client.member_update(target.id, wanted.clone()),
                    )
                    .await
                {
                    Ok(_) => break,
                    Err(e)
                        if Instant::now() < deadline && e.kind != etcd_common::ErrorKind::Usage =>
                    {
                        diag::info(&format!("attempt {attempts}: {}; retrying", e.message));
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
            // Verify: the member list shows the new URLs.
            loop {
                let (m, cid) = list(&cfg, &mut client).await?;
                cluster_id = cid.or(cluster_id);
                after = m;
                let now = after.iter().find(|m| m.id == target.id);
                if now.is_some_and(|m| same_urls(&m.peer_urls, &wanted)) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::check_failed(format!(
                        "member update of {} was accepted but the member list still shows {} after {}",
                        label(&target),
                        now.map(|m| m.peer_urls.join(",")).unwrap_or_else(|| "no such member".into()),
                        duration::display(self.wait)
                    )));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let fixed = after
            .iter()
            .find(|m| m.id == target.id)
            .cloned()
            .unwrap_or_else(|| target.clone());

        let mut facts = Facts::new();
        facts.insert(keys::ENDPOINTS.into(), cfg.endpoints_fact());
        if let Some(c) = cluster_id {
            facts.insert(keys::CLUSTER_ID.into(), json!(ids::hex(c)));
        }
        facts.insert(keys::MEMBER_ID.into(), json!(ids::hex(target.id)));
        facts.insert(
            keys::MEMBERS.into(),
            Value::Array(after.iter().map(Member::json).collect()),
        );
        facts.insert(
            "member_fix".into(),
            json!({
                "member_id": ids::hex(target.id),
                "name": fixed.name,
                "peer_urls": fixed.peer_urls,
                "verified": true,
                "restart_required": false,
            }),
        );
        let data = json!({
            "peer_urls_before": if changed { json!(target.peer_urls) } else { json!(fixed.peer_urls) },
            "selected_by": match &sel { Selector::Id(_) => "id", Selector::Name(_) => "name", Selector::Only => "only" },
            "attempts": attempts,
            "took_ms": t0.elapsed().as_millis() as u64,
        });
        let summary = if changed {
            format!(
                "{}: peer URLs {} -> {} (verified)",
                label(&target),
                target.peer_urls.join(","),
                fixed.peer_urls.join(",")
            )
        } else {
            format!(
                "{}: peer URLs already {}",
                label(&target),
                fixed.peer_urls.join(",")
            )
        };
        Ok(Outcome {
            changed,
            facts,
            data,
            warnings,
            summary,
            failure: None,
        })
    }
}

/// Man page sections beyond clap's.
pub fn man() -> ManExtra {
    ManExtra {
        connects: true,
        input: "An upstream envelope may give the endpoints in facts.endpoints. --env-file gives ETCD_NAME (the member), \
ETCD_INITIAL_ADVERTISE_PEER_URLS (the URLs to set) and ETCD_ADVERTISE_CLIENT_URLS (endpoints, after ETCDCTL_ENDPOINTS).",
        output: "facts.member_fix {member_id, name, peer_urls, verified, restart_required}, facts.member_id, facts.cluster_id, \
facts.members [{id, name, peer_urls, client_urls, is_learner, started}] (after the update), facts.endpoints. \
data has peer_urls_before, selected_by (id|name|only), attempts, took_ms. \
restart_required is false: on etcd 3.4.23 and 3.5.1 a member whose peer URL was updated while it runs accepts a joiner at the new URL \
without a restart (tested end to end). A member started with --force-new-cluster must still be restarted without that flag before \
its next restart, or it would again drop every other member: do that after the others joined (procedure step 9). \
Exit 5 when the member is not found or the update does not show in the member list within --wait; 7 when another member already has the URL.",
        environment: &[],
        examples: r#"After starting the first member with --force-new-cluster:
  etcd-member-fix --env-file /etc/etcd.env

By name, with explicit URLs:
  etcd-member-fix --endpoints 10.0.0.1:2379 --name etcd1 --peer-urls https://10.0.0.1:2380

As an Ansible task:
  - name: fix the first member's peer URL
    ansible.builtin.command: etcd-member-fix --env-file /etc/etcd.env
    register: fix
    changed_when: (fix.stdout | from_json).changed"#,
        see_also: &["etcd-purge", "etcd-rejoin", "etcd-health"],
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
            client_urls: vec![],
            is_learner: false,
        }
    }

    #[test]
    fn args_are_well_formed() {
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "etcd-member-fix",
            "--id",
            "8e9e05c52164694d",
            "--peer-urls",
            "http://a:2380,http://b:2380",
        ])
        .unwrap();
        assert_eq!(a.id, Some(0x8e9e05c52164694d));
        assert_eq!(a.peer_urls.unwrap().len(), 2);
        assert!(Args::try_parse_from(["etcd-member-fix", "--id", "xyz"]).is_err());
        assert!(Args::try_parse_from(["etcd-member-fix", "--id", "1", "--name", "a"]).is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            normalize_urls(&[
                "http://10.0.0.1:2380/".into(),
                " http://10.0.0.1:2380".into()
            ])
            .unwrap(),
            ["http://10.0.0.1:2380"]
        );
        assert!(normalize_urls(&["10.0.0.1:2380".into()]).is_err());
        assert!(normalize_urls(&["ftp://a:1".into()]).is_err());
        assert!(normalize_urls(&["http://a".into()]).is_err());
        assert!(normalize_urls(&[]).is_err());
        assert!(is_localhost_url("http://localhost:2380"));
        assert!(is_localhost_url("http://127.0.3.1:2380"));
        assert!(is_localhost_url("https://[::1]:2380"));
        assert!(!is_localhost_url("http://10.0.0.1:2380"));
        assert!(same_urls(
            &["b".into(), "a".into()],
            &["a".into(), "b".into()]
        ));
        assert!(!same_urls(&["a".into()], &["a".into(), "b".into()]));
    }

    #[test]
    fn selection() {
        let one = vec![m(1, "a", "http://localhost:2380")];
        assert_eq!(select(&one, &Selector::Only).unwrap().id, 1);
        let two = vec![
            m(1, "a", "http://localhost:2380"),
            m(2, "b", "http://10.0.0.2:2380"),
        ];
        assert_eq!(select(&two, &Selector::Only).unwrap().id, 1);
        assert_eq!(select(&two, &Selector::Name("b".into())).unwrap().id, 2);
        assert_eq!(select(&two, &Selector::Id(2)).unwrap().id, 2);
        assert_eq!(
            select(&two, &Selector::Id(3))
                .unwrap_err()
                .exit_code()
                .code(),
            5
        );
        assert_eq!(
            select(&two, &Selector::Name("z".into()))
                .unwrap_err()
                .exit_code()
                .code(),
            5
        );
        let fixed = vec![
            m(1, "a", "http://10.0.0.1:2380"),
            m(2, "b", "http://10.0.0.2:2380"),
        ];
        assert_eq!(
            select(&fixed, &Selector::Only)
                .unwrap_err()
                .exit_code()
                .code(),
            2
        );
    }
}
