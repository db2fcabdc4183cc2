//! Membership math (spec §7.2): member IDs from peer URLs and the cluster token, the cluster ID
//! from member IDs, `--initial-cluster` parsing with etcd's URL rules, etcd's bootstrap
//! validation, and the member JSON etcd stores in raft entries, the v2 store and bbolt.

use crate::v2store::go_quote;
use crate::{DiskError, Result};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;

/// Format a member or cluster ID the way our tools print it: 16 lowercase hex digits.
pub fn format_id(id: u64) -> String {
    format!("{id:016x}")
}

/// Format an ID the way etcd names it inside the v2 store and bbolt: lowercase hex without
/// zero padding (e.g. `2fdf21efb8a657d`).
pub fn format_id_short(id: u64) -> String {
    format!("{id:x}")
}

/// Parse an ID written in hex (1 to 16 digits, optional `0x`), as etcdctl accepts it.
pub fn parse_id(s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    if t.is_empty() || t.len() > 16 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DiskError::Invalid(format!(
            "invalid member/cluster ID {s:?}: want 1-16 hex digits"
        )));
    }
    u64::from_str_radix(t, 16).map_err(|e| DiskError::Invalid(format!("invalid ID {s:?}: {e}")))
}

fn sha1_u64(b: &[u8]) -> u64 {
    let d = Sha1::digest(b);
    let mut a = [0u8; 8];
    a.copy_from_slice(&d[..8]);
    u64::from_be_bytes(a)
}

/// Member ID of a bootstrapped or restored member: the first 8 bytes (big-endian) of
/// SHA-1(sorted peer URLs concatenated ‖ cluster token). `peer_urls` need not be sorted.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let mut b = Vec::new();
    for u in urls {
        b.extend_from_slice(u.as_bytes());
    }
    b.extend_from_slice(token.as_bytes());
    sha1_u64(&b)
}

/// Cluster ID: first 8 bytes (BE) of SHA-1 of the member IDs sorted ascending, each 8 bytes BE.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut b = Vec::with_capacity(ids.len() * 8);
    for id in ids {
        b.extend_from_slice(&id.to_be_bytes());
    }
    sha1_u64(&b)
}

/// Validate one URL by etcd's rules (`types.NewURLs`): trimmed; scheme http, https, unix or
/// unixs (case-insensitive, normalised to lowercase); the host has the form `host:port`; no
/// path. Returns the normalised string.
pub fn validate_url(raw: &str) -> Result<String> {
    let s = raw.trim();
    let bad = |m: &str| Err(DiskError::Invalid(format!("{m}: {s}")));
    let Some((scheme, rest)) = s.split_once("://") else {
        return bad("URL scheme must be http, https, unix, or unixs");
    };
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "unix" | "unixs") {
        return bad("URL scheme must be http, https, unix, or unixs");
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if tail.starts_with('/') {
        return bad("URL must not contain a path");
    }
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let ok = if let Some(v6) = host.strip_prefix('[') {
        v6.split_once(']')
            .is_some_and(|(_, after)| after.starts_with(':'))
    } else {
        host.matches(':').count() == 1
    };
    if !ok {
        return bad("URL address does not have the form \"host:port\"");
    }
    Ok(format!("{scheme}://{rest}"))
}

/// Parse a comma-separated URL list (e.g. `--initial-advertise-peer-urls`), validated and
/// sorted like etcd's `types.NewURLs`.
pub fn parse_urls(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        out.push(validate_url(part)?);
    }
    out.sort();
    Ok(out)
}

/// A parsed `--initial-cluster`: member name → its peer URLs (validated, sorted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitialCluster {
    pub members: BTreeMap<String, Vec<String>>,
}

/// Parse `--initial-cluster` (`name=url,name=url,...`; a repeated name adds a URL).
pub fn parse_initial_cluster(s: &str) -> Result<InitialCluster> {
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in s.split(',') {
        if item.trim().is_empty() {
            continue;
        }
        let Some((name, url)) = item.split_once('=') else {
            return Err(DiskError::Invalid(format!(
                "--initial-cluster item {item:?} is not of the form name=url"
            )));
        };
        let url = validate_url(url)?;
        members.entry(name.to_string()).or_default().push(url);
    }
    for urls in members.values_mut() {
        urls.sort();
    }
    Ok(InitialCluster { members })
}

/// One cluster member, as etcd's membership package models it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub name: String,
    /// Sorted.
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

fn json_str_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(","))
}

impl Member {
    /// The member JSON exactly as Go's encoding/json writes etcd's `Member`:
    /// `{"id":N,"peerURLs":[...],"isLearner":true?,"name":"..."?,"clientURLs":[...]?}`
    /// (`isLearner`, `name` and `clientURLs` omitted when empty). Used as ConfChange context
    /// and as the value in bbolt's `members` bucket.
    pub fn to_json(&self) -> String {
        let mut s = format!(
            "{{\"id\":{},\"peerURLs\":{}",
            self.id,
            json_str_list(&self.peer_urls)
        );
        if self.is_learner {
            s.push_str(",\"isLearner\":true");
        }
        if !self.name.is_empty() {
            s.push_str(",\"name\":");
            s.push_str(&go_quote(&self.name));
        }
        if !self.client_urls.is_empty() {
            s.push_str(",\"clientURLs\":");
            s.push_str(&json_str_list(&self.client_urls));
        }
        s.push('}');
        s
    }

    /// The `raftAttributes` value of the v2 store: `{"peerURLs":[...]}` (+ `"isLearner":true`).
    pub fn raft_attributes_json(&self) -> String {
        let mut s = format!("{{\"peerURLs\":{}", json_str_list(&self.peer_urls));
        if self.is_learner {
            s.push_str(",\"isLearner\":true");
        }
        s.push('}');
        s
    }

    /// The `attributes` value of the v2 store: `{"name":"...","clientURLs":[...]}` (both
    /// omitted when empty).
    pub fn attributes_json(&self) -> String {
        let mut parts = Vec::new();
        if !self.name.is_empty() {
            parts.push(format!("\"name\":{}", go_quote(&self.name)));
        }
        if !self.client_urls.is_empty() {
            parts.push(format!(
                "\"clientURLs\":{}",
                json_str_list(&self.client_urls)
            ));
        }
        format!("{{{}}}", parts.join(","))
    }
}

/// `meta/confState` as etcd 3.5 writes it (Go's encoding/json of `raftpb.ConfState`):
/// `{"voters":[...],"learners":[...]?,"auto_leave":false}`, IDs as decimal numbers in
/// ascending order, empty lists omitted (observed on 3.5.30 after `--force-new-cluster`:
/// `{"voters":[<the member's id>],"auto_leave":false}`).
pub fn conf_state_json(voters: &[u64], learners: &[u64]) -> String {
    let list = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v.dedup();
        v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    };
    let mut s = String::from("{");
    if !voters.is_empty() {
        s.push_str(&format!("\"voters\":[{}],", list(voters)));
    }
    if !learners.is_empty() {
        s.push_str(&format!("\"learners\":[{}],", list(learners)));
    }
    s.push_str("\"auto_leave\":false}");
    s
}

/// The result of etcd's bootstrap computation (restore or a new cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapCluster {
    /// Sorted by ID ascending (the order etcd uses everywhere).
    pub members: Vec<Member>,
    pub cluster_id: u64,
    /// ID of the local member (`--name`).
    pub local_id: u64,
}

impl BootstrapCluster {
    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }
    pub fn local(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.id == self.local_id)
    }
}

/// etcd's bootstrap validation and ID computation (`VerifyBootstrap` +
/// `NewClusterFromURLsMap`): `name` must be in the initial cluster, its sorted URLs must equal
/// the sorted advertise peer URLs (compared as strings: no DNS resolution), no URL may appear
/// twice, the map must be non-empty, member IDs must be non-zero and distinct.
pub fn bootstrap(
    name: &str,
    initial_cluster: &str,
    advertise_peer_urls: &str,
    token: &str,
) -> Result<BootstrapCluster> {
    let ic = parse_initial_cluster(initial_cluster)?;
    if ic.members.is_empty() {
        return Err(DiskError::Invalid(
            "initial cluster unset and no discovery URL found".into(),
        ));
    }
    let Some(local_urls) = ic.members.get(name) else {
        return Err(DiskError::Invalid(format!(
            "couldn't find local name {name:?} in the initial cluster configuration"
        )));
    };
    let adv = parse_urls(advertise_peer_urls)?;
    if &adv != local_urls {
        return Err(DiskError::Invalid(format!(
            "--initial-cluster has {name}={} but missing from --initial-advertise-peer-urls={}",
            local_urls.join(","),
            adv.join(",")
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for urls in ic.members.values() {
        for u in urls {
            if !seen.insert(u.clone()) {
                return Err(DiskError::Invalid(format!(
                    "initial cluster {initial_cluster} has duplicate url {u}"
                )));
            }
        }
    }
    let mut members = Vec::new();
    for (n, urls) in &ic.members {
        let id = member_id(urls, token);
        if id == 0 {
            return Err(DiskError::Invalid(format!(
                "cannot use {id:x} as member id"
            )));
        }
        if members.iter().any(|m: &Member| m.id == id) {
            return Err(DiskError::Invalid(format!(
                "member exists with identical ID {id:x}"
            )));
        }
        members.push(Member {
            id,
            name: n.clone(),
            peer_urls: urls.clone(),
            client_urls: Vec::new(),
            is_learner: false,
        });
    }
    members.sort_by_key(|m| m.id);
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let local_id = member_id(local_urls, token);
    Ok(BootstrapCluster {
        cluster_id: cluster_id(&ids),
        members,
        local_id,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn conf_state_json_as_etcd_writes_it() {
        // 3.5.30 after --force-new-cluster, and a 3-voter source db (both observed).
        assert_eq!(
            conf_state_json(&[16398845979784210019], &[]),
            r#"{"voters":[16398845979784210019],"auto_leave":false}"#
        );
        assert_eq!(
            conf_state_json(
                &[
                    14392337071909370380,
                    7111430904363232558,
                    10219752080273279121
                ],
                &[]
            ),
            r#"{"voters":[7111430904363232558,10219752080273279121,14392337071909370380],"auto_leave":false}"#
        );
        assert_eq!(
            conf_state_json(&[2], &[5]),
            r#"{"voters":[2],"learners":[5],"auto_leave":false}"#
        );
    }

    #[test]
    fn member_id_vectors() {
        assert_eq!(
            format_id(member_id(&s(&["http://localhost:2380"]), "etcd-cluster")),
            "8e9e05c52164694d"
        );
        assert_eq!(
            format_id(member_id(&s(&["http://127.0.0.1:47380"]), "tok1")),
            "4f6e8cdffebd6727"
        );
        assert_eq!(
            format_id(member_id(&s(&["http://10.0.0.2:2380"]), "tt")),
            "a000429f37de1964"
        );
        // order of URLs does not matter
        let a = member_id(&s(&["http://b:1", "http://a:1"]), "t");
        assert_eq!(a, member_id(&s(&["http://a:1", "http://b:1"]), "t"));
    }

    #[test]
    fn cluster_id_vectors() {
        assert_eq!(
            format_id(cluster_id(&[0x8e9e05c52164694d])),
            "cdf818194e3a8c32"
        );
        assert_eq!(
            format_id(cluster_id(&[0x4f6e8cdffebd6727])),
            "ad420312c65d215c"
        );
        assert_eq!(
            format_id(cluster_id(&[
                0xb5a3487b8a1f7dca,
                0x4229723f34757929,
                0xa000429f37de1964
            ])),
            "fc866c2f5f0cb75f"
        );
    }

    #[test]
    fn ids_format_parse() {
        assert_eq!(format_id(0x2fdf21efb8a657d), "02fdf21efb8a657d");
        assert_eq!(format_id_short(0x2fdf21efb8a657d), "2fdf21efb8a657d");
        assert_eq!(parse_id("02fdf21efb8a657d").unwrap(), 0x2fdf21efb8a657d);
        assert_eq!(parse_id("0xFF").unwrap(), 255);
        assert!(parse_id("").is_err());
        assert!(parse_id("12345678901234567").is_err());
        assert!(parse_id("xyz").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(validate_url(" HTTP://a:1 ").unwrap(), "http://a:1");
        assert!(validate_url("ftp://a:1").is_err());
        assert!(validate_url("a:1").is_err());
        assert!(validate_url("http://a").is_err());
        assert!(validate_url("http://a:1/x").is_err());
        assert!(validate_url("http://a:1:2").is_err());
        assert!(validate_url("http://[::1]:2380").is_ok());
        assert!(validate_url("http://[::1]").is_err());
        assert!(validate_url("unix://sock:0").is_ok());
        assert_eq!(
            parse_urls("http://b:1,http://a:1").unwrap(),
            s(&["http://a:1", "http://b:1"])
        );
    }

    #[test]
    fn initial_cluster_repeated_names() {
        let ic = parse_initial_cluster("a=http://h2:1,b=http://h3:1,a=http://h1:1").unwrap();
        assert_eq!(ic.members["a"], s(&["http://h1:1", "http://h2:1"]));
        assert_eq!(ic.members["b"], s(&["http://h3:1"]));
        assert!(parse_initial_cluster("a:http://h:1").is_err());
    }

    #[test]
    fn bootstrap_three_members() {
        let c = bootstrap(
            "b",
            "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380",
            "http://10.0.0.2:2380",
            "tt",
        )
        .unwrap();
        assert_eq!(format_id(c.cluster_id), "fc866c2f5f0cb75f");
        assert_eq!(format_id(c.local_id), "a000429f37de1964");
        let names: Vec<&str> = c.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["c", "b", "a"]);
        assert_eq!(
            c.members[0].to_json(),
            r#"{"id":4767467296337000745,"peerURLs":["http://10.0.0.3:2380"],"name":"c"}"#
        );
        assert_eq!(
            c.members[0].raft_attributes_json(),
            r#"{"peerURLs":["http://10.0.0.3:2380"]}"#
        );
    }

    #[test]
    fn bootstrap_errors() {
        let ic = "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380";
        assert!(bootstrap("x", ic, "http://10.0.0.1:2380", "t").is_err());
        assert!(bootstrap("a", ic, "http://10.0.0.2:2380", "t").is_err());
        assert!(bootstrap("a", "a=http://h:1,b=http://h:1", "http://h:1", "t").is_err());
        assert!(bootstrap("a", "", "http://h:1", "t").is_err());
        assert!(bootstrap("a", ic, "http://10.0.0.1:2380", "t").is_ok());
    }

    #[test]
    fn member_json_shapes() {
        let m = Member {
            id: 1,
            name: String::new(),
            peer_urls: s(&["http://a:1"]),
            client_urls: s(&["http://a:2"]),
            is_learner: true,
        };
        assert_eq!(
            m.to_json(),
            r#"{"id":1,"peerURLs":["http://a:1"],"isLearner":true,"clientURLs":["http://a:2"]}"#
        );
        assert_eq!(m.attributes_json(), r#"{"clientURLs":["http://a:2"]}"#);
    }
}
