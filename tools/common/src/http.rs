//! A minimal HTTP/1.1 GET over tokio (plain) or tokio-rustls (TLS with the etcdctl CA and
//! client certificate), for etcd's `/version` and v2 `/v2/keys` endpoints (etcd-detect-version,
//! and [`crate::v2`]'s probe that etcd-snap save also asks). Hand-rolled:
//! two GETs do not justify an HTTP client stack, and it reuses the rustls (ring) that
//! etcd-client's TLS already brings in. Handles `Content-Length`, chunked bodies and
//! `Connection: close`; bodies are capped.

use crate::conn::ConnConfig;
use crate::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest body read (the v2 tree of a big cluster can be large, but not this large).
pub const MAX_BODY: usize = 256 << 20;

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Split `http(s)://host:port[/...]` into (tls, host, port).
pub fn split_url(url: &str) -> Result<(bool, String, u16)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        (false, url)
    };
    let hostport = rest.split('/').next().unwrap_or(rest);
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h
            .split_once(']')
            .ok_or_else(|| Error::usage(format!("invalid endpoint {url}")))?;
        (h.to_string(), p.strip_prefix(':').unwrap_or(""))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hostport.to_string(), ""),
        }
    };
    let port = if port.is_empty() {
        2379
    } else {
        port.parse()
            .map_err(|_| Error::usage(format!("invalid port in endpoint {url}")))?
    };
    if host.is_empty() {
        return Err(Error::usage(format!("invalid endpoint {url}")));
    }
    Ok((tls, host, port))
}

fn tls_config(cfg: &ConnConfig) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("tls: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    let tls = cfg.tls.as_ref();
    let Some(ca) = tls.and_then(|t| t.cacert.as_ref()) else {
        return Err(Error::usage(
            "an https endpoint needs --cacert (ETCDCTL_CACERT) to verify the server",
        ));
    };
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| Error::usage(format!("cannot read --cacert {}: {e}", ca.display())))?;
    for c in certs {
        let c = c.map_err(|e| Error::usage(format!("--cacert {}: {e}", ca.display())))?;
        roots
            .add(c)
            .map_err(|e| Error::usage(format!("--cacert {}: {e}", ca.display())))?;
    }
    let b = builder.with_root_certificates(roots);
    match tls.and_then(|t| t.cert.as_ref().zip(t.key.as_ref())) {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect())
                .map_err(|e| Error::usage(format!("--cert {}: {e}", cert.display())))?;
            let k = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Error::usage(format!("--key {}: {e}", key.display())))?;
            b.with_client_auth_cert(chain, k)
                .map_err(|e| Error::usage(format!("--cert/--key: {e}")))
        }
        None => Ok(b.with_no_client_auth()),
    }
}

/// GET `path` from the endpoint `base` (`http(s)://host:port`) within `timeout`.
pub async fn get(cfg: &ConnConfig, base: &str, path: &str, timeout: Duration) -> Result<Response> {
    let what = format!("GET {}{path}", base.trim_end_matches('/'));
    match tokio::time::timeout(timeout, get_inner(cfg, base, path)).await {
        Ok(r) => r.map_err(|e| e.context(&what)),
        Err(_) => Err(Error::unreachable(format!(
            "{what}: deadline exceeded after {}",
            crate::duration::display(timeout)
        ))),
    }
}

async fn get_inner(cfg: &ConnConfig, base: &str, path: &str) -> Result<Response> {
    let (tls, host, port) = split_url(base)?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| Error::unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: etcd-rescue\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if let Some((u, p)) = &cfg.user {
        req.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(format!("{u}:{p}").as_bytes())
        ));
    }
    req.push_str("\r\n");
    if tls {
        let conf = tls_config(cfg)?;
        let name = ServerName::try_from(host.clone())
            .map_err(|e| Error::usage(format!("invalid server name {host}: {e}")))?;
        let conn = tokio_rustls::TlsConnector::from(Arc::new(conf));
        let s = conn
            .connect(name, tcp)
            .await
            .map_err(|e| Error::unreachable(format!("tls: {e}")))?;
        exchange(s, req.as_bytes()).await
    } else {
        exchange(tcp, req.as_bytes()).await
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, req: &[u8]) -> Result<Response> {
    s.write_all(req)
        .await
        .map_err(|e| Error::unreachable(e.to_string()))?;
    s.flush()
        .await
        .map_err(|e| Error::unreachable(e.to_string()))?;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(buf.get(..n).unwrap_or(&[]));
                if raw.len() > MAX_BODY {
                    return Err(Error::bad_input(format!(
                        "response larger than {MAX_BODY} bytes"
                    )));
                }
            }
            // A TLS peer closing without close_notify after a complete response is common.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(Error::unreachable(e.to_string())),
        }
    }
    parse_response(&raw)
}

/// Parse a complete HTTP/1.x response (status line, headers, body by length or chunks).
pub fn parse_response(raw: &[u8]) -> Result<Response> {
    let bad = |m: &str| Error::bad_input(format!("malformed HTTP response: {m}"));
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(raw.get(..head_end).unwrap_or(&[]))
        .map_err(|_| bad("headers are not UTF-8"))?;
    let body = raw.get(head_end + 4..).unwrap_or(&[]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    if !parts.next().unwrap_or("").starts_with("HTTP/1.") {
        return Err(bad("not HTTP/1.x"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse().ok();
            }
        }
    }
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(n) = length {
        body.get(..n)
            .ok_or_else(|| bad("body shorter than Content-Length"))?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(b.get(..eol)?).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        b = b.get(eol + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let b = [
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
            c.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(T.get(idx).copied().unwrap_or(b'=')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:2379").unwrap(),
            (false, "127.0.0.1".into(), 2379)
        );
        assert_eq!(
            split_url("https://[::1]:1/x").unwrap(),
            (true, "::1".into(), 1)
        );
        assert!(split_url("http://:1").is_err());
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        let r = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\n404 page not found\n").unwrap();
        assert_eq!(r.status, 404);
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
    }

    #[test]
    fn basic_auth() {
        assert_eq!(base64(b"root:pw"), "cm9vdDpwdw==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
