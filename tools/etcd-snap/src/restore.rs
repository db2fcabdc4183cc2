//! `restore`: build one member's data dir from a snapshot, as etcd 3.5's `etcdutl snapshot
//! restore` does, in a sibling directory renamed into place.
//!
//! What is written (spec §7.3, §7.5, §7.6):
//! - `member/snap/db`: the snapshot image patched copy-on-write ([`etcd_disk::bolt::patch_into`]:
//!   its pages copied kernel-side, then new pages for what changes, as a bbolt transaction
//!   would) with [`etcd_disk::snapshot::restore_edits`]: `members` and `members_removed`
//!   replaced by the new membership, `meta/consistent_index` = N, `meta/term` = 1,
//!   `meta/confState` = the new members as voters (etcd's restore keeps the source cluster's
//!   voters there), and with
//!   `--bump-revision X --mark-compacted` a key at revision (last + X) and
//!   `meta/scheduledCompactRev` set to it (one put after the last key of `key`: a few pages).
//!   The sha256 of the image is checked against the trailer on the other core while the copy
//!   runs; a mismatch discards everything.
//! - `member/snap/0000000000000001-<N>.snap`: the fresh v2 store with the new members, byte for
//!   byte what etcdctl 3.4.23 and etcdutl 3.5.1 write.
//! - `member/wal/0000000000000000-0000000000000000.wal`: metadata {member ID, cluster ID}, one
//!   ConfChange AddNode entry per member (ID order), HardState {term 1, vote = smallest ID,
//!   commit N}, and the 3.5-style snapshot record {N, 1, conf_state}. etcd 3.4.23 accepts the
//!   conf_state field (its decoder skips unknown fields; proven by the e2e tests, which start
//!   3.4.23 on our output), so one layout serves both versions.
//!
//! Crash safety: everything is built in `<parent>/.<data-dir name>.etcd-snap-restore` (0700) and
//! renamed onto the data dir at the end; a separate `--wal-dir` is built as `<wal-dir>.tmp` and
//! renamed just before, with a marker file recording that it is ours, so a rerun after a crash
//! either finishes (the WAL matches the plan: only the final rename was missing) or removes our
//! leftovers and starts again. A non-empty data dir or an existing WAL dir is refused (exit 7).
//!
//! One owner per target: the data dir (and a separate WAL dir) are claimed first
//! (`DATA_DIR.lock`, `etcd_common::atomic::claim`), so a second restore into the same dir exits
//! 7 naming the first, and the leftovers it finds are a dead run's. Dirs are created 0700
//! whatever the umask.

use crate::inspect;
use crate::source;
use etcd_common::atomic::{fsync_dir, parent_of, track_partial, untrack_partial};
use etcd_common::envelope::{keys, Facts};
use etcd_common::envfile::EnvFile;
use etcd_common::{diag, ids, Ctx, Error, Outcome, Result};
use etcd_disk::bolt;
use etcd_disk::membership::{bootstrap, BootstrapCluster};
use etcd_disk::proto::{
    conf_change_type, encode, entry_type, ConfChange, ConfState, Entry, HardState, Metadata,
    WalSnapshot,
};
use etcd_disk::snapshot::{self, RestorePlan};
use etcd_disk::wal::WalWriter;
use serde_json::{json, Value};
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Arguments of `restore` (etcdctl's flags, plus ours).
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreArgs {
    /// Snapshot file (.db, .gz or, with --skip-hash-check, a raw member/snap/db); default:
    /// facts.snapshot.path on stdin
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Member name [env file: ETCD_NAME] [default: default]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// All members, name=peer-url,... [env file: ETCD_INITIAL_CLUSTER] [default: default=http://localhost:2380, as etcdctl]
    #[arg(long, value_name = "NAME=URL,...")]
    pub initial_cluster: Option<String>,
    /// Token of the new cluster; use a new one, so that stray old members cannot join
    /// [env file: ETCD_INITIAL_CLUSTER_TOKEN] [default: etcd-cluster]
    #[arg(long, value_name = "TOKEN")]
    pub initial_cluster_token: Option<String>,
    /// This member's peer URLs [env file: ETCD_INITIAL_ADVERTISE_PEER_URLS] [default: http://localhost:2380]
    #[arg(long, value_name = "URLS")]
    pub initial_advertise_peer_urls: Option<String>,
    /// Data dir to create [env file: ETCD_DATA_DIR] [default: <name>.etcd]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Separate WAL dir [env file: ETCD_WAL_DIR] [default: <data-dir>/member/wal]
    #[arg(long, value_name = "DIR")]
    pub wal_dir: Option<PathBuf>,
    /// Do not check the snapshot's sha256 trailer (needed for a raw member/snap/db)
    #[arg(long)]
    pub skip_hash_check: bool,
    /// etcd's settings file (/etc/etcd.env); explicit flags win
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Raise the revision by N so that watchers never see it go back (with --mark-compacted)
    #[arg(long, value_name = "N", requires = "mark_compacted")]
    pub bump_revision: Option<u64>,
    /// Mark every revision up to the bumped one as compacted (with --bump-revision)
    #[arg(long, requires = "bump_revision")]
    pub mark_compacted: bool,
    /// Print the plan (IDs, paths) and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// The resolved restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub snapshot: PathBuf,
    pub name: String,
    pub token: String,
    pub data_dir: PathBuf,
    pub wal_dir: PathBuf,
    /// The WAL dir is not `<data-dir>/member/wal`.
    pub wal_separate: bool,
    pub cluster: BootstrapCluster,
    pub skip_hash_check: bool,
    pub bump_revision: Option<u64>,
    /// etcdctl defaults that were used (dangerous ones get a warning).
    pub defaults_used: Vec<&'static str>,
}

/// Resolve flags, env file and defaults (flag > env file > etcdctl's default) and validate the
/// membership as etcd does.
pub fn plan(a: &RestoreArgs, env: Option<&EnvFile>, upstream: &Facts) -> Result<Plan> {
    let mut defaults = Vec::new();
    let mut pick = |flag: &Option<String>, key: &str, what: &'static str, def: String| {
        if let Some(v) = flag.as_ref().filter(|v| !v.is_empty()) {
            return v.clone();
        }
        if let Some(v) = env.and_then(|e| e.get(key)) {
            return v.to_string();
        }
        defaults.push(what);
        def
    };
    let name = pick(&a.name, "ETCD_NAME", "--name", "default".into());
    let initial_cluster = pick(
        &a.initial_cluster,
        "ETCD_INITIAL_CLUSTER",
        "--initial-cluster",
        // etcdctl's default is built from the *default* name at flag-definition time.
        "default=http://localhost:2380".into(),
    );
    let token = pick(
        &a.initial_cluster_token,
        "ETCD_INITIAL_CLUSTER_TOKEN",
        "--initial-cluster-token",
        "etcd-cluster".into(),
    );
    let adv = pick(
        &a.initial_advertise_peer_urls,
        "ETCD_INITIAL_ADVERTISE_PEER_URLS",
        "--initial-advertise-peer-urls",
        "http://localhost:2380".into(),
    );
    let data_dir = a
        .data_dir
        .clone()
        .or_else(|| env.and_then(|e| e.get("ETCD_DATA_DIR")).map(PathBuf::from))
        .unwrap_or_else(|| {
            defaults.push("--data-dir");
            PathBuf::from(format!("{name}.etcd"))
        });
    let default_wal = data_dir.join("member").join("wal");
    let wal_dir = a
        .wal_dir
        .clone()
        .or_else(|| env.and_then(|e| e.get("ETCD_WAL_DIR")).map(PathBuf::from))
        .unwrap_or_else(|| default_wal.clone());
    let wal_separate = wal_dir != default_wal;
    if wal_separate && wal_dir.starts_with(&data_dir) {
        return Err(Error::usage(format!(
            "--wal-dir {} inside --data-dir {} must be {}",
            wal_dir.display(),
            data_dir.display(),
            default_wal.display()
        )));
    }
    let cluster = bootstrap(&name, &initial_cluster, &adv, &token)
        .map_err(|e| Error::usage(format!("membership: {e}")))?;
    let snapshot = source::path_from(a.file.as_deref(), upstream)?;
    Ok(Plan {
        snapshot,
        name,
        token,
        data_dir,
        wal_dir,
        wal_separate,
        cluster,
        skip_hash_check: a.skip_hash_check,
        bump_revision: a.bump_revision,
        defaults_used: defaults,
    })
}

/// Warnings for etcdctl's dangerous defaults.
pub fn default_warnings(p: &Plan) -> Vec<String> {
    let mut w = Vec::new();
    if p.defaults_used.contains(&"--initial-cluster-token") {
        w.push("using the default token etcd-cluster: give a new --initial-cluster-token so that stray old members cannot join".to_string());
    }
    if p.defaults_used.contains(&"--initial-cluster") || p.defaults_used.contains(&"--name") {
        w.push(format!(
            "using etcdctl's default membership ({}): give --name, --initial-cluster and --initial-advertise-peer-urls, or --env-file",
            p.cluster
                .members
                .iter()
                .map(|m| format!("{}={}", m.name, m.peer_urls.join(",")))
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    w
}

/// The temporary build dir and the marker of a finished separate WAL.
///
/// When the data dir does not exist, the whole data dir is built next to it and renamed into
/// place. When it exists (empty, a mount point with `lost+found`, or holding the copies
/// `etcd-purge` moved aside), `member/` is built inside it and renamed into it: the rename
/// then never crosses a filesystem.
pub fn temp_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    if data_dir.is_dir() {
        return (data_dir.join(IN_PLACE_TMP), data_dir.join(IN_PLACE_MARKER));
    }
    let parent = parent_of(data_dir);
    let base = data_dir
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    (
        parent.join(format!(".{base}.etcd-snap-restore")),
        parent.join(format!(".{base}.etcd-snap-restore.wal-done")),
    )
}

const IN_PLACE_TMP: &str = ".etcd-snap-restore";
const IN_PLACE_MARKER: &str = ".etcd-snap-restore.wal-done";

/// Entries an existing data dir may hold for a restore into it: what a filesystem root has,
/// the copies `etcd-purge` moved aside, and our own leftovers.
fn allowed_in_data_dir(name: &str) -> bool {
    name == "lost+found"
        || name.starts_with("member.purged.")
        || name == IN_PLACE_TMP
        || name == IN_PLACE_MARKER
}

/// The first entry of an existing data dir that a restore must not build over, if any.
fn blocking_entry(data_dir: &Path) -> Result<Option<String>> {
    let rd = std::fs::read_dir(data_dir)
        .map_err(|e| Error::io(format!("cannot read {}: {e}", data_dir.display())))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(format!("cannot read {}: {e}", data_dir.display())))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if !allowed_in_data_dir(&name) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

fn mkdir0700(p: &Path) -> Result<()> {
    DirBuilder::new()
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", p.display())))
}

fn marker_text(p: &Plan) -> String {
    format!(
        "{} {}\n",
        ids::hex(p.cluster.local_id),
        ids::hex(p.cluster.cluster_id)
    )
}

fn wal_matches(p: &Plan) -> bool {
    match etcd_disk::wal::read_at(&p.wal_dir, 0, 0) {
        Ok(c) => c.metadata.is_some_and(|m| {
            m.node_id == p.cluster.local_id && m.cluster_id == p.cluster.cluster_id
        }),
        Err(_) => false,
    }
}

/// What the target looks like before we start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Build from scratch (after removing our leftovers, listed).
    Fresh { cleaned: Vec<PathBuf> },
    /// A previous run built everything; only the final rename is missing.
    Resume,
}

/// Check the target: refuse a non-empty data dir or an existing WAL dir; recognise our own
/// leftovers (clean them, or finish an interrupted run). `dry_run` removes nothing.
pub fn check_target(p: &Plan, dry_run: bool) -> Result<Start> {
    let (tmp, marker) = temp_paths(&p.data_dir);
    let blocking = match std::fs::symlink_metadata(&p.data_dir) {
        Ok(m) if m.is_dir() => blocking_entry(&p.data_dir)?,
        Ok(_) => Some(String::new()),
        Err(_) => None,
    };
    if let Some(entry) = blocking {
        let what = if entry.is_empty() {
            "is not a directory".to_string()
        } else {
            format!("holds {entry:?}")
        };
        return Err(Error::refused(format!(
            "data-dir {} {what}: move it aside first, e.g. with etcd-purge (nothing was changed)",
            p.data_dir.display()
        )));
    }
    if tmp.exists() && marker.exists() && p.wal_separate && p.wal_dir.exists() {
        let ours = std::fs::read_to_string(&marker).unwrap_or_default() == marker_text(p);
        if ours && wal_matches(p) {
            return Ok(Start::Resume);
        }
    }
    if p.wal_dir.exists() {
        return Err(Error::refused(format!(
            "wal-dir {} exists: move it aside first (nothing was changed)",
            p.wal_dir.display()
        )));
    }
    let mut cleaned = Vec::new();
    for leftover in [tmp, marker] {
        if std::fs::symlink_metadata(&leftover).is_ok() {
            if !dry_run {
                let r = if leftover.is_dir() {
                    std::fs::remove_dir_all(&leftover)
                } else {
                    std::fs::remove_file(&leftover)
                };
                r.map_err(|e| {
                    Error::io(format!(
                        "cannot remove the leftover of an interrupted restore {}: {e}",
                        leftover.display()
                    ))
                })?;
            }
            cleaned.push(leftover);
        }
    }
    Ok(Start::Fresh { cleaned })
}

/// The WAL entries of a restore: one ConfChange AddNode per member, in ID order.
pub fn conf_change_entries(c: &BootstrapCluster) -> Vec<Entry> {
    c.members
        .iter()
        .enumerate()
        .map(|(i, m)| Entry {
            r#type: entry_type::CONF_CHANGE,
            term: 1,
            index: i as u64 + 1,
            data: Some(encode(&ConfChange {
                id: 0,
                r#type: conf_change_type::ADD_NODE,
                node_id: m.id,
                context: Some(m.to_json().into_bytes()),
            })),
        })
        .collect()
}

/// Write the WAL (and the .snap in between, as etcd orders it) for the plan at `wal_dir`.
fn write_wal_and_snap(c: &BootstrapCluster, wal_dir: &Path, snap_dir: &Path) -> Result<()> {
    let md = Metadata {
        node_id: c.local_id,
        cluster_id: c.cluster_id,
    };
    let mut w = WalWriter::create(wal_dir, &md)?;
    let ents = conf_change_entries(c);
    let n = ents.len() as u64;
    let first = c.members.first().map(|m| m.id).unwrap_or(0);
    w.save(
        &HardState {
            term: 1,
            vote: first,
            commit: n,
        },
        &ents,
    )?;
    etcd_disk::snap::write_snap(snap_dir, &etcd_disk::v2store::restore_snapshot(&c.members))?;
    w.save_snapshot(&WalSnapshot {
        index: n,
        term: 1,
        conf_state: Some(ConfState {
            voters: c.ids(),
            ..Default::default()
        }),
    })?;
    w.finish()?;
    Ok(())
}

struct DbResult {
    revision: i64,
    bumped: Option<i64>,
    db_sha256: Option<String>,
    trailer: &'static str,
}

/// Space first: the db (the snapshot's size; a `.gz` is bounded while it decompresses, see
/// [`source::gunzip`]) and one WAL segment really allocated (etcd's 64,000,000 bytes), plus
/// margin, on the filesystems they go to; exit 6 before anything is written.
fn check_space(p: &Plan, parent: &Path) -> Result<()> {
    let snap_len = std::fs::metadata(&p.snapshot)
        .map_err(|e| source::open_error(&p.snapshot, e))?
        .len();
    let db = if source::is_gzip(&p.snapshot)? {
        // The decompressed size is checked against the temp file's filesystem (the same one)
        // as it streams; here at least the compressed size.
        snap_len
    } else {
        snap_len.saturating_sub(snapshot::TRAILER_LEN)
    };
    let wal = etcd_disk::wal::SEGMENT_SIZE_BYTES;
    let wal_dir = if p.wal_separate {
        p.wal_dir.clone()
    } else {
        parent.to_path_buf()
    };
    etcd_common::space::require(&[(parent, db, "db"), (wal_dir.as_path(), wal, "WAL segment")])
}

/// Patch the snapshot image into `dst` with the restore edits, checking the trailer.
fn write_db(p: &Plan, dst: &Path, scratch_dir: &Path) -> Result<DbResult> {
    let path = &p.snapshot;
    let md = std::fs::metadata(path).map_err(|e| source::open_error(path, e))?;
    if !md.is_file() {
        return Err(Error::bad_input(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    let gz = source::is_gzip(path)?;
    // A .gz is decompressed next to the target (same filesystem, which needs the room anyway)
    // into an unnamed file, checking the trailer on the way.
    let (db, has_trailer, gz_check) = if gz {
        let (db, out) = source::gunzip(path, scratch_dir)?;
        (db, out.trailer.is_some(), out.trailer_check())
    } else {
        let (db, layout) = snapshot::open_db(path)?;
        (db, layout.has_trailer, None)
    };
    if !has_trailer && !p.skip_hash_check {
        return Err(Error::bad_input(format!(
            "{}: offset {}: snapshot missing hash but --skip-hash-check=false (a raw member/snap/db has no sha256 trailer; a snapshot file cut short neither)",
            path.display(),
            md.len()
        )));
    }
    if let Some(e) = inspect::etcd_buckets_error(&db, path)? {
        return Err(e);
    }
    let revision = inspect::revision(&db)?;
    let rp = RestorePlan {
        members: p
            .cluster
            .members
            .iter()
            .map(|m| (m.id, m.to_json()))
            .collect(),
        consistent_index: p.cluster.members.len() as u64,
        term: 1,
        bump_revision: p.bump_revision,
    };
    let (edits, bumped) = snapshot::restore_edits(&db, &rp)?;
    let out = etcd_common::atomic::create_new(dst, 0o600)?;
    let check_plain = has_trailer && !p.skip_hash_check && !gz;
    let (rw, check) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            if check_plain {
                snapshot::verify_trailer(path).map_err(Error::from)
            } else {
                Ok(gz_check)
            }
        });
        let rw = bolt::patch_into(&db, &edits, &out, dst).map_err(Error::from);
        let check = h
            .join()
            .unwrap_or_else(|_| Err(Error::internal("hash thread panicked")));
        (rw, check)
    });
    let check = check?;
    let mut db_sha256 = None;
    let mut trailer = if has_trailer {
        "not checked"
    } else {
        "missing"
    };
    if let Some(c) = check.filter(|_| !p.skip_hash_check) {
        if !c.matches() {
            let image_len = if gz {
                db.range_len()
            } else {
                md.len().saturating_sub(32)
            };
            return Err(Error::bad_input(format!(
                "{}: offset {image_len}: sha256 of the image does not match the trailer: the snapshot is corrupt ({}); nothing was restored",
                path.display(),
                c.etcd_message()
            )));
        }
        db_sha256 = Some(snapshot::hex(&c.actual));
        trailer = "ok";
    }
    rw?;
    Ok(DbResult {
        revision,
        bumped,
        db_sha256,
        trailer,
    })
}

fn plan_facts(p: &Plan) -> Facts {
    let mut f = Facts::new();
    f.insert(
        keys::DATA_DIR.into(),
        json!(p.data_dir.display().to_string()),
    );
    f.insert("wal_dir".into(), json!(p.wal_dir.display().to_string()));
    f.insert("name".into(), json!(p.name));
    f.insert(keys::MEMBER_ID.into(), json!(ids::hex(p.cluster.local_id)));
    f.insert(
        keys::CLUSTER_ID.into(),
        json!(ids::hex(p.cluster.cluster_id)),
    );
    let members: Vec<Value> = p
        .cluster
        .members
        .iter()
        .map(|m| json!({"id": ids::hex(m.id), "name": m.name, "peer_urls": m.peer_urls}))
        .collect();
    f.insert(keys::MEMBERS.into(), Value::Array(members));
    f
}

/// `etcd-snap restore`.
pub fn run(a: RestoreArgs, ctx: &Ctx) -> Result<Outcome> {
    let env = match &a.env_file {
        Some(p) => Some(EnvFile::load(p)?),
        None => None,
    };
    let p = plan(&a, env.as_ref(), &ctx.upstream)?;
    let mut warnings = default_warnings(&p);
    let mut facts = plan_facts(&p);
    // One owner per target: the data dir (and a separate WAL dir) are claimed before they are
    // looked at, so that a second restore into them exits 7 and never builds over this one.
    let mut claims = Vec::new();
    if !a.dry_run {
        for target in std::iter::once(&p.data_dir).chain(p.wal_separate.then_some(&p.wal_dir)) {
            etcd_common::atomic::mkdir_0700(&parent_of(target))?;
            claims.push(etcd_common::atomic::claim(target)?);
        }
    }
    let start = check_target(&p, a.dry_run)?;
    if a.dry_run {
        let data = json!({"dry_run": true, "start": format!("{start:?}"), "snapshot": p.snapshot.display().to_string()});
        return Ok(Outcome {
            changed: false,
            facts,
            data,
            warnings,
            summary: format!(
                "dry run: would restore {} into {} as member {} ({}) of cluster {}",
                p.snapshot.display(),
                p.data_dir.display(),
                p.name,
                ids::hex(p.cluster.local_id),
                ids::hex(p.cluster.cluster_id)
            ),
            failure: None,
        });
    }
    let (tmp, marker) = temp_paths(&p.data_dir);
    let parent = parent_of(&tmp);
    etcd_common::atomic::mkdir_0700(&parent)?;
    let mut db_res = None;
    match start {
        Start::Resume => {
            warnings.push(format!(
                "finishing an interrupted restore found in {}",
                tmp.display()
            ));
        }
        Start::Fresh { cleaned } => {
            for c in cleaned {
                warnings.push(format!(
                    "removed the leftover of an interrupted restore: {}",
                    c.display()
                ));
            }
            check_space(&p, &parent)?;
            track_partial(&tmp);
            let r = build(&p, &tmp, &marker, &parent);
            if r.is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
                untrack_partial(&tmp);
            }
            db_res = Some(r?);
        }
    }
    // The data dir may exist empty (etcd 3.5 accepts that): rename replaces an empty dir.
    finish(&p, &tmp, &parent)?;
    untrack_partial(&tmp);
    let _ = std::fs::remove_file(&marker);
    drop(claims);

    if let Some(r) = &db_res {
        facts.insert("revision".into(), json!(r.revision));
        facts.insert("bumped_to".into(), json!(r.bumped));
    }
    let snap_fact = inspect::snapshot_fact(
        &ctx.upstream,
        &p.snapshot,
        match &db_res {
            Some(r) => json!({"revision": r.revision}),
            None => json!({}),
        },
    );
    facts.insert(keys::SNAPSHOT.into(), snap_fact);
    let data = json!({
        "snapshot": p.snapshot.display().to_string(),
        "trailer": db_res.as_ref().map(|r| r.trailer),
        "db_sha256": db_res.as_ref().and_then(|r| r.db_sha256.clone()),
        "resumed": db_res.is_none(),
        "snap_file": format!("member/snap/{}", etcd_disk::snap::snap_name(1, p.cluster.members.len() as u64)),
    });
    let summary = format!(
        "restored {} into {} as member {} ({}) of cluster {} ({} members){}{}",
        p.snapshot.display(),
        p.data_dir.display(),
        p.name,
        ids::hex(p.cluster.local_id),
        ids::hex(p.cluster.cluster_id),
        p.cluster.members.len(),
        db_res
            .as_ref()
            .map(|r| format!(", revision {}", r.revision))
            .unwrap_or_default(),
        db_res
            .as_ref()
            .and_then(|r| r.bumped)
            .map(|b| format!(", bumped to {b} and marked compacted"))
            .unwrap_or_default(),
    );
    Ok(Outcome {
        changed: true,
        facts,
        data,
        warnings,
        summary,
        failure: None,
    })
}

fn build(p: &Plan, tmp: &Path, marker: &Path, parent: &Path) -> Result<DbResult> {
    mkdir0700(tmp)?;
    let member = tmp.join("member");
    mkdir0700(&member)?;
    let snap_dir = member.join("snap");
    mkdir0700(&snap_dir)?;
    diag::info(&format!(
        "building {} in {}",
        p.data_dir.display(),
        tmp.display()
    ));
    let r = write_db(p, &snap_dir.join("db"), parent)?;
    let wal = if p.wal_separate {
        p.wal_dir.clone()
    } else {
        member.join("wal")
    };
    // A separate WAL dir is built as `<wal-dir>.tmp` by the writer: remove it on a signal too.
    let wal_tmp = {
        let mut s = wal.as_os_str().to_owned();
        s.push(".tmp");
        PathBuf::from(s)
    };
    if p.wal_separate {
        track_partial(&wal_tmp);
    }
    let r2 = write_wal_and_snap(&p.cluster, &wal, &snap_dir);
    if p.wal_separate {
        untrack_partial(&wal_tmp);
    }
    r2?;
    for d in [&snap_dir, &member, tmp] {
        fsync_dir(d).map_err(|e| Error::io(format!("cannot fsync {}: {e}", d.display())))?;
    }
    if p.wal_separate {
        etcd_common::atomic::write_file(marker, marker_text(p).as_bytes(), 0o600)?;
    }
    Ok(r)
}

fn finish(p: &Plan, tmp: &Path, parent: &Path) -> Result<()> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error::io(format!("cannot {what} {}: {e}", path.display()))
    };
    if tmp.parent() == Some(p.data_dir.as_path()) {
        // Built inside the existing data dir: move `member/` into place.
        let member = p.data_dir.join("member");
        std::fs::rename(tmp.join("member"), &member).map_err(|e| io("rename into", &member, e))?;
        fsync_dir(&p.data_dir).map_err(|e| io("fsync", &p.data_dir, e))?;
        std::fs::remove_dir(tmp).map_err(|e| io("remove", tmp, e))?;
        // etcd wants its data dir private (3.4.10 refused anything else).
        let mode = std::fs::metadata(&p.data_dir)
            .map_err(|e| io("stat", &p.data_dir, e))?
            .mode()
            & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(&p.data_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io("chmod 0700", &p.data_dir, e))?;
        }
        return fsync_dir(&p.data_dir).map_err(|e| io("fsync", &p.data_dir, e));
    }
    std::fs::rename(tmp, &p.data_dir).map_err(|e| {
        Error::io(format!(
            "cannot rename {} to {}: {e}",
            tmp.display(),
            p.data_dir.display()
        ))
    })?;
    fsync_dir(parent).map_err(|e| Error::io(format!("cannot fsync {}: {e}", parent.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        a: RestoreArgs,
    }

    fn args(v: &[&str]) -> RestoreArgs {
        let mut all = vec!["t"];
        all.extend_from_slice(v);
        T::try_parse_from(all).unwrap().a
    }

    #[test]
    fn bump_and_mark_go_together() {
        assert!(T::try_parse_from(["t", "--bump-revision", "5"]).is_err());
        assert!(T::try_parse_from(["t", "--mark-compacted"]).is_err());
        let a = args(&["--bump-revision", "5", "--mark-compacted", "s.db"]);
        assert_eq!(a.bump_revision, Some(5));
    }

    #[test]
    fn flags_beat_env_file_beat_defaults() {
        let env = EnvFile::parse(
            "ETCD_NAME=b\nETCD_INITIAL_CLUSTER=a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380\n\
             ETCD_INITIAL_CLUSTER_TOKEN=tt\nETCD_INITIAL_ADVERTISE_PEER_URLS=http://10.0.0.2:2380\nETCD_DATA_DIR=/var/lib/etcd\n",
        )
        .unwrap();
        let p = plan(&args(&["s.db"]), Some(&env), &Facts::new()).unwrap();
        assert_eq!(p.name, "b");
        assert_eq!(ids::hex(p.cluster.local_id), "a000429f37de1964");
        assert_eq!(ids::hex(p.cluster.cluster_id), "fc866c2f5f0cb75f");
        assert_eq!(p.data_dir, PathBuf::from("/var/lib/etcd"));
        assert_eq!(p.wal_dir, PathBuf::from("/var/lib/etcd/member/wal"));
        assert!(!p.wal_separate);
        assert!(p.defaults_used.is_empty());
        // an explicit flag wins
        let p = plan(
            &args(&["--data-dir", "/srv/x", "--wal-dir", "/wal/x", "s.db"]),
            Some(&env),
            &Facts::new(),
        )
        .unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/srv/x"));
        assert!(p.wal_separate);
        // the env file's name with a flag that breaks the membership
        let e = plan(
            &args(&[
                "--initial-advertise-peer-urls",
                "http://10.0.0.9:2380",
                "s.db",
            ]),
            Some(&env),
            &Facts::new(),
        )
        .unwrap_err();
        assert_eq!(e.exit_code().code(), 2, "{e}");
    }

    #[test]
    fn etcdctl_defaults_and_warnings() {
        let p = plan(&args(&["s.db"]), None, &Facts::new()).unwrap();
        assert_eq!(p.name, "default");
        assert_eq!(p.data_dir, PathBuf::from("default.etcd"));
        assert_eq!(ids::hex(p.cluster.local_id), "8e9e05c52164694d");
        assert_eq!(ids::hex(p.cluster.cluster_id), "cdf818194e3a8c32");
        assert_eq!(default_warnings(&p).len(), 2);
    }

    #[test]
    fn membership_is_validated() {
        let bad = [
            vec![
                "--name",
                "x",
                "--initial-cluster",
                "a=http://h:1",
                "--initial-advertise-peer-urls",
                "http://h:1",
            ],
            vec![
                "--name",
                "a",
                "--initial-cluster",
                "a=http://h:1,b=http://h:1",
                "--initial-advertise-peer-urls",
                "http://h:1",
            ],
            vec![
                "--name",
                "a",
                "--initial-cluster",
                "a=ftp://h:1",
                "--initial-advertise-peer-urls",
                "ftp://h:1",
            ],
        ];
        for b in bad {
            let mut v = b.clone();
            v.push("s.db");
            assert_eq!(
                plan(&args(&v), None, &Facts::new())
                    .unwrap_err()
                    .exit_code()
                    .code(),
                2,
                "{v:?}"
            );
        }
        let e = plan(
            &args(&["--data-dir", "/d", "--wal-dir", "/d/w"]),
            None,
            &Facts::new(),
        );
        assert_eq!(e.unwrap_err().exit_code().code(), 2);
        // no file and no upstream fact
        assert_eq!(
            plan(&args(&[]), None, &Facts::new())
                .unwrap_err()
                .exit_code()
                .code(),
            2
        );
    }

    #[test]
    fn target_checks() {
        let d = tempfile::tempdir().unwrap();
        let dd = d.path().join("etcd");
        let mut a = args(&["s.db"]);
        a.data_dir = Some(dd.clone());
        let p = plan(&a, None, &Facts::new()).unwrap();
        assert_eq!(
            check_target(&p, false).unwrap(),
            Start::Fresh { cleaned: vec![] }
        );
        std::fs::create_dir(&dd).unwrap();
        assert!(matches!(
            check_target(&p, false).unwrap(),
            Start::Fresh { .. }
        ));
        // A mount point's lost+found and etcd-purge's copies do not block a restore into the
        // existing dir; anything else does.
        std::fs::create_dir(dd.join("lost+found")).unwrap();
        std::fs::create_dir(dd.join("member.purged.20261126T063000Z")).unwrap();
        assert!(matches!(
            check_target(&p, false).unwrap(),
            Start::Fresh { .. }
        ));
        assert_eq!(temp_paths(&dd).0, dd.join(".etcd-snap-restore"));
        std::fs::create_dir(dd.join("member")).unwrap();
        let e = check_target(&p, false).unwrap_err();
        assert_eq!(e.exit_code().code(), 7);
        assert!(e.message.contains("\"member\""), "{}", e.message);
        std::fs::remove_dir(dd.join("member")).unwrap();
        std::fs::write(dd.join("notes.txt"), b"x").unwrap();
        assert_eq!(check_target(&p, false).unwrap_err().exit_code().code(), 7);
        std::fs::remove_file(dd.join("notes.txt")).unwrap();
        // a leftover build dir is ours: cleaned
        let (tmp, _) = temp_paths(&dd);
        std::fs::create_dir_all(tmp.join("member")).unwrap();
        assert_eq!(
            check_target(&p, false).unwrap(),
            Start::Fresh {
                cleaned: vec![tmp.clone()]
            }
        );
        assert!(!tmp.exists());
        // an existing separate WAL dir is refused
        let mut a2 = a.clone();
        a2.wal_dir = Some(d.path().join("wal"));
        std::fs::create_dir(d.path().join("wal")).unwrap();
        let p2 = plan(&a2, None, &Facts::new()).unwrap();
        assert_eq!(check_target(&p2, false).unwrap_err().exit_code().code(), 7);
    }

    #[test]
    fn conf_change_entries_in_id_order() {
        let c = bootstrap(
            "b",
            "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380",
            "http://10.0.0.2:2380",
            "tt",
        )
        .unwrap();
        let e = conf_change_entries(&c);
        assert_eq!(e.len(), 3);
        assert_eq!(e.iter().map(|x| x.index).collect::<Vec<_>>(), vec![1, 2, 3]);
        // spec §7.3: the first entry is member c's AddNode
        let d = e[0].data.as_ref().unwrap();
        assert!(String::from_utf8_lossy(d).contains(r#""name":"c""#));
    }
}
