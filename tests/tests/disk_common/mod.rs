//! Shared by `disk_raft.rs` and `disk_bolt.rs`: write a known data set into a real cluster
//! (v2 keys and dirs over HTTP, v3 puts/overwrites, a deleted key, a lease, a txn, values large
//! enough for overflow pages and WAL segment cuts), take what etcd serves, and read the latest
//! state of every key back from a bbolt `db` with etcd-disk.
#![allow(dead_code, clippy::unwrap_used)]

use anyhow::{bail, Context, Result};
use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};
use etcd_disk::bolt::BoltDb;
use etcd_disk::proto::KeyValue;
use etcd_rescue_tests::{fill_k8s_like, Cluster};
use prost::Message;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// How much to write.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Values of 1,000,000 bytes (`/registry/pods/...` keys): 70 give a second WAL segment.
    pub big: usize,
    /// Values of 5-9 KiB (overflow pages).
    pub medium: usize,
    /// Small keys written one put each (raft entries: drive `.snap` files).
    pub small_puts: usize,
    /// Small keys written 100 per txn (multi-level bbolt trees).
    pub small_txn: usize,
    /// Write v2 keys and dirs (the cluster must run with `enable_v2`).
    pub v2: bool,
}

/// What `populate` wrote that the checks look for.
#[derive(Debug, Default)]
pub struct Written {
    /// v2 keys (path below the v2 root, value) that must exist.
    pub v2_keys: Vec<(String, String)>,
    /// v2 dirs that must exist.
    pub v2_dirs: Vec<String>,
    /// v2 keys that were deleted.
    pub v2_deleted: Vec<String>,
    /// The lease granted.
    pub lease: i64,
    /// v3 keys that were deleted.
    pub v3_deleted: Vec<String>,
    /// Number of v3 puts issued (including txn puts counted once per txn).
    pub v3_puts: usize,
}

/// `application/x-www-form-urlencoded` value.
fn form_encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// One HTTP/1.1 request to etcd's v2 API (`/v2/keys...`); returns the status code and body.
pub fn v2_http(client_url: &str, method: &str, path: &str, form: &str) -> Result<(u16, String)> {
    let hostport = client_url
        .strip_prefix("http://")
        .context("v2 over plain http only")?;
    let mut s = TcpStream::connect(hostport).with_context(|| format!("connect {hostport}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    s.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).to_string();
    let code: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad HTTP response: {text}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

fn v2_ok(url: &str, method: &str, key: &str, form: &str) -> Result<()> {
    let (code, body) = v2_http(url, method, &format!("/v2/keys{key}"), form)?;
    if !(200..300).contains(&code) {
        bail!("v2 {method} {key}: HTTP {code}: {body}");
    }
    Ok(())
}

/// Write the data set through member 0.
pub async fn populate(c: &Cluster, sz: Sizes) -> Result<Written> {
    let mut w = Written::default();
    let url = c.members[0].client_url.clone();
    if sz.v2 {
        let val = |v: &str| format!("value={}", form_encode(v));
        v2_ok(&url, "PUT", "/rescue/a", &val("one"))?;
        v2_ok(&url, "PUT", "/rescue/a", &val("two"))?;
        v2_ok(&url, "PUT", "/rescue/dir1", "dir=true")?;
        v2_ok(&url, "PUT", "/rescue/dir1/b", &val("hello \"v2\" ünï\n"))?;
        v2_ok(&url, "PUT", "/rescue/emptydir", "dir=true")?;
        v2_ok(&url, "PUT", "/rescue/gone", &val("x"))?;
        v2_ok(&url, "DELETE", "/rescue/gone", "")?;
        v2_ok(&url, "PUT", "/top", &val("t"))?;
        w.v2_keys = vec![
            ("/rescue/a".into(), "two".into()),
            ("/rescue/dir1/b".into(), "hello \"v2\" ünï\n".into()),
            ("/top".into(), "t".into()),
        ];
        w.v2_dirs = vec![
            "/rescue".into(),
            "/rescue/dir1".into(),
            "/rescue/emptydir".into(),
        ];
        w.v2_deleted = vec!["/rescue/gone".into()];
    }

    let mut cl = c.client(0).await?;
    cl.put("foo", "bar", None).await.context("put")?;
    cl.put("foo", "bar2", None).await.context("put")?;
    cl.put("k2", "v2", None).await.context("put")?;
    cl.delete("k2", None).await.context("delete")?;
    w.v3_deleted.push("k2".into());
    let lease = cl.lease_grant(3600, None).await.context("lease grant")?;
    w.lease = lease.id();
    cl.put(
        "leased",
        "val",
        Some(PutOptions::new().with_lease(lease.id())),
    )
    .await
    .context("put with lease")?;
    let t = cl
        .txn(
            Txn::new()
                .when([Compare::value("foo", CompareOp::Equal, "bar2")])
                .and_then([
                    TxnOp::put("foo", "bar3", None),
                    TxnOp::put("tx2", "yes", None),
                ]),
        )
        .await
        .context("txn")?;
    if !t.succeeded() {
        bail!("txn compare failed");
    }
    w.v3_puts += 4;
    for i in 0..sz.medium {
        let v = vec![b'a' + (i % 26) as u8; 5000 + i * 97];
        cl.put(format!("medium/{i:03}"), v, None).await?;
        w.v3_puts += 1;
    }
    for batch in 0..sz.small_txn.div_ceil(100) {
        let ops: Vec<TxnOp> = (batch * 100..((batch + 1) * 100).min(sz.small_txn))
            .map(|n| {
                TxnOp::put(
                    format!("small/{n:05}"),
                    format!("value-{n}-{}", n * 7919 % 10007),
                    None,
                )
            })
            .collect();
        cl.txn(Txn::new().and_then(ops))
            .await
            .context("txn batch")?;
        w.v3_puts += 1;
    }
    // Individual puts, 8 in flight: one raft entry each (snapshots every 100 entries).
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..8 {
        let mut cl = cl.clone();
        let n = sz.small_puts;
        tasks.spawn(async move {
            let mut i = k;
            while i < n {
                cl.put(format!("one/{i:05}"), format!("v{i}"), None).await?;
                i += 8;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("put task")??;
    }
    w.v3_puts += sz.small_puts;
    for i in 0..3 {
        cl.put("one/00001", format!("over-{i}"), None).await?;
    }
    cl.delete(
        "small/0002",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    if sz.big > 0 {
        fill_k8s_like(&mut cl, sz.big, 1_000_000, 1_000_000, 4).await?;
        w.v3_puts += sz.big;
    }
    Ok(w)
}

/// One key as etcd serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// Every key etcd serves (`get "" --from-key` through member `i`), by key.
pub async fn served(c: &Cluster, i: usize) -> Result<BTreeMap<Vec<u8>, Kv>> {
    let cl = c.client(i).await?;
    let mut kv = cl.kv_client().max_decoding_message_size(1 << 30);
    let r = kv
        .get(vec![0u8], Some(GetOptions::new().with_from_key()))
        .await
        .context("get from key")?;
    Ok(r.kvs()
        .iter()
        .map(|k| {
            (
                k.key().to_vec(),
                Kv {
                    value: k.value().to_vec(),
                    create_revision: k.create_revision(),
                    mod_revision: k.mod_revision(),
                    version: k.version(),
                    lease: k.lease(),
                },
            )
        })
        .collect())
}

/// The latest state of every key in a bbolt `db` (the `key` bucket read in revision order,
/// tombstones removing), checking each revision key against its value.
pub fn db_latest(db: &BoltDb) -> BTreeMap<Vec<u8>, Kv> {
    let b = db.bucket(b"key").unwrap().expect("key bucket");
    let mut cur = db.cursor(&b);
    let mut out = BTreeMap::new();
    let mut last_rev = (0i64, 0i64);
    while let Some(it) = cur.next().unwrap() {
        assert!(
            it.key.len() == 17 || (it.key.len() == 18 && it.key[17] == b't'),
            "revision key {:?}",
            it.key
        );
        let main = i64::from_be_bytes(it.key[..8].try_into().unwrap());
        let sub = i64::from_be_bytes(it.key[9..17].try_into().unwrap());
        assert!((main, sub) > last_rev, "revisions in order");
        last_rev = (main, sub);
        let kv = KeyValue::decode(it.value).unwrap();
        if it.key.len() == 18 {
            out.remove(&kv.key);
        } else {
            assert_eq!(kv.mod_revision, main, "mod revision of {:?}", kv.key);
            out.insert(
                kv.key.clone(),
                Kv {
                    value: kv.value,
                    create_revision: kv.create_revision,
                    mod_revision: kv.mod_revision,
                    version: kv.version,
                    lease: kv.lease,
                },
            );
        }
    }
    out
}

/// Assert that the db (or snapshot file, trailer stripped) at `path` holds exactly what etcd
/// served.
pub fn assert_db_matches(path: &Path, want: &BTreeMap<Vec<u8>, Kv>) {
    let (db, _) = etcd_disk::snapshot::open_db(path).unwrap();
    let got = db_latest(&db);
    assert_eq!(got.len(), want.len(), "key count of {}", path.display());
    for (k, v) in want {
        let g = got.get(k).unwrap_or_else(|| {
            panic!(
                "{}: key {:?} missing",
                path.display(),
                String::from_utf8_lossy(k)
            )
        });
        assert!(
            g == v,
            "{}: key {:?} differs: value {} vs {} bytes, revisions {:?} vs {:?}",
            path.display(),
            String::from_utf8_lossy(k),
            g.value.len(),
            v.value.len(),
            (g.create_revision, g.mod_revision, g.version, g.lease),
            (v.create_revision, v.mod_revision, v.version, v.lease)
        );
    }
}
