//! `status` and `verify`: offline reads of a snapshot file.
//!
//! `status` gives exactly what `etcdctl snapshot status -w json` (3.4.23) / `etcdutl snapshot
//! status -w json` (3.5.1) print — `{"hash","revision","totalKey","totalSize"}`, computed by
//! [`etcd_disk::snapshot::status`] in one pass with bbolt's consistency check — plus what
//! operators need. The number of live user keys is counted by a second cursor over the `key`
//! bucket on the other core, so it costs no wall time (see [`user_keys`]).
//!
//! `verify` runs the sha256 trailer check and the bbolt consistency check in parallel; any
//! problem is exit 3 with the file and the byte offset.

use crate::source::{self, Opened};
use etcd_common::envelope::{keys, Facts};
use etcd_common::{diag, Ctx, Error, Outcome, Result};
use etcd_disk::bolt::{self, BoltDb};
use etcd_disk::proto::raw;
use etcd_disk::snapshot::{self, TrailerCheck};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Arguments of `status`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct StatusArgs {
    /// Snapshot file (.db, .gz or a raw member/snap/db); default: facts.snapshot.path on stdin
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Where a .gz is decompressed (an unnamed file, gone when we exit) [default: $TMPDIR]
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
}

/// Arguments of `verify`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct VerifyArgs {
    /// Snapshot file (.db, .gz or a raw member/snap/db); default: facts.snapshot.path on stdin
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Accept a file without sha256 trailer (a raw member/snap/db) and check only its bbolt
    /// structure
    #[arg(long)]
    pub skip_hash_check: bool,
    /// Where a .gz is decompressed (an unnamed file, gone when we exit) [default: $TMPDIR]
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
}

fn be_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// Live user keys, counted from the `key` bucket in one streaming pass without a per-key map.
///
/// After a compaction at revision C (`meta/finishedCompactRev`), every key keeps at most one
/// entry at or below C (its latest, never a tombstone); above C, every life of a key starts
/// with a put of version 1 and ends with a tombstone. So
/// `live = entries ≤ C + puts > C with version 1 − tombstones > C`. Exact unless a compaction
/// was interrupted (`scheduledCompactRev > finishedCompactRev`): then the second value is false.
pub fn user_keys(db: &BoltDb) -> etcd_disk::Result<(u64, bool)> {
    let (compact, exact) = match db.bucket(b"meta")? {
        Some(m) => {
            let fin = db
                .get(&m, b"finishedCompactRev")?
                .and_then(|v| be_u64(&v))
                .unwrap_or(0);
            let sched = db
                .get(&m, b"scheduledCompactRev")?
                .and_then(|v| be_u64(&v))
                .unwrap_or(0);
            (fin, sched <= fin)
        }
        None => (0, true),
    };
    let Some(kb) = db.bucket(b"key")? else {
        return Ok((0, exact));
    };
    let mut live: i64 = 0;
    let mut cur = db.cursor(&kb);
    while let Some(item) = cur.next()? {
        let main = be_u64(item.key).unwrap_or(0);
        let tomb = item.key.len() == 18 && item.key.last() == Some(&b't');
        if tomb {
            if main > compact {
                live -= 1;
            }
        } else if main <= compact {
            live += 1;
        } else {
            let mut version = 0u64;
            let _ = raw::scan(item.value, |n, v| {
                if let (4, raw::Value::Varint(x)) = (n, v) {
                    version = x;
                }
                Ok(())
            });
            if version == 1 {
                live += 1;
            }
        }
    }
    Ok((live.max(0) as u64, exact))
}

/// The snapshot's revision: main of the last `key` bucket entry (what etcdctl reports).
/// The buckets every etcd 3.x db has from its first start: without them the file is a bbolt
/// db, not etcd's (etcd would start from it with no keys and no consistent index).
pub const ETCD_BUCKETS: [&str; 2] = ["key", "meta"];

/// Bad input naming the missing etcd buckets, if any.
pub fn etcd_buckets_error(db: &BoltDb, name: &std::path::Path) -> Result<Option<Error>> {
    let mut missing = Vec::new();
    for b in ETCD_BUCKETS {
        if db.bucket(b.as_bytes())?.is_none() {
            missing.push(format!("\"{b}\""));
        }
    }
    Ok((!missing.is_empty()).then(|| {
        Error::bad_input(format!(
            "{}: offset 0: a bbolt db without etcd's {} bucket{}: not an etcd snapshot",
            name.display(),
            missing.join(" and "),
            if missing.len() > 1 { "s" } else { "" }
        ))
    }))
}

pub fn revision(db: &BoltDb) -> etcd_disk::Result<i64> {
    Ok(match db.bucket(b"key")? {
        Some(kb) => db
            .last(&kb)?
            .and_then(|(k, _, _)| be_u64(&k))
            .map(|m| m as i64)
            .unwrap_or(0),
        None => 0,
    })
}

/// facts.snapshot: the upstream's object for the same path (keeping e.g. save's sha256), with
/// `add` merged in.
pub fn snapshot_fact(upstream: &Facts, path: &Path, add: Value) -> Value {
    let p = path.display().to_string();
    let mut base = match upstream.get(keys::SNAPSHOT) {
        Some(Value::Object(o)) if o.get("path").and_then(Value::as_str) == Some(p.as_str()) => {
            o.clone()
        }
        _ => serde_json::Map::new(),
    };
    base.insert("path".into(), json!(p));
    if let Value::Object(a) = add {
        for (k, v) in a {
            base.insert(k, v);
        }
    }
    Value::Object(base)
}

fn file_json(o: &Opened) -> Value {
    json!({
        "path": o.path.display().to_string(),
        "size_bytes": o.file_size,
        "compressed": o.compressed,
        "image_bytes": o.image_len,
        "has_sha256_trailer": o.has_trailer,
    })
}

/// `etcd-snap status`.
pub fn status(a: StatusArgs, ctx: &Ctx) -> Result<Outcome> {
    let path = source::path_from(a.file.as_deref(), &ctx.upstream)?;
    let o = source::open(&path, a.tmp_dir.as_deref())?;
    let (st, users) = std::thread::scope(|s| {
        let h = s.spawn(|| user_keys(&o.db));
        let st = snapshot::status(&o.db);
        let users = h.join().unwrap_or_else(|_| {
            Err(etcd_disk::DiskError::Invalid(
                "user key count failed".into(),
            ))
        });
        (st, users)
    });
    let st = st?;
    let (user_keys, exact) = match users {
        Ok(u) => (Some(u.0), u.1),
        Err(e) => {
            diag::debug(&format!("user key count: {e}"));
            (None, false)
        }
    };
    let mut data = serde_json::to_value(&st).unwrap_or(Value::Null);
    if let Some(d) = data.as_object_mut() {
        d.insert("user_keys".into(), json!(user_keys));
        d.insert("user_keys_exact".into(), json!(exact));
        d.insert("file".into(), file_json(&o));
        d.insert("has_sha256_trailer".into(), json!(o.has_trailer));
    }
    let mut facts = Facts::new();
    facts.insert(
        keys::SNAPSHOT.into(),
        snapshot_fact(
            &ctx.upstream,
            &path,
            json!({
                "size_bytes": o.file_size,
                "revision": st.etcdctl.revision,
                "compressed": o.compressed,
                "has_sha256_trailer": o.has_trailer,
            }),
        ),
    );
    let summary = format!(
        "{}: {} (hash, revision, total keys, size as etcdctl); {} user keys, {} members, cluster version {}, {}",
        path.display(),
        st.etcdctl.simple(),
        user_keys.map_or("?".into(), |u| u.to_string()),
        st.members.len(),
        st.cluster_version.as_deref().unwrap_or("unknown"),
        if o.has_trailer { "sha256 trailer present" } else { "no sha256 trailer" }
    );
    Ok(Outcome {
        changed: false,
        facts,
        data,
        warnings: Vec::new(),
        summary,
        failure: None,
    })
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrailerVerdict {
    Ok([u8; 32]),
    Missing,
    Mismatch(TrailerCheck),
}

/// Compare the trailer with the image hash (plain files: streamed here; `.gz`: done while
/// decompressing).
pub fn trailer_verdict(o: &Opened) -> Result<TrailerVerdict> {
    if !o.has_trailer {
        return Ok(TrailerVerdict::Missing);
    }
    let check = match o.gz_check {
        Some(c) => Some(c),
        None => snapshot::verify_trailer(&o.path)?,
    };
    Ok(match check {
        None => TrailerVerdict::Missing,
        Some(c) if c.matches() => TrailerVerdict::Ok(c.actual),
        Some(c) => TrailerVerdict::Mismatch(c),
    })
}

/// The error for a trailer problem, naming the file and the offset of the trailer.
pub fn trailer_error(o: &Opened, v: &TrailerVerdict, skip_hash_check: bool) -> Option<Error> {
    let p = o.path.display();
    match v {
        TrailerVerdict::Ok(_) => None,
        TrailerVerdict::Missing if skip_hash_check => None,
        TrailerVerdict::Missing => Some(Error::bad_input(format!(
            "{p}: offset {}: no sha256 trailer ({} bytes, not 32 more than a multiple of 512): \
             cut short, or not a snapshot file; a raw member/snap/db has none (use --skip-hash-check)",
            o.image_len,
            o.image_len
        ))),
        TrailerVerdict::Mismatch(c) => Some(Error::bad_input(format!(
            "{p}: offset {}: sha256 of bytes 0..{} does not match the trailer: the snapshot is corrupt ({})",
            o.image_len,
            o.image_len,
            c.etcd_message()
        ))),
    }
}

/// `etcd-snap verify`.
pub fn verify(a: VerifyArgs, ctx: &Ctx) -> Result<Outcome> {
    let path = source::path_from(a.file.as_deref(), &ctx.upstream)?;
    let o = source::open(&path, a.tmp_dir.as_deref())?;
    let (trailer, report) = std::thread::scope(|s| {
        let h = s.spawn(|| trailer_verdict(&o));
        let report = bolt::check(&o.db).map_err(Error::from);
        let t = h
            .join()
            .unwrap_or_else(|_| Err(Error::internal("trailer check failed")));
        (t, report)
    });
    let trailer = trailer?;
    let report = report?;
    let rev = revision(&o.db).ok();
    let (tname, db_sha) = match &trailer {
        TrailerVerdict::Ok(h) => ("ok", Some(snapshot::hex(h))),
        TrailerVerdict::Missing => ("missing", None),
        TrailerVerdict::Mismatch(c) => ("mismatch", Some(snapshot::hex(&c.actual))),
    };
    let problems: Vec<Value> = report
        .problems
        .iter()
        .take(20)
        .map(|p| json!({"page": p.pgid, "offset": p.offset, "message": p.msg}))
        .collect();
    let data = json!({
        "file": file_json(&o),
        "trailer": tname,
        "db_sha256": db_sha,
        "bbolt": {
            "ok": report.is_ok(),
            "problems_total": report.total_problems,
            "problems": problems,
            "pages": report.pages,
            "pages_free": report.pages_free,
        },
        "revision": rev,
    });
    // bbolt problems name the page; report them first, with the trailer's verdict after.
    let mut failure = report.to_error(&o.db).map(Error::from);
    if failure.is_none() {
        failure = etcd_buckets_error(&o.db, &o.path)?;
    }
    if let Some(t) = trailer_error(&o, &trailer, a.skip_hash_check) {
        failure = Some(match failure {
            Some(f) => Error::bad_input(format!("{}; {}", f.message, t.message)),
            None => t,
        });
    }
    let verified = failure.is_none();
    let mut add = json!({
        "size_bytes": o.file_size,
        "compressed": o.compressed,
        "has_sha256_trailer": o.has_trailer,
        "verified": verified,
    });
    if let Some(m) = add.as_object_mut() {
        if let Some(r) = rev {
            m.insert("revision".into(), json!(r));
        }
        if let (TrailerVerdict::Ok(_), Some(h)) = (&trailer, &db_sha) {
            m.insert("db_sha256".into(), json!(h));
        }
    }
    let mut facts = Facts::new();
    facts.insert(
        keys::SNAPSHOT.into(),
        snapshot_fact(&ctx.upstream, &path, add),
    );
    let summary = match &failure {
        None => format!(
            "{}: good: sha256 trailer {}, bbolt consistent ({} pages), revision {}",
            path.display(),
            if tname == "ok" {
                "matches"
            } else {
                "absent (skipped)"
            },
            report.pages,
            rev.map_or("?".into(), |r| r.to_string())
        ),
        Some(_) => String::new(),
    };
    Ok(Outcome {
        changed: false,
        facts,
        data,
        warnings: Vec::new(),
        summary,
        failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_disk::bolt::Edits;
    use etcd_disk::proto::{encode, KeyValue};
    use etcd_disk::snapshot::revision_bytes;

    fn kv(key: &str, ver: i64) -> Vec<u8> {
        encode(&KeyValue {
            key: key.as_bytes().to_vec(),
            version: ver,
            ..Default::default()
        })
    }

    #[test]
    fn user_keys_counts_lives_across_compaction() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("db");
        let mut e = Edits::new();
        // a: kept at 2 (version 2) after compaction at 5, updated at 6, deleted at 7.
        e.put(b"key", &revision_bytes(2, 0), &kv("a", 2)).unwrap();
        e.put(b"key", &revision_bytes(6, 0), &kv("a", 3)).unwrap();
        let mut t = revision_bytes(7, 0).to_vec();
        t.push(b't');
        e.put(b"key", &t, &kv("a", 0)).unwrap();
        // b: kept at 4; c: created at 8, updated at 9; d: created at 10.
        e.put(b"key", &revision_bytes(4, 0), &kv("b", 5)).unwrap();
        e.put(b"key", &revision_bytes(8, 0), &kv("c", 1)).unwrap();
        e.put(b"key", &revision_bytes(9, 0), &kv("c", 2)).unwrap();
        e.put(b"key", &revision_bytes(10, 0), &kv("d", 1)).unwrap();
        e.put(b"meta", b"finishedCompactRev", &revision_bytes(5, 0))
            .unwrap();
        e.put(b"meta", b"scheduledCompactRev", &revision_bytes(5, 0))
            .unwrap();
        bolt::create(4096, &e, &p).unwrap();
        let db = BoltDb::open(&p).unwrap();
        assert_eq!(user_keys(&db).unwrap(), (3, true));
        assert_eq!(revision(&db).unwrap(), 10);
    }

    #[test]
    fn snapshot_fact_keeps_upstream_for_same_path() {
        let mut up = Facts::new();
        up.insert(
            "snapshot".into(),
            json!({"path": "/b/s.db", "sha256": "ab", "revision": 1}),
        );
        let v = snapshot_fact(&up, Path::new("/b/s.db"), json!({"revision": 9}));
        assert_eq!(v, json!({"path": "/b/s.db", "sha256": "ab", "revision": 9}));
        let v = snapshot_fact(&up, Path::new("/b/other.db"), json!({"revision": 9}));
        assert_eq!(v, json!({"path": "/b/other.db", "revision": 9}));
    }
}
