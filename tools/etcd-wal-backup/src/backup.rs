//! `backup`: the v2 method, online, carrying the v3 db by default.
//!
//! How the WAL and the db stay consistent, and why the newest acknowledged write is in:
//! 1. A linearizable read through the member (so it has applied everything acknowledged before
//!    the backup began), then `status` on it: its commit index `C` covers every such write.
//! 2. The db is copied from disk without taking etcd's (advisory) lock, and kept only if no
//!    bbolt commit landed during the copy (see [`etcd_common::livedb`]); otherwise, after 3 tries, or
//!    with `--db-source stream`, it comes from the member's snapshot stream (Maintenance.Snapshot,
//!    sha256 checked). Either way its `meta/consistent_index` is `CI`, the state of one commit.
//! 3. The WAL is cut at `X = max(C, CI)`: every entry up to `X` is committed, so final; we wait
//!    until the member's WAL holds it. The new WAL carries entries `(S, X]` after the `.snap` at
//!    `S ≤ CI`, **in place** (no renumbering: neutralised entries become empty entries with the
//!    same index and term), and a HardState with `commit = X`. So the db's consistent index
//!    (`CI ≤ X`) matches the log: etcd replays `(CI, X]` into the db and `(S, X]` into the v2
//!    store at startup, and `--force-new-cluster` keeps everything up to `X` (it discards
//!    only entries above the persisted commit, which is what loses the last write of
//!    `etcdctl backup`).
//! 4. Membership entries are neutralised and the WAL metadata gets new random node and cluster
//!    IDs, so the result starts only as a new one-member cluster with `--force-new-cluster`.

use crate::manifest::{self, FileEntry, Manifest};
use crate::DirGuard;
use etcd_common::conn::{ConnArgs, ConnConfig, ProcessEnv};
use etcd_common::envelope::{keys, Facts};
use etcd_common::envfile::EnvFile;
use etcd_common::livedb;
use etcd_common::localmember::{recorded_client_urls, wal_metadata};
use etcd_common::{diag, ids, Error, Outcome, Result};
use etcd_disk::bolt::{self, BoltDb};
use etcd_disk::datadir;
use etcd_disk::entry::{self, EntryKind, V3Kind};
use etcd_disk::proto::{entry_type, Entry, HardState, Metadata, WalSnapshot};
use etcd_disk::snap::{self, SnapFileInfo};
use etcd_disk::v2scan;
use etcd_disk::wal::{self, WalContents, WalWriter, WriterOptions};
use serde_json::{json, Value};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Flags of `backup`.
#[derive(clap::Args, Debug, Clone)]
pub struct BackupArgs {
    /// etcd's data dir (default: ETCD_DATA_DIR of --env-file, or the upstream data_dir fact)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The WAL dir when etcd runs with --wal-dir (default DATA_DIR/member/wal)
    #[arg(long, value_name = "DIR")]
    pub wal_dir: Option<PathBuf>,
    /// etcd's settings file (/etc/etcd.env): ETCD_DATA_DIR, ETCD_WAL_DIR, ETCD_ADVERTISE_CLIENT_URLS
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Where to write the backup (must not exist; built in BACKUP_DIR.part)
    #[arg(long, value_name = "DIR")]
    pub backup_dir: PathBuf,
    /// Leave the v3 data out (by default the db is carried, consistent with the WAL)
    #[arg(long)]
    pub without_v3: bool,
    /// Write one BACKUP_DIR.tar.gz instead of a directory
    #[arg(long)]
    pub archive: bool,
    /// How long to wait for the member's WAL to hold the committed index
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::parse_duration)]
    pub wal_wait: Duration,
    /// Where the v3 db comes from while etcd runs: disk (a lock-free copy of member/snap/db,
    /// kept only if no bbolt commit landed during it; after 3 tries, the stream) or stream (the
    /// member's snapshot stream, as etcdctl snapshot save)
    #[arg(long, value_enum, value_name = "SOURCE", default_value = "disk")]
    pub db_source: DbSource,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Where the v3 db of an online backup comes from.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbSource {
    /// A lock-free copy of member/snap/db checked against bbolt's commit counter.
    Disk,
    /// The member's snapshot stream (Maintenance.Snapshot).
    Stream,
}

/// What the online phase learned from the member.
#[derive(Debug, Clone, Default)]
struct Live {
    endpoint: String,
    version: String,
    member_id: u64,
    /// Commit index after a linearizable read.
    committed: u64,
    /// Revision the linearizable read saw.
    read_revision: i64,
}

/// Resolve the data dir: flag > upstream fact > env file.
fn data_dir_of(a: &BackupArgs, up: &Facts, env: Option<&EnvFile>) -> Result<PathBuf> {
    a.data_dir
        .clone()
        .or_else(|| {
            up.get(keys::DATA_DIR)
                .and_then(Value::as_str)
                .map(PathBuf::from)
        })
        .or_else(|| env.and_then(|e| e.get("ETCD_DATA_DIR")).map(PathBuf::from))
        .ok_or_else(|| Error::usage("--data-dir (or --env-file with ETCD_DATA_DIR) is required"))
}

/// `B` or `B.tar.gz`.
pub fn final_path(backup_dir: &Path, archive: bool) -> PathBuf {
    if archive {
        let mut s = backup_dir.as_os_str().to_owned();
        s.push(".tar.gz");
        PathBuf::from(s)
    } else {
        backup_dir.to_path_buf()
    }
}

/// Eight random bytes as a non-zero ID.
fn random_id() -> Result<u64> {
    let mut b = [0u8; 8];
    let mut f = std::fs::File::open("/dev/urandom")
        .map_err(|e| Error::io(format!("cannot open /dev/urandom: {e}")))?;
    std::io::Read::read_exact(&mut f, &mut b)
        .map_err(|e| Error::io(format!("cannot read /dev/urandom: {e}")))?;
    Ok(u64::from_le_bytes(b).max(1))
}

async fn find_member(cfg: &ConnConfig, node_id: u64) -> Result<(etcd_client::Client, Live)> {
    let mut seen = Vec::new();
    for ep in &cfg.endpoints {
        let mut c = match cfg.connect(std::slice::from_ref(ep)).await {
            Ok(c) => c,
            Err(e) => {
                seen.push(e.message);
                continue;
            }
        };
        match cfg.call(format!("status of {ep}"), c.status()).await {
            Ok(st) => {
                let id = st.header().map_or(0, |h| h.member_id());
                if id == node_id {
                    let live = Live {
                        endpoint: ep.clone(),
                        version: st.version().to_string(),
                        member_id: id,
                        ..Default::default()
                    };
                    return Ok((c, live));
                }
                seen.push(format!("{ep} is member {}", ids::hex(id)));
            }
            Err(e) => seen.push(e.message),
        }
    }
    let all_unreachable = seen.iter().all(|s| !s.contains(" is member "));
    let msg = format!(
        "no endpoint answers as member {} (the owner of the data dir): {}",
        ids::hex(node_id),
        seen.join("; ")
    );
    Err(if all_unreachable {
        Error::unreachable(msg)
    } else {
        Error::refused(format!(
            "{msg}; give the member's own client URL with --endpoints"
        ))
    })
}

/// Learn the committed index: a linearizable read, then the member's commit index.
async fn committed_index(
    cfg: &ConnConfig,
    c: &mut etcd_client::Client,
    live: &mut Live,
) -> Result<()> {
    let opts = etcd_client::GetOptions::new().with_count_only();
    let r = cfg
        .call(
            format!("linearizable read on {}", live.endpoint),
            c.get("etcd-wal-backup/barrier", Some(opts)),
        )
        .await?;
    live.read_revision = r.header().map_or(0, |h| h.revision());
    let st = cfg
        .call(format!("status of {}", live.endpoint), c.status())
        .await?;
    live.committed = st.raft_index();
    Ok(())
}

/// Stream the member's db into `dst` (0600), checking the server's sha256 trailer.
async fn stream_db(
    cfg: &ConnConfig,
    c: &mut etcd_client::Client,
    ep: &str,
    dst: &Path,
) -> Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let what = format!("snapshot stream from {ep}");
    let mut stream = cfg.call(&what, c.snapshot()).await?;
    let mut f = etcd_common::atomic::create_new(dst, 0o600)?;
    let mut h = Sha256::new();
    let mut held: Vec<u8> = Vec::with_capacity(64);
    let mut total: u64 = 0;
    let stall = cfg.command_timeout.max(Duration::from_secs(10));
    loop {
        let msg = match tokio::time::timeout(stall, stream.message()).await {
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(etcd_common::conn::etcd_error(e, &what)),
            Err(_) => {
                return Err(Error::unreachable(format!(
                    "{what}: stalled for {}",
                    etcd_common::duration::display(stall)
                )))
            }
        };
        let blob = msg.blob();
        total += blob.len() as u64;
        held.extend_from_slice(blob);
        if held.len() > 32 {
            let out = held.len() - 32;
            let chunk = held.get(..out).unwrap_or(&[]);
            h.update(chunk);
            f.write_all(chunk)
                .map_err(|e| Error::io(format!("cannot write {}: {e}", dst.display())))?;
            held.drain(..out);
        }
    }
    if total % 512 != 32 || held.len() != 32 {
        return Err(Error::bad_input(format!(
            "{what}: {total} bytes without the sha256 trailer (size % 512 != 32)"
        )));
    }
    let got: [u8; 32] = h.finalize().into();
    if got.as_slice() != held.as_slice() {
        return Err(Error::bad_input(format!(
            "{what}: sha256 mismatch: trailer {}, data {}",
            etcd_disk::snapshot::hex(&held),
            etcd_disk::snapshot::hex(&got)
        )));
    }
    f.sync_all()
        .map_err(|e| Error::io(format!("cannot fsync {}: {e}", dst.display())))?;
    Ok((total - 32, etcd_disk::snapshot::hex(&got)))
}

/// A disk copy that held: its `db_source` fact, and its size with the hash being computed.
fn kept(c: livedb::LiveCopy) -> (Value, (u64, livedb::HashJob)) {
    diag::debug(&format!(
        "db copied from disk at bbolt txid {} ({} bytes, attempt {})",
        c.txid, c.size, c.attempts
    ));
    (
        json!({"from": "disk", "txid": c.txid, "attempts": c.attempts}),
        (c.size, c.hash),
    )
}

/// The backed-up db's `meta/consistent_index` and revision.
fn index_and_revision(db: &Path) -> Result<(Option<u64>, Option<i64>)> {
    let s = v2scan::db_summary(&BoltDb::open(db)?, false)?;
    Ok((s.consistent_index, Some(s.revision)))
}

/// The `.snap` files that may be carried, newest first: loadable, `index <= max` (the db's
/// consistent index: etcd requires `consistent_index >= snapshot index`). A `.snap` in that
/// range that does not load is an error (exit 3): etcd would skip it, a backup must not hide it.
fn snap_candidates(snap_dir: &Path, max: u64) -> Result<Vec<SnapFileInfo>> {
    if !snap_dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(snap::list_snaps(snap_dir)?
        .into_iter()
        .filter(|i| i.index <= max || (i.index == 0 && i.term == 0))
        .collect())
}

/// Read the member's WAL at the snapshot until it holds entry `x` (or `wait` passes).
fn read_wal_until(dir: &Path, snap: (u64, u64), x: u64, wait: Duration) -> Result<WalContents> {
    let deadline = Instant::now() + wait;
    loop {
        let c = wal::read_at(dir, snap.0, snap.1)?;
        let last = c.entries.last().map_or(snap.0, |e| e.index);
        if last >= x {
            return Ok(c);
        }
        if Instant::now() >= deadline {
            return Err(Error::io(format!(
                "the WAL in {} ends at entry {last}, the committed index is {x}: not there after {}",
                dir.display(),
                etcd_common::duration::display(wait)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Why an entry was neutralised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Neutralised {
    pub conf_changes: u64,
    pub member_attributes: u64,
    pub v3_requests: u64,
    pub unknown_kept: u64,
    pub v2_writes: u64,
    pub v3_writes: u64,
}

/// Turn an entry into what the backup carries: membership changes (conf changes, member
/// attribute publishes) and, without v3, v3 requests become empty entries with the same index
/// and term (no renumbering, so the db's consistent index stays meaningful).
pub fn neutralise(e: Entry, with_v3: bool, n: &mut Neutralised) -> Entry {
    let blank = |e: &Entry| Entry {
        r#type: entry_type::NORMAL,
        term: e.term,
        index: e.index,
        data: None,
    };
    match e.r#type {
        entry_type::CONF_CHANGE | entry_type::CONF_CHANGE_V2 => {
            n.conf_changes += 1;
            blank(&e)
        }
        entry_type::NORMAL => match entry::classify_normal(e.data.as_deref().unwrap_or(&[])) {
            EntryKind::V2(r) if r.is_member_attributes() => {
                n.member_attributes += 1;
                blank(&e)
            }
            EntryKind::V2(r) => {
                if r.is_user_write() {
                    n.v2_writes += 1;
                }
                e
            }
            EntryKind::V3(r) if matches!(r.kind, V3Kind::ClusterMemberAttrSet { .. }) => {
                n.member_attributes += 1;
                blank(&e)
            }
            EntryKind::V3(r) if !with_v3 && r.has_header => {
                n.v3_requests += 1;
                blank(&e)
            }
            EntryKind::V3(r) => {
                if !matches!(r.kind, V3Kind::Range | V3Kind::Empty) {
                    n.v3_writes += 1;
                }
                e
            }
            EntryKind::Unknown(_) => {
                n.unknown_kept += 1;
                e
            }
            _ => e,
        },
        _ => {
            n.unknown_kept += 1;
            e
        }
    }
}

fn mkdir_0700(p: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::io(format!("cannot create {}: {e}", p.display())))
}

/// The membership the backup's db is given, consistent with what the data dir starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DbMembership {
    /// `members`: the carried `.snap`'s v2 members (none without a `.snap`: every membership
    /// entry of the WAL is neutralised); `--force-new-cluster` adds the new member itself.
    pub members: Vec<String>,
    /// `members_removed`: the `.snap`'s removed members, the source db's removed members and
    /// its members that are not kept (as etcd 3.5.30 leaves them after removing zombies).
    pub removed: Vec<String>,
    /// `meta/confState` voters: the new member alone, as etcd writes after the forced start.
    pub conf_state_voters: Vec<String>,
}

/// Edits that make the backup db's `members`, `members_removed` and `meta/confState` match
/// the membership the backup starts with: the v2 store's (the carried `.snap`, or none), and
/// the new member `node_id` as the only voter (`--force-new-cluster`). Without this the
/// source cluster's members stay in the db (no `.snap`: nothing removes them): etcd 3.5.16
/// keeps them, 3.5.30 removes them as zombies, 3.6 (membership from the db) brings them back.
pub fn membership_edits(
    source_db_members: &std::collections::BTreeSet<u64>,
    source_db_removed: &std::collections::BTreeSet<u64>,
    snap: Option<&(SnapFileInfo, etcd_disk::proto::RaftSnapshot)>,
    node_id: u64,
) -> Result<(bolt::write::Edits, DbMembership)> {
    let mut members: Vec<etcd_disk::membership::Member> = Vec::new();
    let mut removed: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
    if let Some((info, s)) = snap {
        let store =
            etcd_disk::v2store::parse_store_of(&info.path, s.data.as_deref().unwrap_or(&[]))?;
        for m in store.members() {
            members.push(etcd_disk::membership::Member {
                id: m.id,
                name: m.name.unwrap_or_default(),
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
                is_learner: m.is_learner,
            });
        }
        removed.extend(store.removed_members());
    }
    members.sort_by_key(|m| m.id);
    // Once removed, always removed (etcd refuses a removed ID for good).
    removed.extend(
        source_db_removed
            .iter()
            .filter(|id| !members.iter().any(|m| m.id == **id)),
    );
    for id in source_db_members {
        if !members.iter().any(|m| m.id == *id) {
            removed.insert(*id);
        }
    }
    let mut ed = bolt::write::Edits::new();
    ed.clear_bucket(b"members")?;
    ed.clear_bucket(b"members_removed")?;
    for m in &members {
        ed.put(
            b"members",
            format!("{:x}", m.id).as_bytes(),
            m.to_json().as_bytes(),
        )?;
    }
    for id in &removed {
        ed.put(b"members_removed", format!("{id:x}").as_bytes(), b"removed")?;
    }
    ed.put(
        b"meta",
        b"confState",
        etcd_disk::membership::conf_state_json(&[node_id], &[]).as_bytes(),
    )?;
    Ok((
        ed,
        DbMembership {
            members: members.iter().map(|m| ids::hex(m.id)).collect(),
            removed: removed.iter().map(|i| ids::hex(*i)).collect(),
            conf_state_voters: vec![ids::hex(node_id)],
        },
    ))
}

/// The db's path in a backup.
const DB_REL: &str = "member/snap/db";

const BATCH_BYTES: usize = 4 << 20;

/// Write the new WAL: entries `(S, X]` neutralised, HardState commit X, then the snapshot
/// record; the tail segment is truncated to its used length (etcd appends to it and cuts at
/// 64 MB as usual).
#[allow(clippy::too_many_arguments)]
fn write_wal(
    dst: &Path,
    src: &WalContents,
    x: u64,
    snap_rec: Option<WalSnapshot>,
    md: &Metadata,
    term: u64,
    with_v3: bool,
    n: &mut Neutralised,
) -> Result<u64> {
    // No fsync per batch: every segment and the dir are fsynced once at the end.
    let opts = WriterOptions {
        fsync: false,
        ..WriterOptions::default()
    };
    let mut w = WalWriter::create_with(dst, &etcd_disk::proto::encode(md), opts)?;
    let mut rd = src.entry_reader();
    let mut batch: Vec<Entry> = Vec::new();
    let mut bytes = 0usize;
    let mut count = 0u64;
    let mut last_term = 0;
    for loc in src.entries.iter().take_while(|l| l.index <= x) {
        let e = rd.read(loc)?;
        bytes += e.data.as_ref().map_or(0, Vec::len) + 16;
        last_term = e.term;
        batch.push(neutralise(e, with_v3, n));
        count += 1;
        if bytes >= BATCH_BYTES {
            w.save(&HardState::default(), &batch)?;
            batch.clear();
            bytes = 0;
        }
    }
    let hs = HardState {
        term: term.max(last_term),
        vote: 0,
        commit: x,
    };
    w.save(&hs, &batch)?;
    if let Some(s) = snap_rec {
        w.save_snapshot(&s)?;
    }
    let used = w.offset();
    let dir = w.finish()?;
    // Trim the preallocated zeros of the tail segment.
    let segs = wal::list_segments(&dir)?;
    let n = segs.len();
    for (i, seg) in segs.iter().enumerate() {
        let f = OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .map_err(|e| Error::io(format!("cannot open {}: {e}", seg.path.display())))?;
        if i + 1 == n {
            f.set_len(used)
                .map_err(|e| Error::io(format!("cannot trim {}: {e}", seg.path.display())))?;
        }
        f.sync_all()
            .map_err(|e| Error::io(format!("cannot fsync {}: {e}", seg.path.display())))?;
    }
    etcd_common::atomic::fsync_dir(&dir)
        .map_err(|e| Error::io(format!("cannot fsync {}: {e}", dir.display())))?;
    Ok(count)
}

/// The whole `backup` run.
pub async fn run(a: BackupArgs, upstream: &Facts) -> Result<Outcome> {
    let t0 = Instant::now();
    let phase = |what: &str| diag::debug(&format!("{:>6} ms  {what}", t0.elapsed().as_millis()));
    let env = match &a.env_file {
        Some(p) => Some(EnvFile::load(p)?),
        None => None,
    };
    let data_dir = data_dir_of(&a, upstream, env.as_ref())?;
    let wal_dir = a.wal_dir.clone().or_else(|| {
        env.as_ref()
            .and_then(|e| e.get("ETCD_WAL_DIR"))
            .map(PathBuf::from)
    });
    let ins = datadir::inspect(&data_dir, wal_dir.as_deref())
        .map_err(|e| Error::bad_input(e.to_string()))?;
    if !ins.is_etcd() || ins.wal_segments.is_empty() {
        return Err(Error::bad_input(format!(
            "{}: not an etcd data dir (no WAL segments in {})",
            data_dir.display(),
            ins.layout.wal_dir.display()
        )));
    }
    let fin = final_path(&a.backup_dir, a.archive);
    let parent = etcd_common::atomic::parent_of(&fin);
    if !parent.is_dir() {
        return Err(Error::bad_input(format!(
            "{}: no such directory",
            parent.display()
        )));
    }
    // One owner per target: claim the backup (dir or archive) before anything is written; a
    // second backup to it exits 7. Holding the claim, a `.part` found is a dead run's.
    // The staging dir BACKUP_DIR.part serves both kinds: BACKUP_DIR is claimed either way (a
    // dir and an archive backup to one name exclude each other), the archive too.
    let mut claim = vec![etcd_common::atomic::claim(&a.backup_dir)?];
    if a.archive {
        claim.push(etcd_common::atomic::claim(&fin)?);
    }
    let owner = &claim[0];
    // Holding the claim, a `.part` is a dead run's: removed first, also when the backup is
    // complete already (a run killed after its rename into place, before it removed its
    // staging dir), so that a rerun always cleans up.
    let part = etcd_common::atomic::part_path(&a.backup_dir);
    let mut cleaned = Vec::new();
    let mut parts = vec![part.clone()];
    if a.archive {
        parts.push(etcd_common::atomic::part_path(&fin));
    }
    for p in &parts {
        if let Some(p) = owner.clear_part(p)? {
            cleaned.push(format!(
                "removed {}, left by an interrupted run",
                p.display()
            ));
        }
    }
    if let Ok(m) = std::fs::symlink_metadata(&fin) {
        return Err(Error::refused(format!(
            "{} exists ({}): refusing to overwrite a backup",
            fin.display(),
            etcd_common::atomic::describe_type(&m)
        )));
    }
    let locks = datadir::probe_locks(&ins)?;
    let running = locks.held();

    // The WAL's identity (node and cluster ID).
    let md = wal_metadata(&ins.layout.wal_dir)?;

    let guard = DirGuard::create(&part)?;
    let member = part.join("member");
    let snap_out = member.join("snap");
    mkdir_0700(&snap_out)?;
    let db_out = snap_out.join("db");

    let mut live = None;
    // The db's size and sha256: known from the stream (checked against etcd's trailer), or
    // being computed by the thread that follows a disk copy.
    let mut known_db: Option<(u64, String)> = None;
    let mut db_hash: Option<(u64, livedb::HashJob)> = None;
    let mut db_source = None;
    let mut notes: Vec<String> = Vec::new();
    // Phase 1: the commit index and the db.
    let (db_ci, db_rev, x) = if running {
        let recorded = recorded_client_urls(&ins, md.node_id);
        let cfg = a
            .conn
            .resolve_with(upstream, &ProcessEnv, env.as_ref(), &recorded)?;
        phase("starting the db copy");
        // The disk copy runs while the member is asked for its commit index: the order does
        // not matter (X = max(C, CI) below), and it is always waited for before going on.
        let disk = (!a.without_v3 && a.db_source == DbSource::Disk && ins.db_exists).then(|| {
            let (src, dst) = (ins.layout.db.clone(), db_out.clone());
            etcd_common::runner::blocking("db copy", move || {
                livedb::copy_live_db(&src, &dst, |_| {})
            })
        });
        let asked = async {
            let (mut client, mut l) = find_member(&cfg, md.node_id).await?;
            committed_index(&cfg, &mut client, &mut l).await?;
            Ok::<_, Error>((client, l))
        }
        .await;
        let copied = match disk {
            Some(j) => Some(j.await?),
            None => None,
        };
        let (mut client, l) = asked?;
        phase("committed index learned, disk copy done");
        diag::info(&format!(
            "{}: member {} committed index {} (after a linearizable read at revision {})",
            l.endpoint,
            ids::hex(l.member_id),
            l.committed,
            l.read_revision
        ));
        let (ci, rev) = if a.without_v3 {
            (None, None)
        } else {
            match copied {
                Some(Ok(c)) => {
                    let (source, hash) = kept(c);
                    db_source = Some(source);
                    db_hash = Some(hash);
                }
                Some(Err(moved)) => {
                    let why = livedb::describe(&moved);
                    diag::warn(&format!(
                        "the db kept changing while it was copied ({why}): taking it from the snapshot stream"
                    ));
                    notes.push(format!(
                        "db from the snapshot stream: the disk copy never held still ({why})"
                    ));
                }
                None => {}
            }
            if db_hash.is_none() {
                known_db = Some(stream_db(&cfg, &mut client, &l.endpoint, &db_out).await?);
                db_source = Some(json!({"from": "stream"}));
            }
            index_and_revision(&db_out)?
        };
        let x = l.committed.max(ci.unwrap_or(0));
        live = Some(l);
        (ci, rev, Some(x))
    } else {
        notes.push(
            "etcd is not running on the data dir: the db is copied from disk and every entry in the WAL is carried (the persisted commit index may lag the last acknowledged write)"
                .into(),
        );
        let (ci, rev) = if a.without_v3 || !ins.db_exists {
            (None, None)
        } else {
            // Nothing commits on a stopped member: the same copy holds on the first try.
            match livedb::copy_live_db(&ins.layout.db, &db_out, |_| {})? {
                Ok(c) => {
                    let (source, hash) = kept(c);
                    db_source = Some(source);
                    db_hash = Some(hash);
                }
                Err(moved) => {
                    return Err(Error::refused(format!(
                        "{}: changed while copied although no etcd holds its lock: {}",
                        ins.layout.db.display(),
                        livedb::describe(&moved)
                    )))
                }
            }
            index_and_revision(&db_out)?
        };
        (ci, rev, None)
    };

    phase("db taken");
    // Phase 2: the .snap (S <= consistent index, recorded in the WAL) and the WAL up to X.
    // Candidates newest first; the first whose snapshot record the WAL holds is carried.
    let snap_max = db_ci.unwrap_or(u64::MAX).min(x.unwrap_or(u64::MAX));
    let wait = if running { a.wal_wait } else { Duration::ZERO };
    let wal_dir_src = ins.layout.wal_dir.clone();
    let snap_dir = ins.layout.snap_dir.clone();
    let (snaps, contents) = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut cands: Vec<Option<SnapFileInfo>> = snap_candidates(&snap_dir, snap_max)?
            .into_iter()
            .map(Some)
            .collect();
        cands.push(None);
        for cand in cands {
            let loaded = match cand {
                Some(info) => {
                    // A .snap being written while etcd runs may not load yet: retry briefly.
                    let mut attempt = 0;
                    let s = loop {
                        attempt += 1;
                        match snap::read_snap(&info.path) {
                            Err(e) if running && attempt < 3 => {
                                diag::debug(&format!("retrying after: {e}"));
                                std::thread::sleep(Duration::from_millis(300));
                            }
                            r => break r?,
                        }
                    };
                    if s.metadata.index > snap_max {
                        continue;
                    }
                    Some((info, s))
                }
                None => None,
            };
            let (si, st) = loaded
                .as_ref()
                .map_or((0, 0), |(_, s)| (s.metadata.index, s.metadata.term));
            let c = read_wal_until(&wal_dir_src, (si, st), x.unwrap_or(0), wait)?;
            if si > 0 && !c.snapshot_found {
                continue;
            }
            return Ok((loaded, c));
        }
        Err(Error::bad_input(format!(
            "{}: no snapshot usable with this WAL",
            snap_dir.display()
        )))
    })
    .await
    .map_err(|e| Error::internal(format!("wal reader: {e}")))??;
    let (s_index, s_term) = snaps
        .as_ref()
        .map_or((0, 0), |(_, s)| (s.metadata.index, s.metadata.term));
    if let Some(first) = contents.entries.first() {
        if first.index != s_index + 1 {
            return Err(Error::bad_input(format!(
                "{}: the WAL starts at entry {} after the snapshot at {s_index}: entries are missing",
                ins.layout.wal_dir.display(),
                first.index
            )));
        }
    }
    // Offline: everything the WAL holds (and at least the db's consistent index).
    let x = x.unwrap_or_else(|| {
        contents
            .entries
            .last()
            .map_or(s_index, |e| e.index)
            .max(contents.hard_state.commit)
            .max(db_ci.unwrap_or(0))
    });
    if contents.entries.last().map_or(s_index, |e| e.index) < x {
        return Err(Error::bad_input(format!(
            "{}: the WAL ends before entry {x} (the db's consistent index)",
            ins.layout.wal_dir.display()
        )));
    }
    let x_term = contents
        .entries
        .iter()
        .find(|e| e.index == x)
        .map_or(s_term, |e| e.term);

    phase("snap chosen, WAL read");
    // Phase 3: write the backup.
    let new_md = Metadata {
        node_id: random_id()?,
        cluster_id: random_id()?,
    };
    let mut neut = Neutralised::default();
    let snap_rec = snaps.as_ref().map(|(_, s)| WalSnapshot {
        index: s.metadata.index,
        term: s.metadata.term,
        conf_state: Some(s.metadata.conf_state.clone()),
    });
    let wal_out = member.join("wal");
    let with_v3 = !a.without_v3;
    let hs_term = contents.hard_state.term;
    let (count, contents) = {
        let wal_out = wal_out.clone();
        let new_md = new_md.clone();
        etcd_common::runner::blocking("wal writer", move || {
            let n = write_wal(
                &wal_out, &contents, x, snap_rec, &new_md, hs_term, with_v3, &mut neut,
            );
            n.map(|c| ((c, neut), contents))
        })
        .await?
    };
    let (entries, neut) = count;
    phase("WAL written");
    if let Some((info, _)) = &snaps {
        let name = info.path.file_name().map(PathBuf::from).unwrap_or_default();
        let dst = snap_out.join(&name);
        std::fs::copy(&info.path, &dst)
            .map_err(|e| Error::io(format!("cannot copy {}: {e}", info.path.display())))?;
        std::fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(|e| Error::io(format!("cannot chmod {}: {e}", dst.display())))?;
        // A .snap may have been rewritten while we copied: check the copy still loads.
        snap::read_snap(&dst)?;
        OpenOptions::new()
            .write(true)
            .open(&dst)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(format!("cannot fsync {}: {e}", dst.display())))?;
    }
    let db_membership = if a.without_v3 || !db_out.exists() {
        // A db holding only meta/consistent_index = X (and term), as etcdctl backup does
        // without --with-v3, plus the membership: etcd creates the other buckets at startup.
        let (mut ed, dm) = membership_edits(
            &Default::default(),
            &Default::default(),
            snaps.as_ref(),
            new_md.node_id,
        )?;
        ed.put(b"meta", b"consistent_index", &x.to_be_bytes())
            .and_then(|_| ed.put(b"meta", b"term", &x_term.to_be_bytes()))?;
        bolt::write::create(4096, &ed, &db_out)?;
        dm
    } else {
        // The copied db still holds the source cluster's membership: patched copy-on-write
        // (a few pages), so the hash of the copy no longer applies; it is hashed again below.
        let src = BoltDb::open(&db_out)?;
        let (old, old_removed) = v2scan::db_membership(&src)?;
        let (ed, dm) = membership_edits(&old, &old_removed, snaps.as_ref(), new_md.node_id)?;
        if let Some((_, job)) = db_hash.take() {
            job.wait()?;
        }
        known_db = None;
        bolt::patch(&src, &ed, &db_out)?;
        dm
    };
    etcd_common::atomic::fsync_dir(&snap_out)
        .and_then(|_| etcd_common::atomic::fsync_dir(&member))
        .map_err(|e| Error::io(format!("cannot fsync {}: {e}", member.display())))?;

    let complete_rev = match (&live, db_rev) {
        (Some(l), r) => Some(l.read_revision.max(r.unwrap_or(0))),
        (None, r) => r,
    };
    let m = Manifest {
        format: manifest::FORMAT.into(),
        created_at: manifest::now_rfc3339(),
        tool_version: etcd_common::runner::TOOL_VERSION.into(),
        source_data_dir: ins.layout.data_dir.display().to_string(),
        source_member_id: ids::hex(md.node_id),
        source_cluster_id: ids::hex(md.cluster_id),
        source_endpoint: live.as_ref().map(|l| l.endpoint.clone()),
        source_etcd_version: live.as_ref().map(|l| l.version.clone()),
        online: running,
        member_id: ids::hex(new_md.node_id),
        cluster_id: ids::hex(new_md.cluster_id),
        with_v3,
        complete_to_index: x,
        complete_to_revision: if with_v3 { complete_rev } else { None },
        committed_index: live.as_ref().map(|l| l.committed),
        consistent_index: db_ci,
        snapshot_index: s_index,
        snapshot_term: s_term,
        entries,
        neutralised: neut,
        files: Vec::<FileEntry>::new(),
    };
    // The other files are hashed while the db's hash thread finishes; the db's sha256 was
    // computed while it streamed in (and checked against etcd's) or while it was copied.
    phase("snap copied");
    // (A db written here, without v3, is hashed with the rest.)
    let skip: &[&str] = if db_hash.is_some() || known_db.is_some() {
        &[DB_REL]
    } else {
        &[]
    };
    let mut known = manifest::hash_files(&part, skip)?;
    phase("other files hashed");
    if let Some((n, job)) = db_hash {
        known_db = Some((n, job.wait()?));
    }
    if let Some((n, h)) = known_db {
        known.push((DB_REL.to_string(), n, h));
    }
    let m = manifest::write(&part, m, &known)?;
    phase("db hashed, manifest written");
    let files_total: u64 = m.files.iter().map(|f| f.size_bytes).sum();

    // Phase 4: into place.
    let out_path = if a.archive {
        manifest::archive(&part, &fin)?;
        guard.remove();
        fin.clone()
    } else {
        guard.commit(&fin)?;
        fin.clone()
    };
    drop(contents);
    drop(claim);
    phase("in place");

    let mut facts = Facts::new();
    facts.insert(keys::DATA_DIR.into(), json!(ins.layout.data_dir));
    facts.insert(keys::BACKUP_METHOD.into(), json!("v2"));
    if let Some(l) = &live {
        facts.insert(keys::ETCD_VERSION.into(), json!(l.version));
        facts.insert(keys::ENDPOINTS.into(), json!([l.endpoint]));
    }
    facts.insert(keys::MEMBER_ID.into(), json!(ids::hex(md.node_id)));
    facts.insert(keys::CLUSTER_ID.into(), json!(ids::hex(md.cluster_id)));
    facts.insert(
        "backup".into(),
        json!({
            "path": out_path,
            "archive": a.archive,
            "method": "v2",
            "with_v3": with_v3,
            "online": running,
            "complete_to_index": x,
            "complete_to_revision": m.complete_to_revision,
            "committed_index": m.committed_index,
            "consistent_index": db_ci,
            "snapshot_index": s_index,
            "entries": entries,
            "v2_writes": neut.v2_writes,
            "member_id": m.member_id,
            "cluster_id": m.cluster_id,
            "size_bytes": files_total,
            "files": m.files.iter().map(|f| json!({"path": f.path, "size_bytes": f.size_bytes, "sha256": f.sha256})).collect::<Vec<_>>(),
            "db_source": db_source,
            "db_membership": db_membership,
            "start_with": "--force-new-cluster",
        }),
    );
    let summary = format!(
        "backup of member {} written to {}: complete to raft index {x}{}; {} entries ({} membership entries neutralised), {}",
        ids::hex(md.node_id),
        out_path.display(),
        m.complete_to_revision
            .map(|r| format!(" and revision {r}"))
            .unwrap_or_default(),
        entries,
        neut.conf_changes + neut.member_attributes,
        if with_v3 { "with the v3 db" } else { "without v3 data" }
    );
    Ok(Outcome {
        changed: true,
        facts,
        data: json!({"manifest": m, "notes": notes, "locks": locks.describe_held()}),
        warnings: {
            if neut.unknown_kept > 0 {
                cleaned.push(format!(
                    "{} entries of unknown kind carried unchanged",
                    neut.unknown_kept
                ));
            }
            cleaned
        },
        summary,
        failure: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use etcd_common::localmember::published_client_urls;
    use etcd_disk::proto::{
        encode, ConfChange, InternalRaftRequest, PutRequest, Request, RequestHeader,
    };

    fn normal(i: u64, d: Vec<u8>) -> Entry {
        Entry {
            r#type: entry_type::NORMAL,
            term: 2,
            index: i,
            data: Some(d),
        }
    }

    #[test]
    fn neutralisation_in_place() {
        let mut n = Neutralised::default();
        let cc = Entry {
            r#type: entry_type::CONF_CHANGE,
            term: 2,
            index: 7,
            data: Some(encode(&ConfChange {
                id: 1,
                r#type: 0,
                node_id: 5,
                context: None,
            })),
        };
        let b = neutralise(cc, true, &mut n);
        assert_eq!((b.r#type, b.term, b.index, b.data), (0, 2, 7, None));
        let attr = normal(
            8,
            encode(&Request {
                id: 1,
                method: b"PUT".to_vec(),
                path: b"/0/members/4f6e8cdffebd6727/attributes".to_vec(),
                ..Default::default()
            }),
        );
        assert_eq!(neutralise(attr, true, &mut n).data, None);
        let user = normal(
            9,
            encode(&Request {
                id: 1,
                method: b"PUT".to_vec(),
                path: b"/1/a".to_vec(),
                ..Default::default()
            }),
        );
        assert!(neutralise(user.clone(), false, &mut n).data.is_some());
        let put = normal(
            10,
            encode(&InternalRaftRequest {
                put: Some(PutRequest {
                    key: b"k".to_vec(),
                    ..Default::default()
                }),
                header: Some(RequestHeader {
                    id: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        );
        assert!(neutralise(put.clone(), true, &mut n).data.is_some());
        let blanked = neutralise(put, false, &mut n);
        assert_eq!((blanked.index, blanked.data), (10, None));
        assert_eq!(
            n,
            Neutralised {
                conf_changes: 1,
                member_attributes: 1,
                v3_requests: 1,
                unknown_kept: 0,
                v2_writes: 1,
                v3_writes: 1
            }
        );
    }

    #[test]
    fn own_client_urls_from_a_publish() {
        let v2 = encode(&Request {
            id: 1,
            method: b"PUT".to_vec(),
            path: b"/0/members/4f6e8cdffebd6727/attributes".to_vec(),
            val: br#"{"name":"n1","clientURLs":["http://127.0.3.1:2379"]}"#.to_vec(),
            ..Default::default()
        });
        assert_eq!(
            published_client_urls(&v2, 0x4f6e8cdffebd6727),
            Some(vec!["http://127.0.3.1:2379".to_string()])
        );
        assert_eq!(published_client_urls(&v2, 0x1234), None);
        let v3 = encode(&InternalRaftRequest {
            header: Some(RequestHeader {
                id: 3,
                ..Default::default()
            }),
            cluster_member_attr_set: Some(etcd_disk::proto::ClusterMemberAttrSetRequest {
                member_id: 7,
                member_attributes: Some(etcd_disk::proto::MemberAttributes {
                    name: b"m0".to_vec(),
                    client_urls: vec![b"https://10.0.0.1:2379".to_vec()],
                }),
            }),
            ..Default::default()
        });
        assert_eq!(
            published_client_urls(&v3, 7),
            Some(vec!["https://10.0.0.1:2379".to_string()])
        );
        assert_eq!(published_client_urls(&v3, 8), None);
    }

    #[test]
    fn membership_without_a_snap_is_the_new_voter_alone() {
        let old = std::collections::BTreeSet::from([1u64, 2, 3]);
        let (_, dm) =
            membership_edits(&old, &Default::default(), None, 0x2f78d2aed22d6905).unwrap();
        assert!(dm.members.is_empty());
        assert_eq!(
            dm.removed,
            vec![
                "0000000000000001".to_string(),
                "0000000000000002".into(),
                "0000000000000003".into()
            ]
        );
        assert_eq!(dm.conf_state_voters, vec!["2f78d2aed22d6905".to_string()]);
        // A second pass (restore on a trimmed backup) keeps the removed members.
        let removed = std::collections::BTreeSet::from([1u64, 2, 3]);
        let (_, again) =
            membership_edits(&Default::default(), &removed, None, 0x2f78d2aed22d6905).unwrap();
        assert_eq!(again, dm);
    }

    #[test]
    fn archive_name() {
        assert_eq!(
            final_path(Path::new("/b/x"), true),
            PathBuf::from("/b/x.tar.gz")
        );
        assert_eq!(final_path(Path::new("/b/x"), false), PathBuf::from("/b/x"));
    }
}
