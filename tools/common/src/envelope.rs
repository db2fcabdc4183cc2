//! The JSON envelope: the one line every run writes to stdout, and the facts that tools pass on.
//!
//! ```json
//! {"v":1,"tool":"etcd-health","tool_version":"0.1.0","ok":true,"changed":false,
//!  "facts":{…},"data":{…},"warnings":[],"error":null}
//! ```

use crate::error::Error;
use crate::exit::ExitCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Write;

/// The envelope format version. Adding keys does not bump it.
pub const VERSION: u64 = 1;

/// Facts: the well-known keys tools read and add to (unknown keys are kept).
pub type Facts = Map<String, Value>;

/// Well-known fact keys.
pub mod keys {
    pub const ENDPOINTS: &str = "endpoints";
    pub const CLUSTER_ID: &str = "cluster_id";
    pub const MEMBER_ID: &str = "member_id";
    pub const ETCD_VERSION: &str = "etcd_version";
    pub const DATA_DIR: &str = "data_dir";
    pub const SNAPSHOT: &str = "snapshot";
    pub const BACKUP_METHOD: &str = "backup_method";
    pub const MEMBERS: &str = "members";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObj {
    pub kind: String,
    pub message: String,
    pub exit_code: i64,
}

impl From<&Error> for ErrorObj {
    fn from(e: &Error) -> Self {
        ErrorObj {
            kind: e.kind.as_str().to_string(),
            message: e.message.clone(),
            exit_code: e.exit_code().code() as i64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u64,
    pub tool: String,
    pub tool_version: String,
    pub ok: bool,
    pub changed: bool,
    #[serde(default)]
    pub facts: Facts,
    #[serde(default = "empty_object")]
    pub data: Value,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub error: Option<ErrorObj>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl Envelope {
    pub fn new(tool: &str, tool_version: &str) -> Self {
        Envelope {
            v: VERSION,
            tool: tool.to_string(),
            tool_version: tool_version.to_string(),
            ok: true,
            changed: false,
            facts: Facts::new(),
            data: Value::Object(Map::new()),
            warnings: Vec::new(),
            error: None,
        }
    }

    pub fn set_error(&mut self, e: &Error) {
        self.ok = false;
        self.error = Some(ErrorObj::from(e));
    }

    /// The exit code this envelope stands for.
    pub fn exit_code(&self) -> ExitCode {
        match (&self.error, self.ok) {
            // A failure that claims success (0) or no exit status at all is not passed on as
            // one: it is bad input (an upstream envelope that contradicts itself).
            (Some(e), false) if !(1..=255).contains(&e.exit_code) => ExitCode::BadInput,
            (None, false) => ExitCode::BadInput,
            (Some(e), _) => ExitCode::from_code(e.exit_code),
            (None, true) => ExitCode::Success,
        }
    }

    /// One line (or indented with `pretty`), newline-terminated.
    pub fn render(&self, pretty: bool) -> String {
        let s = if pretty {
            serde_json::to_string_pretty(self)
        } else {
            serde_json::to_string(self)
        };
        // Serializing plain maps, strings and numbers cannot fail; keep a valid line regardless.
        let mut s = s.unwrap_or_else(|e| {
            format!(
                "{{\"v\":1,\"tool\":{:?},\"ok\":false,\"changed\":false,\"facts\":{{}},\"data\":{{}},\"warnings\":[],\"error\":{{\"kind\":\"internal\",\"message\":{:?},\"exit_code\":1}}}}",
                self.tool,
                e.to_string()
            )
        });
        s.push('\n');
        s
    }

    /// Write to stdout. The only place in the toolkit that writes there.
    pub fn emit(&self, pretty: bool) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. `| head -0`) is not worth a panic; the exit code still tells.
        let _ = out.write_all(self.render(pretty).as_bytes());
        let _ = out.flush();
    }
}

/// Drop the userinfo (`user:password@`) from every URL in `facts.endpoints`, so that a secret
/// that came in from upstream is never passed on nor printed.
pub fn scrub_secrets(facts: &mut Facts) {
    if let Some(Value::Array(eps)) = facts.get_mut(keys::ENDPOINTS) {
        for e in eps.iter_mut() {
            if let Some(clean) = e.as_str().and_then(crate::conn::strip_userinfo) {
                *e = Value::String(clean);
            }
        }
    }
}

/// Merge `new` into `base`: top-level keys of `new` replace those of `base`; others are kept.
pub fn merge_facts(base: &mut Facts, new: Facts) {
    for (k, v) in new {
        base.insert(k, v);
    }
}

/// Parse an upstream envelope from stdin text: the last non-empty line that is a JSON object.
pub fn parse_upstream(text: &str) -> Result<Option<Envelope>, Error> {
    let Some(line) = text.lines().map(str::trim).rev().find(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(line)
        .map_err(|e| Error::bad_input(format!("stdin: not a JSON envelope: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::bad_input("stdin: not a JSON envelope: expected an object"))?;
    match obj.get("v").and_then(Value::as_u64) {
        Some(VERSION) => {}
        Some(other) => {
            return Err(Error::bad_input(format!(
                "stdin: envelope version {other} is not supported (this tool reads v{VERSION})"
            )))
        }
        None => {
            return Err(Error::bad_input(
                "stdin: not a JSON envelope: missing \"v\"",
            ))
        }
    }
    if !obj.get("ok").is_some_and(Value::is_boolean) {
        return Err(Error::bad_input(
            "stdin: not a JSON envelope: missing boolean \"ok\"",
        ));
    }
    if obj.get("facts").is_some_and(|f| !f.is_object()) {
        return Err(Error::bad_input(
            "stdin: envelope \"facts\" is not an object",
        ));
    }
    if let Some(Value::Object(facts)) = obj.get("facts") {
        check_fact_types(facts)?;
    }
    serde_json::from_value(v)
        .map(Some)
        .map_err(|e| Error::bad_input(format!("stdin: bad envelope: {e}")))
}

/// The well-known facts must have their documented types (null counts as absent): a tool that
/// ignored `"endpoints":"http://h:2379"` would silently connect somewhere else.
fn check_fact_types(facts: &Map<String, Value>) -> Result<(), Error> {
    let wrong = |key: &str, want: &str, got: &Value| {
        let kind = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        };
        Err(Error::bad_input(format!(
            "stdin: fact \"{key}\" must be {want}, not {kind}"
        )))
    };
    for (key, v) in facts {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            keys::ENDPOINTS => match v.as_array() {
                Some(a) if a.iter().all(Value::is_string) => {}
                _ => return wrong(key, "a list of URL strings", v),
            },
            keys::CLUSTER_ID
            | keys::MEMBER_ID
            | keys::ETCD_VERSION
            | keys::DATA_DIR
            | keys::BACKUP_METHOD
                if !v.is_string() =>
            {
                return wrong(key, "a string", v);
            }
            keys::SNAPSHOT => {
                let Some(o) = v.as_object() else {
                    return wrong(key, "an object", v);
                };
                for (k, want_str) in [
                    ("path", true),
                    ("sha256", true),
                    ("size_bytes", false),
                    ("revision", false),
                ] {
                    match o.get(k) {
                        None | Some(Value::Null) => {}
                        Some(x) if want_str && !x.is_string() => {
                            return wrong(&format!("snapshot.{k}"), "a string", x)
                        }
                        Some(x) if !want_str && !x.is_u64() => {
                            return wrong(&format!("snapshot.{k}"), "a non-negative integer", x)
                        }
                        _ => {}
                    }
                }
            }
            keys::MEMBERS => match v.as_array() {
                Some(a) if a.iter().all(Value::is_object) => {}
                _ => return wrong(key, "a list of member objects", v),
            },
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_one_line_with_all_keys() {
        let mut e = Envelope::new("etcd-x", "0.1.0");
        e.facts
            .insert("cluster_id".into(), json!("cdf818194e3a8c32"));
        let line = e.render(false);
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let v: Value = serde_json::from_str(&line).unwrap();
        for k in [
            "v",
            "tool",
            "tool_version",
            "ok",
            "changed",
            "facts",
            "data",
            "warnings",
            "error",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["error"], Value::Null);
    }

    #[test]
    fn upstream_parsing() {
        assert_eq!(parse_upstream("").unwrap(), None);
        assert_eq!(parse_upstream("\n  \n").unwrap(), None);
        assert_eq!(parse_upstream("nope").unwrap_err().exit_code().code(), 3);
        assert_eq!(parse_upstream("[1]").unwrap_err().exit_code().code(), 3);
        assert_eq!(
            parse_upstream(r#"{"v":2,"ok":true}"#)
                .unwrap_err()
                .exit_code()
                .code(),
            3
        );
        assert_eq!(
            parse_upstream(r#"{"v":1}"#).unwrap_err().exit_code().code(),
            3
        );
        let up = parse_upstream(
            r#"{"v":1,"tool":"a","tool_version":"1","ok":false,"changed":false,"facts":{"x":1},"error":{"kind":"unreachable","message":"m","exit_code":4}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(up.exit_code(), ExitCode::Unreachable);
        assert_eq!(up.facts["x"], json!(1));
    }

    #[test]
    fn merge_keeps_unknown_keys() {
        let mut base = Facts::new();
        base.insert("custom".into(), json!({"a":1}));
        base.insert("cluster_id".into(), json!("old"));
        let mut new = Facts::new();
        new.insert("cluster_id".into(), json!("new"));
        merge_facts(&mut base, new);
        assert_eq!(base["custom"], json!({"a":1}));
        assert_eq!(base["cluster_id"], json!("new"));
    }
}
