//! `/etc/etcd.env` and `/etc/default/etcd` style files: `KEY=VALUE` lines, `#` comments, an
//! optional `export ` prefix, values optionally in single or double quotes.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The parsed settings of an env file, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    pub vars: BTreeMap<String, String>,
}

impl EnvFile {
    pub fn load(path: &Path) -> Result<EnvFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                Error::bad_input
            } else {
                Error::io
            };
            kind(format!("cannot read --env-file {}: {e}", path.display()))
        })?;
        Self::parse(&text).map_err(|e| e.context(format!("--env-file {}", path.display())))
    }

    pub fn parse(text: &str) -> Result<EnvFile> {
        let mut vars = BTreeMap::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line
                .strip_prefix("export ")
                .map(str::trim_start)
                .unwrap_or(line);
            let Some((k, v)) = line.split_once('=') else {
                return Err(Error::bad_input(format!(
                    "line {}: expected KEY=VALUE",
                    n + 1
                )));
            };
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::bad_input(format!("line {}: bad key {k:?}", n + 1)));
            }
            vars.insert(k.to_string(), unquote(v.trim()));
        }
        Ok(EnvFile { vars })
    }

    /// A non-empty value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn unquote(v: &str) -> String {
    let b = v.as_bytes();
    if b.len() >= 2
        && ((b[0] == b'"' && b[b.len() - 1] == b'"') || (b[0] == b'\'' && b[b.len() - 1] == b'\''))
    {
        let inner = &v[1..v.len() - 1];
        if b[0] == b'"' {
            return inner.replace("\\\"", "\"").replace("\\\\", "\\");
        }
        return inner.to_string();
    }
    // Unquoted: a trailing ` # comment` is not part of the value.
    match v.find(" #") {
        Some(i) => v[..i].trim_end().to_string(),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_etcd_env_files() {
        let f = EnvFile::parse(
            "# kubespray style\nETCD_NAME=etcd1\nexport ETCD_DATA_DIR=\"/var/lib/etcd\"\n\
             ETCD_INITIAL_CLUSTER='etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380'\n\
             ETCD_INITIAL_CLUSTER_TOKEN=k8s_etcd # token\nEMPTY=\n",
        )
        .unwrap();
        assert_eq!(f.get("ETCD_NAME"), Some("etcd1"));
        assert_eq!(f.get("ETCD_DATA_DIR"), Some("/var/lib/etcd"));
        assert_eq!(
            f.get("ETCD_INITIAL_CLUSTER"),
            Some("etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380")
        );
        assert_eq!(f.get("ETCD_INITIAL_CLUSTER_TOKEN"), Some("k8s_etcd"));
        assert_eq!(f.get("EMPTY"), None);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            EnvFile::parse("just words").unwrap_err().exit_code().code(),
            3
        );
        assert_eq!(EnvFile::parse("A B=1").unwrap_err().exit_code().code(), 3);
    }
}
