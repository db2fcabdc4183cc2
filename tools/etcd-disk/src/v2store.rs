//! The v2 store JSON carried in `.snap` files (spec §4): a tolerant reader, the
//! `IsMetaStoreOnly` test, and a byte-exact generator of the fresh store written by restore.
//!
//! Note: Go's `store.Save` clones nodes with `ModifiedIndex = CreatedIndex`, so the
//! `ModifiedIndex` found in `.snap` files is not the real modification index.

use crate::membership::{format_id_short, Member};
use crate::{DiskError, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Go's zero `time.Time` as encoding/json writes it: a permanent node.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// Capacity of the v2 store's event history.
pub const EVENT_HISTORY_CAPACITY: u64 = 1000;

/// One node of the v2 store tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: String,
    pub created_index: u64,
    pub modified_index: u64,
    /// As serialized (`0001-01-01T00:00:00Z` = permanent).
    pub expire_time: String,
    /// Empty for directories.
    pub value: String,
    /// `None` for a key, `Some` for a directory (possibly empty).
    pub children: Option<BTreeMap<String, Node>>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.children.is_some()
    }
    pub fn is_permanent(&self) -> bool {
        self.expire_time == GO_ZERO_TIME || self.expire_time.is_empty()
    }
    /// A child by name.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.as_ref().and_then(|c| c.get(name))
    }
    /// A node by absolute path (`/0/members`).
    pub fn get(&self, path: &str) -> Option<&Node> {
        let mut n = self;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            n = n.child(part)?;
        }
        Some(n)
    }
    /// Go's encoding/json form of the node.
    pub fn write_go_json(&self, out: &mut String) {
        let _ = write!(
            out,
            "{{\"Path\":{},\"CreatedIndex\":{},\"ModifiedIndex\":{},\"ExpireTime\":{},\"Value\":{},\"Children\":",
            go_quote(&self.path),
            self.created_index,
            self.modified_index,
            go_quote(&self.expire_time),
            go_quote(&self.value)
        );
        match &self.children {
            None => out.push_str("null"),
            Some(ch) => {
                out.push('{');
                for (i, (k, v)) in ch.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&go_quote(k));
                    out.push(':');
                    v.write_go_json(out);
                }
                out.push('}');
            }
        }
        out.push('}');
    }

    fn from_json(v: &Value, path_hint: &str) -> Node {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let u = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let path = s("Path").unwrap_or_else(|| path_hint.to_string());
        let children = match v.get("Children") {
            Some(Value::Object(m)) => Some(
                m.iter()
                    .map(|(k, c)| {
                        let hint = if path == "/" {
                            format!("/{k}")
                        } else {
                            format!("{path}/{k}")
                        };
                        (k.clone(), Node::from_json(c, &hint))
                    })
                    .collect(),
            ),
            _ => None,
        };
        Node {
            created_index: u("CreatedIndex"),
            modified_index: u("ModifiedIndex"),
            expire_time: s("ExpireTime").unwrap_or_else(|| GO_ZERO_TIME.to_string()),
            value: s("Value").unwrap_or_default(),
            children,
            path,
        }
    }
}

/// A user v2 key or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Entry {
    pub path: String,
    pub dir: bool,
    pub value: String,
    /// `None` when permanent.
    pub expire_time: Option<String>,
    pub created_index: u64,
}

/// A member as recorded under `/0/members/<hex id>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreMember {
    pub id: u64,
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
    /// From `attributes` (absent until the member published).
    pub name: Option<String>,
    pub client_urls: Vec<String>,
}

/// The parsed v2 store.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: Node,
    pub current_index: u64,
    pub current_version: u64,
    /// The whole document, for fields this model does not cover.
    pub raw: Value,
}

/// Parse the v2 store JSON (tolerant: missing or unexpected fields take defaults).
pub fn parse_store(json: &[u8]) -> Result<Store> {
    let raw: Value = serde_json::from_slice(json)
        .map_err(|e| DiskError::Invalid(format!("v2 store: invalid JSON: {e}")))?;
    let root = match raw.get("Root") {
        Some(r @ Value::Object(_)) => Node::from_json(r, "/"),
        _ => return Err(DiskError::Invalid("v2 store: no Root node".into())),
    };
    Ok(Store {
        root,
        current_index: raw.get("CurrentIndex").and_then(Value::as_u64).unwrap_or(0),
        current_version: raw
            .get("CurrentVersion")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        raw,
    })
}

/// Parse the v2 store of a `.snap` file (its `data`), naming the file in errors.
pub fn parse_store_of(path: &Path, data: &[u8]) -> Result<Store> {
    parse_store(data).map_err(|e| DiskError::corrupt(path, 0, e.to_string()))
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('_')
}

fn collect(n: &Node, out: &mut Vec<V2Entry>) {
    if let Some(ch) = &n.children {
        for c in ch.values() {
            out.push(V2Entry {
                path: c.path.clone(),
                dir: c.is_dir(),
                value: c.value.clone(),
                expire_time: (!c.is_permanent()).then(|| c.expire_time.clone()),
                created_index: c.created_index,
            });
            collect(c, out);
        }
    }
}

impl Store {
    /// Every key and directory below `/1` (user v2 data) and `/2` (v2 auth), depth first in
    /// name order; hidden nodes included.
    pub fn user_entries(&self) -> Vec<V2Entry> {
        let mut out = Vec::new();
        for top in ["1", "2"] {
            if let Some(n) = self.root.child(top) {
                collect(n, &mut out);
            }
        }
        out
    }

    /// etcd 3.5/3.6 `IsMetaStoreOnly` (spec §4.2): true iff every non-hidden child of the
    /// root other than `0` has no non-hidden children.
    pub fn is_meta_store_only(&self) -> bool {
        let Some(ch) = &self.root.children else {
            return true;
        };
        ch.iter()
            .filter(|(k, _)| !is_hidden(k) && k.as_str() != "0")
            .all(|(_, n)| {
                n.children
                    .as_ref()
                    .map_or(true, |c| c.keys().all(|k| is_hidden(k)))
            })
    }

    /// Members under `/0/members` (sorted by ID). Unparseable entries are skipped.
    pub fn members(&self) -> Vec<StoreMember> {
        let mut out = Vec::new();
        let Some(ms) = self
            .root
            .get("/0/members")
            .and_then(|n| n.children.as_ref())
        else {
            return out;
        };
        for (hex, dir) in ms {
            let Ok(id) = u64::from_str_radix(hex, 16) else {
                continue;
            };
            let mut m = StoreMember {
                id,
                ..Default::default()
            };
            if let Some(v) = dir
                .child("raftAttributes")
                .and_then(|n| serde_json::from_str::<Value>(&n.value).ok())
            {
                m.peer_urls = str_list(v.get("peerURLs"));
                m.is_learner = v.get("isLearner").and_then(Value::as_bool).unwrap_or(false);
            }
            if let Some(v) = dir
                .child("attributes")
                .and_then(|n| serde_json::from_str::<Value>(&n.value).ok())
            {
                m.name = v.get("name").and_then(Value::as_str).map(str::to_string);
                m.client_urls = str_list(v.get("clientURLs"));
            }
            out.push(m);
        }
        out.sort_by_key(|m| m.id);
        out
    }

    /// IDs under `/0/removed_members`.
    pub fn removed_members(&self) -> Vec<u64> {
        self.root
            .get("/0/removed_members")
            .and_then(|n| n.children.as_ref())
            .map(|c| {
                c.keys()
                    .filter_map(|k| u64::from_str_radix(k, 16).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `/0/version` (e.g. `3.4.0`), if set.
    pub fn cluster_version(&self) -> Option<String> {
        self.root
            .get("/0/version")
            .filter(|n| !n.is_dir())
            .map(|n| n.value.clone())
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn dir_node(path: &str, index: u64) -> Node {
    Node {
        path: path.to_string(),
        created_index: index,
        modified_index: index,
        expire_time: GO_ZERO_TIME.to_string(),
        value: String::new(),
        children: Some(BTreeMap::new()),
    }
}

/// The v2 store JSON etcd's `snapshot restore` writes into the `.snap` (spec §7.3 step 5), byte
/// for byte: a fresh store in which `/0/members/<hex id>/raftAttributes` is created for each
/// member in ID order (index i = 1..N). `members` must be sorted by ID.
pub fn restore_store_json(members: &[Member]) -> String {
    let n = members.len() as u64;
    let mut root = dir_node("/", 0);
    let mut zero = dir_node("/0", 0);
    let one = dir_node("/1", 0);
    let mut events: Vec<String> = Vec::new();
    if !members.is_empty() {
        let mut ms = dir_node("/0/members", 1);
        for (i, m) in members.iter().enumerate() {
            let idx = i as u64 + 1;
            let hex = format_id_short(m.id);
            let dpath = format!("/0/members/{hex}");
            let kpath = format!("{dpath}/raftAttributes");
            let val = m.raft_attributes_json();
            let mut d = dir_node(&dpath, idx);
            let key = Node {
                path: kpath.clone(),
                created_index: idx,
                modified_index: idx,
                expire_time: GO_ZERO_TIME.to_string(),
                value: val.clone(),
                children: None,
            };
            if let Some(c) = d.children.as_mut() {
                c.insert("raftAttributes".into(), key);
            }
            if let Some(c) = ms.children.as_mut() {
                c.insert(hex, d);
            }
            events.push(format!(
                "{{\"action\":\"create\",\"node\":{{\"key\":{},\"value\":{},\"modifiedIndex\":{idx},\"createdIndex\":{idx}}}}}",
                go_quote(&kpath),
                go_quote(&val)
            ));
        }
        if let Some(c) = zero.children.as_mut() {
            c.insert("members".into(), ms);
        }
    }
    if let Some(c) = root.children.as_mut() {
        c.insert("0".into(), zero);
        c.insert("1".into(), one);
    }
    // Event queue: a ring of 1000 slots.
    let cap = EVENT_HISTORY_CAPACITY;
    let mut slots: Vec<Option<&String>> = vec![None; cap as usize];
    for (i, e) in events.iter().enumerate() {
        if let Some(s) = slots.get_mut(i % cap as usize) {
            *s = Some(e);
        }
    }
    let size = n.min(cap);
    let back = n % cap;
    let front = if n > cap { n % cap } else { 0 };
    let start_index = if n == 0 {
        0
    } else if n > cap {
        n - cap + 1
    } else {
        1
    };
    let mut out = String::with_capacity(8192);
    out.push_str("{\"Root\":");
    root.write_go_json(&mut out);
    out.push_str(",\"WatcherHub\":{\"EventHistory\":{\"Queue\":{\"Events\":[");
    for (i, s) in slots.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(s.map_or("null", |e| e.as_str()));
    }
    let _ = write!(
        out,
        "],\"Size\":{size},\"Front\":{front},\"Back\":{back},\"Capacity\":{cap}}},\"StartIndex\":{start_index},\"LastIndex\":{n}}}}},\"CurrentIndex\":{n},\"Stats\":{{\"getsSuccess\":0,\"getsFail\":0,\"setsSuccess\":0,\"setsFail\":0,\"deleteSuccess\":0,\"deleteFail\":0,\"updateSuccess\":0,\"updateFail\":0,\"createSuccess\":{n},\"createFail\":0,\"compareAndSwapSuccess\":0,\"compareAndSwapFail\":0,\"compareAndDeleteSuccess\":0,\"compareAndDeleteFail\":0,\"expireCount\":0,\"watchers\":0}},\"CurrentVersion\":2}}"
    );
    out
}

/// The whole `.snap` (as a `raftpb.Snapshot`) that restore writes for `members` (sorted by
/// ID): data = [`restore_store_json`], metadata {conf_state voters = IDs, index N, term 1}.
pub fn restore_snapshot(members: &[Member]) -> crate::proto::RaftSnapshot {
    use crate::proto::{ConfState, RaftSnapshot, SnapshotMetadata};
    RaftSnapshot {
        data: Some(restore_store_json(members).into_bytes()),
        metadata: SnapshotMetadata {
            conf_state: ConfState {
                voters: members.iter().map(|m| m.id).collect(),
                ..Default::default()
            },
            index: members.len() as u64,
            term: 1,
        },
    }
}

/// Quote a string exactly as Go's `encoding/json` (Go ≤ 1.21, HTML-safe) does: `"` and `\`
/// backslash-escaped; `\n`, `\r`, `\t` short forms; other control bytes, `<`, `>`, `&`,
/// U+2028 and U+2029 as `\u00XX`/`\u20XX` (lowercase hex). Rust strings are valid UTF-8, so
/// Go's U+FFFD replacement of invalid bytes does not arise here.
pub fn go_quote(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 15] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::membership::bootstrap;
    use sha2::{Digest, Sha256};

    #[test]
    fn restore_snap_vector() {
        let c = bootstrap(
            "b",
            "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380",
            "http://10.0.0.2:2380",
            "tt",
        )
        .unwrap();
        let bytes = crate::snap::encode_snap(&restore_snapshot(&c.members));
        assert_eq!(bytes.len(), 7558);
        let h: String = Sha256::digest(&bytes)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        assert_eq!(
            h,
            "2430eed83f796d44cbc10439a5f6f645abd639285cec06e89b9e2ebabfd75697"
        );
        // and it parses back
        let s = parse_store(restore_store_json(&c.members).as_bytes()).unwrap();
        assert!(s.is_meta_store_only());
        assert_eq!(s.current_index, 3);
        let ms = s.members();
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[0].peer_urls, vec!["http://10.0.0.3:2380".to_string()]);
        assert!(s.user_entries().is_empty());
    }

    #[test]
    fn meta_store_only_rules() {
        let mk = |root: &str| parse_store(format!("{{\"Root\":{root}}}").as_bytes()).unwrap();
        let node = |p: &str, ch: &str| {
            format!("{{\"Path\":\"{p}\",\"CreatedIndex\":0,\"ModifiedIndex\":0,\"ExpireTime\":\"0001-01-01T00:00:00Z\",\"Value\":\"\",\"Children\":{ch}}}")
        };
        let key = |p: &str| node(p, "null");
        let empty = mk(&node(
            "/",
            &format!("{{\"0\":{},\"1\":{}}}", node("/0", "{}"), node("/1", "{}")),
        ));
        assert!(empty.is_meta_store_only());
        let user = mk(&node(
            "/",
            &format!(
                "{{\"0\":{},\"1\":{}}}",
                node("/0", "{}"),
                node("/1", &format!("{{\"a\":{}}}", key("/1/a")))
            ),
        ));
        assert!(!user.is_meta_store_only());
        assert_eq!(user.user_entries().len(), 1);
        let hidden = mk(&node(
            "/",
            &format!(
                "{{\"1\":{}}}",
                node("/1", &format!("{{\"_h\":{}}}", key("/1/_h")))
            ),
        ));
        assert!(hidden.is_meta_store_only());
        let hidden_top = mk(&node(
            "/",
            &format!(
                "{{\"_x\":{}}}",
                node("/_x", &format!("{{\"a\":{}}}", key("/_x/a")))
            ),
        ));
        assert!(hidden_top.is_meta_store_only());
        let auth = mk(&node(
            "/",
            &format!(
                "{{\"2\":{}}}",
                node("/2", &format!("{{\"users\":{}}}", node("/2/users", "{}")))
            ),
        ));
        assert!(!auth.is_meta_store_only());
        assert!(parse_store(b"[]").is_err());
        assert!(parse_store(b"{").is_err());
    }

    #[test]
    fn quote_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("<&>\n\u{1}\u{8}\u{c}"),
            r#""\u003c\u0026\u003e\n\u0001\u0008\u000c""#
        );
        assert_eq!(go_quote("é\u{2028}"), "\"é\\u2028\"");
    }
}
