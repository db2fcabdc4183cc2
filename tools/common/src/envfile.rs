//! `/etc/etcd.env` and `/etc/default/etcd` style files: `KEY=VALUE` lines, `#` comments, an
//! optional `export ` prefix, values optionally in single or double quotes.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// An env file is a few hundred bytes; one larger than this is not one (`/dev/zero` would
/// otherwise be read until memory runs out).
pub const MAX_ENV_FILE_BYTES: u64 = 1 << 20;

/// The bytes of the regular file `path` (symlinks followed: config files are often links), at
/// most `max`: a FIFO, device or socket is refused without blocking on it (opened
/// `O_NONBLOCK`), and a larger file is refused rather than read without bound. `what` names
/// the flag in messages. Missing or not regular: bad input (3); a read error: I/O (6).
pub fn read_regular_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                Error::bad_input
            } else {
                Error::io
            };
            kind(format!("cannot read {what} {shown}: {e}"))
        })?;
    let md = f
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {what} {shown}: {e}")))?;
    if !md.is_file() {
        return Err(Error::bad_input(format!(
            "{what} {shown}: not a regular file"
        )));
    }
    if md.len() > max {
        return Err(Error::bad_input(format!(
            "{what} {shown}: {} bytes, more than {max}",
            md.len()
        )));
    }
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(format!("cannot read {what} {shown}: {e}")))?;
    if buf.len() as u64 > max {
        return Err(Error::bad_input(format!(
            "{what} {shown}: more than {max} bytes"
        )));
    }
    Ok(buf)
}

/// The parsed settings of an env file, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    pub vars: BTreeMap<String, String>,
}

impl EnvFile {
    pub fn load(path: &Path) -> Result<EnvFile> {
        let text = read_regular_bounded(path, MAX_ENV_FILE_BYTES, "--env-file")?;
        let text = String::from_utf8(text).map_err(|_| {
            Error::bad_input(format!("--env-file {}: not UTF-8 text", path.display()))
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
    #[test]
    fn bounded_regular_files_only() {
        let d = std::env::temp_dir().join(format!("envfile-bound-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        // A device: refused, not read (would grow without bound).
        let e = EnvFile::load(Path::new("/dev/zero")).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        assert_eq!(e.exit_code().code(), 3);
        // A FIFO with no writer: refused at once, no block.
        let fifo = d.join("fifo.env");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t = std::time::Instant::now();
        let e = EnvFile::load(&fifo).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // Too big.
        let big = d.join("big.env");
        std::fs::write(&big, vec![b'#'; (MAX_ENV_FILE_BYTES + 1) as usize]).unwrap();
        let e = EnvFile::load(&big).unwrap_err();
        assert!(e.message.contains("more than"), "{}", e.message);
        // A symlink to a good file is read (config files are often links).
        let good = d.join("good.env");
        std::fs::write(&good, "ETCD_NAME=m0\n").unwrap();
        let link = d.join("link.env");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert_eq!(EnvFile::load(&link).unwrap().get("ETCD_NAME"), Some("m0"));
        std::fs::remove_dir_all(&d).unwrap();
    }

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
