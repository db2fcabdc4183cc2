//! The v2 API's view of the v2 store: `GET /v2/keys/` (etcd-detect-version counts the whole
//! tree; etcd-snap save asks only the top level, to warn that a v3 snapshot leaves v2 data
//! out).

use crate::conn::ConnConfig;
use crate::http;
use crate::{Error, Result};
use serde_json::Value;
use std::time::Duration;

/// What `GET /v2/keys/` answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2Keys {
    /// The v2 API is served (HTTP 404 means it is not: etcd runs without `--enable-v2`).
    pub served: bool,
    /// User keys and dirs (only the top level unless recursive).
    pub keys: u64,
    pub dirs: u64,
    pub examples: Vec<String>,
    /// Why it could not be counted (a refusal, a connection error).
    pub error: Option<String>,
}

impl V2Keys {
    /// Any user v2 data seen.
    pub fn has_data(&self) -> bool {
        self.keys + self.dirs > 0
    }
}

/// `GET /v2/keys/` (`?recursive=true` when `recursive`) on the endpoint `ep`. A served body
/// that is not JSON is bad input; every other failure is in [`V2Keys::error`].
pub async fn probe(
    cfg: &ConnConfig,
    ep: &str,
    recursive: bool,
    examples: usize,
    timeout: Duration,
) -> Result<V2Keys> {
    let path = if recursive {
        "/v2/keys/?recursive=true"
    } else {
        "/v2/keys/"
    };
    let mut r = V2Keys::default();
    match http::get(cfg, ep, path, timeout).await {
        Ok(resp) if resp.status == 200 => {
            let v: Value = serde_json::from_slice(&resp.body)
                .map_err(|e| Error::bad_input(format!("GET {ep}/v2/keys: invalid JSON: {e}")))?;
            r.served = true;
            (r.keys, r.dirs, r.examples) = count_v2_tree(&v, examples);
        }
        Ok(resp) if resp.status == 404 => r.served = false,
        Ok(resp) => {
            // Served but refused (v2 auth): it is there, and we could not count.
            r.served = true;
            r.error = Some(format!(
                "GET /v2/keys: HTTP {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.body).trim()
            ));
        }
        Err(e) => r.error = Some(e.message),
    }
    Ok(r)
}

/// Count user keys and dirs in a v2 `GET /v2/keys/` answer (the whole tree when it was asked
/// with `?recursive=true`); collect examples.
pub fn count_v2_tree(body: &Value, max_examples: usize) -> (u64, u64, Vec<String>) {
    fn walk(n: &Value, keys: &mut u64, dirs: &mut u64, ex: &mut Vec<String>, max: usize) {
        if let Some(children) = n.get("nodes").and_then(Value::as_array) {
            for c in children {
                let dir = c.get("dir").and_then(Value::as_bool).unwrap_or(false);
                if dir {
                    *dirs += 1;
                } else {
                    *keys += 1;
                }
                if ex.len() < max {
                    if let Some(k) = c.get("key").and_then(Value::as_str) {
                        ex.push(if dir { format!("{k}/") } else { k.to_string() });
                    }
                }
                walk(c, keys, dirs, ex, max);
            }
        }
    }
    let (mut k, mut d, mut ex) = (0, 0, Vec::new());
    if let Some(node) = body.get("node") {
        walk(node, &mut k, &mut d, &mut ex, max_examples);
    }
    (k, d, ex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tree_counting() {
        let body = json!({"action":"get","node":{"dir":true,"nodes":[
            {"key":"/a","value":"1","modifiedIndex":5,"createdIndex":5},
            {"key":"/d","dir":true,"nodes":[{"key":"/d/b","value":"2"}]},
            {"key":"/e","dir":true}
        ]}});
        let (k, d, ex) = count_v2_tree(&body, 2);
        assert_eq!((k, d), (2, 2));
        assert_eq!(ex, vec!["/a", "/d/"]);
        assert_eq!(count_v2_tree(&json!({"node":{"dir":true}}), 5).0, 0);
        // The top level only (no "nodes" under /d): still data.
        let top = json!({"node":{"dir":true,"nodes":[{"key":"/d","dir":true}]}});
        assert!(V2Keys {
            dirs: count_v2_tree(&top, 0).1,
            ..Default::default()
        }
        .has_data());
    }
}
