//! Connection flags exactly as etcdctl names them, with `ETCDCTL_*` fallbacks.
//!
//! Precedence: explicit flag > upstream fact (`endpoints`) > environment (`ETCDCTL_*`, then
//! `--env-file`'s `ETCD_ADVERTISE_CLIENT_URLS`) > etcdctl's default.

use crate::duration;
use crate::envelope::{keys, Facts};
use crate::envfile::EnvFile;
use crate::error::{Error, ErrorKind, Result};
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "127.0.0.1:2379";
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    duration::parse(s)
}

/// The connection flags (flattened into every tool that talks to etcd). Global: flattened
/// into a tool's top-level Args, they go before or after its subcommand (etcd-rejoin).
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
#[command(next_help_heading = "Connection (as etcdctl)")]
pub struct ConnArgs {
    /// gRPC endpoints, comma separated [env: ETCDCTL_ENDPOINTS] [default: 127.0.0.1:2379]
    #[arg(long, global = true, value_name = "URLS", value_delimiter = ',')]
    pub endpoints: Option<Vec<String>>,
    /// Verify the servers' TLS certificates with this CA bundle [env: ETCDCTL_CACERT]
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client TLS certificate [env: ETCDCTL_CERT]
    #[arg(long, global = true, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client TLS key [env: ETCDCTL_KEY]
    #[arg(long, global = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// User name, or `name:password` [env: ETCDCTL_USER]
    #[arg(long, global = true, value_name = "NAME[:PASSWORD]")]
    pub user: Option<String>,
    /// Password of --user; prefer ETCDCTL_PASSWORD, which `ps` does not show [env: ETCDCTL_PASSWORD]
    #[arg(long, global = true, value_name = "PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Time to establish a connection [env: ETCDCTL_DIAL_TIMEOUT] [default: 2s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub dial_timeout: Option<Duration>,
    /// Time for one request to complete [env: ETCDCTL_COMMAND_TIMEOUT] [default: 5s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub command_timeout: Option<Duration>,
}

/// Client TLS material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The resolved connection settings.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnConfig {
    pub endpoints: Vec<String>,
    pub tls: Option<TlsPaths>,
    pub user: Option<(String, String)>,
    pub dial_timeout: Duration,
    pub command_timeout: Duration,
}

impl std::fmt::Debug for ConnConfig {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnConfig")
            .field("endpoints", &self.endpoints)
            .field("tls", &self.tls)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("dial_timeout", &self.dial_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

/// A source of environment variables (the process environment, or a table in tests).
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Env for std::collections::BTreeMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned().filter(|v| !v.is_empty())
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

fn env_duration(env: &dyn Env, key: &str) -> Result<Option<Duration>> {
    match env.var(key) {
        None => Ok(None),
        Some(v) => duration::parse(&v)
            .map(Some)
            .map_err(|e| Error::usage(format!("{key}: {e}"))),
    }
}

impl ConnArgs {
    /// Resolve flags, upstream facts, environment and defaults into one configuration.
    pub fn resolve(
        &self,
        facts: &Facts,
        env: &dyn Env,
        env_file: Option<&EnvFile>,
    ) -> Result<ConnConfig> {
        self.resolve_with(facts, env, env_file, &[])
    }

    /// [`resolve`](Self::resolve), with `recorded`: the client URLs a data dir records for
    /// its own member (what it advertised when it last started), tried after the environment
    /// (`ETCDCTL_ENDPOINTS`, the env file's `ETCD_ADVERTISE_CLIENT_URLS`) and before the
    /// default `127.0.0.1:2379`.
    pub fn resolve_with(
        &self,
        facts: &Facts,
        env: &dyn Env,
        env_file: Option<&EnvFile>,
        recorded: &[String],
    ) -> Result<ConnConfig> {
        let endpoints = if let Some(e) = self.endpoints.as_ref().filter(|e| !e.is_empty()) {
            e.iter().flat_map(|s| split_list(s)).collect()
        } else if let Some(arr) = facts.get(keys::ENDPOINTS).and_then(|v| v.as_array()) {
            arr.iter()
                .filter_map(|v| v.as_str())
                .map(String::from)
                .collect()
        } else if let Some(e) = env.var("ETCDCTL_ENDPOINTS") {
            split_list(&e)
        } else if let Some(e) = env_file.and_then(|f| f.get("ETCD_ADVERTISE_CLIENT_URLS")) {
            split_list(e)
        } else if !recorded.is_empty() {
            recorded.to_vec()
        } else {
            vec![DEFAULT_ENDPOINT.to_string()]
        };
        if endpoints.is_empty() {
            return Err(Error::usage("--endpoints: no endpoint given"));
        }
        for e in &endpoints {
            if let Some(clean) = strip_userinfo(e) {
                // etcdctl does not log in with it either; and it would end up in facts,
                // manifests and messages. The message never repeats the secret.
                return Err(Error::usage(format!(
                    "endpoint {clean} carries a user name or password (user:password@): refused; give --user and --password (or ETCDCTL_USER/ETCDCTL_PASSWORD) instead"
                )));
            }
        }
        let pick = |flag: &Option<PathBuf>, key: &str| {
            flag.clone().or_else(|| env.var(key).map(PathBuf::from))
        };
        let cacert = pick(&self.cacert, "ETCDCTL_CACERT");
        let cert = pick(&self.cert, "ETCDCTL_CERT");
        let key = pick(&self.key, "ETCDCTL_KEY");
        if cert.is_some() != key.is_some() {
            return Err(Error::usage("--cert and --key go together"));
        }
        let tls = (cacert.is_some() || cert.is_some()).then_some(TlsPaths { cacert, cert, key });
        let user_spec = self.user.clone().or_else(|| env.var("ETCDCTL_USER"));
        let user = match user_spec {
            None => None,
            Some(spec) => {
                let (name, inline_pw) = match spec.split_once(':') {
                    Some((n, p)) => (n.to_string(), Some(p.to_string())),
                    None => (spec, None),
                };
                if name.is_empty() {
                    return Err(Error::usage("--user: empty user name"));
                }
                let pw = self
                    .password
                    .clone()
                    .or(inline_pw)
                    .or_else(|| env.var("ETCDCTL_PASSWORD"));
                match pw {
                    Some(pw) => Some((name, pw)),
                    None => {
                        return Err(Error::usage(format!(
                            "--user {name}: no password (give name:password, --password or ETCDCTL_PASSWORD)"
                        )))
                    }
                }
            }
        };
        let dial_timeout = self
            .dial_timeout
            .or(env_duration(env, "ETCDCTL_DIAL_TIMEOUT")?)
            .unwrap_or(DEFAULT_DIAL_TIMEOUT);
        let command_timeout = self
            .command_timeout
            .or(env_duration(env, "ETCDCTL_COMMAND_TIMEOUT")?)
            .unwrap_or(DEFAULT_COMMAND_TIMEOUT);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(|e| {
                if e.contains("://") {
                    e
                } else {
                    format!("{scheme}://{e}")
                }
            })
            .collect();
        for e in &endpoints {
            check_endpoint(e)?;
        }
        Ok(ConnConfig {
            endpoints,
            tls,
            user,
            dial_timeout,
            command_timeout,
        })
    }
}

/// A usage error unless `url` is `http(s)://HOST[:PORT][/]` with a port in 1..=65535: a bad
/// port is named, never replaced by another (the URL parser under etcd-client would dial port
/// 80, or the port modulo 65536).
pub fn check_endpoint(url: &str) -> Result<()> {
    let bad = |why: String| Err(Error::usage(format!("endpoint {url}: {why}")));
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("expected http://HOST:PORT".into());
    };
    if !matches!(scheme, "http" | "https") {
        return bad(format!("scheme {scheme:?} is not http or https"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', ' ']) {
        return bad("expected http://HOST:PORT, without a path".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return bad("expected [IPv6]:PORT".into()),
            },
            None => return bad("unclosed '[' in the host".into()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return bad("no host".into());
    }
    if let Some(p) = port {
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => {}
            _ => return bad(format!("port {p:?} is not a number in 1..=65535")),
        }
    }
    Ok(())
}

/// The URL without its userinfo (`user:password@`), or `None` when it has none.
pub fn strip_userinfo(url: &str) -> Option<String> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..auth_end].rfind('@')?;
    let host_rest = &rest[at + 1..];
    Some(match scheme {
        Some(s) => format!("{s}://{host_rest}"),
        None => host_rest.to_string(),
    })
}

fn read_file(p: &PathBuf, what: &str) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::usage(format!("cannot read {what} {}: {e}", p.display())))
}

impl ConnConfig {
    /// etcd-client options for this configuration.
    pub fn options(&self) -> Result<ConnectOptions> {
        let mut o = ConnectOptions::new()
            .with_connect_timeout(self.dial_timeout)
            .with_timeout(self.command_timeout)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(6));
        if let Some((u, p)) = &self.user {
            o = o.with_user(u.clone(), p.clone());
        }
        if let Some(t) = &self.tls {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &t.cacert {
                tls = tls.ca_certificate(Certificate::from_pem(read_file(ca, "--cacert")?));
            }
            if let (Some(c), Some(k)) = (&t.cert, &t.key) {
                tls = tls.identity(Identity::from_pem(
                    read_file(c, "--cert")?,
                    read_file(k, "--key")?,
                ));
            }
            o = o.with_tls(tls);
        }
        Ok(o)
    }

    /// Connect to the given endpoints (a subset of, or all of, `self.endpoints`).
    ///
    /// The dial itself is lazy in etcd-client; errors surface on the first request, where
    /// [`etcd_error`] turns them into one-line `unreachable` errors.
    pub async fn connect(&self, endpoints: &[String]) -> Result<Client> {
        let what = endpoints.join(",");
        let fut = Client::connect(endpoints.to_vec(), Some(self.options()?));
        match tokio::time::timeout(self.dial_timeout + self.command_timeout, fut).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(etcd_error(e, format!("cannot connect to {what}"))),
            Err(_) => Err(Error::unreachable(format!(
                "cannot connect to {what}: deadline exceeded after {}",
                duration::display(self.dial_timeout + self.command_timeout)
            ))),
        }
    }

    /// Connect to all configured endpoints.
    pub async fn connect_all(&self) -> Result<Client> {
        self.connect(&self.endpoints.clone()).await
    }

    /// Run one request with the command timeout as an outer deadline.
    pub async fn call<T, F>(&self, what: impl std::fmt::Display, fut: F) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        match tokio::time::timeout(self.command_timeout + Duration::from_millis(500), fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(etcd_error(e, what)),
            Err(_) => Err(Error::unreachable(format!(
                "{what}: deadline exceeded after {}",
                duration::display(self.command_timeout)
            ))),
        }
    }

    /// Endpoints as a fact (`["http://…", …]`).
    pub fn endpoints_fact(&self) -> serde_json::Value {
        serde_json::Value::from(self.endpoints.clone())
    }
}

/// The useful words of an error chain, without repeats and without tonic's generic layers.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let t = err.to_string();
        let generic = matches!(
            t.as_str(),
            "transport error" | "error trying to connect" | "status: Unavailable"
        );
        if !generic && !parts.iter().any(|p| p == &t || p.ends_with(&t)) {
            parts.push(t);
        }
        cur = err.source();
    }
    join_dedup(&parts)
}

/// Join with `: `, dropping a part already contained in the one before or after it.
fn join_dedup(parts: &[String]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let next_contains = parts.get(i + 1).is_some_and(|n| n.contains(p.as_str()));
        let prev_contains = out.last().is_some_and(|l| l.contains(p.as_str()));
        if !next_contains && !prev_contains {
            out.push(p);
        }
    }
    out.join(": ")
}

/// Whether an etcd error message is one of its authentication failures.
pub fn is_auth_message(m: &str) -> bool {
    m.contains("authentication failed")
        || m.contains("invalid user ID or password")
        || m.contains("user name is empty")
        || m.contains("invalid auth token")
        || m.contains("permission denied")
        || m.contains("user name not found")
}

/// Turn an etcd-client error into a one-line tool error, prefixed with what was being done.
pub fn etcd_error(e: etcd_client::Error, what: impl std::fmt::Display) -> Error {
    use tonic::Code;
    let (kind, msg) = match &e {
        etcd_client::Error::GRpcStatus(s) => {
            let mut m = s.message().to_string();
            if let Some(src) = std::error::Error::source(s) {
                m = join_dedup(&[m, chain(src)]);
                m = m.trim_start_matches(": ").to_string();
            }
            if m.is_empty() {
                m = format!("{:?}", s.code());
            }
            let kind = match s.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                    ErrorKind::Unreachable
                }
                Code::Unauthenticated | Code::PermissionDenied => {
                    m = format!("authentication failed: {m}");
                    ErrorKind::Unreachable
                }
                // etcd answers a wrong password or an empty user name with InvalidArgument
                // (ErrGRPCAuthFailed, ErrGRPCUserEmpty): an auth failure, not a bad flag.
                Code::InvalidArgument if is_auth_message(&m) => {
                    if !m.contains("authentication failed") {
                        m = format!("authentication failed: {m}");
                    }
                    ErrorKind::Unreachable
                }
                Code::InvalidArgument | Code::OutOfRange => ErrorKind::Usage,
                _ => ErrorKind::CheckFailed,
            };
            (kind, m)
        }
        etcd_client::Error::TransportError(t) => (ErrorKind::Unreachable, chain(t)),
        etcd_client::Error::IoError(io) => (ErrorKind::Unreachable, io.to_string()),
        etcd_client::Error::InvalidUri(u) => (ErrorKind::Usage, format!("invalid endpoint: {u}")),
        etcd_client::Error::InvalidArgs(a) => (ErrorKind::Usage, a.clone()),
        other => (ErrorKind::Unreachable, other.to_string()),
    };
    Error::new(kind, format!("{what}: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn endpoints_are_checked_never_redialled() {
        for ok in [
            "http://127.0.0.1:2379",
            "https://etcd-0.example:2379/",
            "http://[::1]:2379",
            "http://host",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://h:99999",
            "http://h:0",
            "http://h:65536",
            "http://h:x1",
            "http://h:",
            "ftp://h:2379",
            "http://:2379",
            "http://h:2379/v3/kv",
            "http://[::1",
        ] {
            let e = check_endpoint(bad).unwrap_err();
            assert_eq!(e.exit_code().code(), 2, "{bad}");
            assert!(e.message.contains(bad), "{bad}: {}", e.message);
        }
        let e = ConnArgs {
            endpoints: Some(vec!["10.0.0.1:99999".into()]),
            ..Default::default()
        }
        .resolve(&Facts::new(), &env(&[]), None)
        .unwrap_err();
        assert!(e.message.contains("port \"99999\""), "{}", e.message);
    }

    #[test]
    fn defaults_are_etcdctls() {
        let c = ConnArgs::default()
            .resolve(&Facts::new(), &env(&[]), None)
            .unwrap();
        assert_eq!(c.endpoints, vec!["http://127.0.0.1:2379"]);
        assert_eq!(c.dial_timeout, Duration::from_secs(2));
        assert_eq!(c.command_timeout, Duration::from_secs(5));
        assert!(c.tls.is_none() && c.user.is_none());
    }

    #[test]
    fn precedence_flag_fact_env_envfile() {
        let e = env(&[("ETCDCTL_ENDPOINTS", "10.0.0.9:2379")]);
        let ef = EnvFile::parse("ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.8:2379").unwrap();
        let mut facts = Facts::new();
        assert_eq!(
            ConnArgs::default()
                .resolve(&facts, &env(&[]), Some(&ef))
                .unwrap()
                .endpoints,
            vec!["https://10.0.0.8:2379"]
        );
        assert_eq!(
            ConnArgs::default()
                .resolve(&facts, &e, Some(&ef))
                .unwrap()
                .endpoints,
            vec!["http://10.0.0.9:2379"]
        );
        facts.insert(
            "endpoints".into(),
            serde_json::json!(["http://10.0.0.7:2379"]),
        );
        assert_eq!(
            ConnArgs::default()
                .resolve(&facts, &e, Some(&ef))
                .unwrap()
                .endpoints,
            vec!["http://10.0.0.7:2379"]
        );
        let a = ConnArgs {
            endpoints: Some(vec!["a:1,b:2".into()]),
            ..Default::default()
        };
        assert_eq!(
            a.resolve(&facts, &e, Some(&ef)).unwrap().endpoints,
            vec!["http://a:1", "http://b:2"]
        );
    }

    #[test]
    fn recorded_urls_after_the_environment_before_the_default() {
        let rec = vec!["http://127.0.3.1:2379".to_string()];
        let none = Facts::new();
        let r = |e: &dyn Env, ef: Option<&EnvFile>| {
            ConnArgs::default()
                .resolve_with(&none, e, ef, &rec)
                .unwrap()
                .endpoints
        };
        assert_eq!(r(&env(&[]), None), vec!["http://127.0.3.1:2379"]);
        let ef = EnvFile::parse("ETCD_ADVERTISE_CLIENT_URLS=http://10.0.0.8:2379").unwrap();
        assert_eq!(r(&env(&[]), Some(&ef)), vec!["http://10.0.0.8:2379"]);
        assert_eq!(
            r(&env(&[("ETCDCTL_ENDPOINTS", "10.0.0.9:2379")]), None),
            vec!["http://10.0.0.9:2379"]
        );
        assert_eq!(
            ConnArgs::default()
                .resolve_with(&none, &env(&[]), None, &[])
                .unwrap()
                .endpoints,
            vec![format!("http://{DEFAULT_ENDPOINT}")]
        );
    }

    #[test]
    fn tls_makes_https_and_needs_cert_with_key() {
        let e = env(&[("ETCDCTL_CACERT", "/ca.pem")]);
        let c = ConnArgs::default()
            .resolve(&Facts::new(), &e, None)
            .unwrap();
        assert_eq!(c.endpoints, vec!["https://127.0.0.1:2379"]);
        let bad = ConnArgs {
            cert: Some("/c.pem".into()),
            ..Default::default()
        };
        assert_eq!(
            bad.resolve(&Facts::new(), &env(&[]), None)
                .unwrap_err()
                .exit_code()
                .code(),
            2
        );
    }

    #[test]
    fn user_and_password_sources_and_no_leak() {
        let a = ConnArgs {
            user: Some("root:s3cret".into()),
            ..Default::default()
        };
        let c = a.resolve(&Facts::new(), &env(&[]), None).unwrap();
        assert_eq!(c.user, Some(("root".into(), "s3cret".into())));
        assert!(!format!("{c:?}").contains("s3cret"));
        let e = env(&[("ETCDCTL_USER", "root"), ("ETCDCTL_PASSWORD", "pw")]);
        let c = ConnArgs::default()
            .resolve(&Facts::new(), &e, None)
            .unwrap();
        assert_eq!(c.user, Some(("root".into(), "pw".into())));
        let e = env(&[("ETCDCTL_USER", "root")]);
        let err = ConnArgs::default()
            .resolve(&Facts::new(), &e, None)
            .unwrap_err();
        assert_eq!(err.exit_code().code(), 2);
    }

    #[test]
    fn userinfo_in_an_endpoint_is_refused_without_echoing_it() {
        assert_eq!(
            strip_userinfo("http://root:pw@h:2379/x").as_deref(),
            Some("http://h:2379/x")
        );
        assert_eq!(strip_userinfo("root:pw@h:2379").as_deref(), Some("h:2379"));
        assert_eq!(strip_userinfo("https://h:2379/a@b"), None);
        assert_eq!(strip_userinfo("h:2379"), None);
        for (flag, envv) in [
            (Some("http://root:Pw1@h:2379"), None),
            (None, Some("h:1,user@h:2379")),
        ] {
            let a = ConnArgs {
                endpoints: flag.map(|f| vec![f.to_string()]),
                ..Default::default()
            };
            let env = env(&envv
                .map(|e| vec![("ETCDCTL_ENDPOINTS", e)])
                .unwrap_or_default());
            let e = a.resolve(&Facts::new(), &env, None).unwrap_err();
            assert_eq!(e.exit_code().code(), 2, "{e}");
            assert!(
                !e.message.contains("Pw1") && !e.message.contains("user@"),
                "{e}"
            );
            assert!(e.message.contains("h:2379"), "{e}");
        }
    }

    #[test]
    fn timeouts_from_env() {
        let e = env(&[
            ("ETCDCTL_DIAL_TIMEOUT", "500ms"),
            ("ETCDCTL_COMMAND_TIMEOUT", "1m"),
        ]);
        let c = ConnArgs::default()
            .resolve(&Facts::new(), &e, None)
            .unwrap();
        assert_eq!(c.dial_timeout, Duration::from_millis(500));
        assert_eq!(c.command_timeout, Duration::from_secs(60));
        let e = env(&[("ETCDCTL_DIAL_TIMEOUT", "soon")]);
        assert_eq!(
            ConnArgs::default()
                .resolve(&Facts::new(), &e, None)
                .unwrap_err()
                .exit_code()
                .code(),
            2
        );
    }
}
