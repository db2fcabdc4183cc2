//! `save`: stream a snapshot from one member to `FILE.part`, check it, rename it into place.
//!
//! Decisions:
//! - **Endpoint**: with several endpoints, ask each for its status (in parallel), drop the
//!   unreachable ones and learners (a learner may lag), take the leader, else the member with the
//!   highest raft index ([`choose`], a pure function). The choice and why are in `data.chosen`.
//! - **Integrity**: the server sends `image ‖ sha256(image)`. We hash while streaming, holding
//!   back the last 32 bytes, then require the size rule (`size % 512 == 32`) *and* that the
//!   held-back bytes equal the hash (etcdctl checks only the size). The same hasher, cloned
//!   before the trailer is fed, gives both the image hash (`db_sha256`) and the file's hash
//!   (`sha256`, what `sha256sum FILE` prints) in one pass.
//! - **Timeouts**: a stall timeout (no bytes for `--stall-timeout`, default 30s) instead of
//!   etcdctl's endless wait; the overall `--command-timeout` applies only when given (flag or
//!   `ETCDCTL_COMMAND_TIMEOUT`), as in etcdctl. The gRPC channel itself gets no request timeout
//!   for the stream.
//! - **Writing**: the network loop only receives; a writer thread hashes, optionally compresses
//!   and writes, so hashing/compression overlap the transfer on the second core. The channel is
//!   bounded (64 chunks of ≤ 64 KiB), so memory stays small whatever the db size.
//! - **Compression** (`--compress` → `FILE.gz`): gzip through flate2 with the zlib-rs backend at
//!   level 1 ([`GZIP_LEVEL`]). Measured here on 100 MB of Kubernetes-like JSON objects (release
//!   build, one core): zlib-rs level 1 250 MB/s (ratio 0.158), level 6 51 MB/s (0.095);
//!   miniz_oxide (flate2's default backend) level 1 183 MB/s (0.137), level 6 28 MB/s (0.093);
//!   on near-incompressible data level 1 and 6 give the same ratio (0.51 vs 0.49) at 100 vs
//!   39 MB/s. Level 6 would make compression, not the network, the bottleneck of a save (etcd
//!   streams a snapshot at 100–300 MB/s on a LAN), for 5–7 % of the original size; level 1 keeps
//!   up, and zlib-rs is the fastest backend flate2 offers without a C toolchain.
//! - **Files**: `FILE.part` (0600) → fsync → rename → fsync dir ([`AtomicFile`]); the `.part`
//!   is removed on any error and on SIGINT/SIGTERM. FILE is claimed first (`FILE.lock`, see
//!   `etcd_common::atomic::claim`): a second save to the same FILE exits 7 before it fetches
//!   anything. `.part` is created `O_EXCL|O_NOFOLLOW`; a FILE that is a symlink, FIFO, socket,
//!   device or directory is refused (exit 7); an existing regular FILE is refused unless
//!   `--force`, which moves it to FILE.prev on success (`facts.snapshot.previous`).
//! - **Progress**: a one-line counter on stderr, only when stderr is a terminal (no indicatif:
//!   one more dependency tree for a counter was not worth it).

use crate::inspect;
use etcd_common::atomic::{part_path, AtomicFile};
use etcd_common::conn::{etcd_error, ConnArgs, ConnConfig, ProcessEnv};
use etcd_common::envelope::{keys, Facts};
use etcd_common::envfile::EnvFile;
use etcd_common::{diag, duration, ids, Ctx, Error, Outcome, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// gzip level used by `--compress` (see the module docs).
pub const GZIP_LEVEL: u32 = 1;

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    duration::parse(s)
}

/// Arguments of `save`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct SaveArgs {
    /// Where to write the snapshot (FILE.part until it is complete and checked)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// gzip the snapshot (level 1) and write FILE.gz (FILE if it already ends in .gz)
    #[arg(long)]
    pub compress: bool,
    /// Move an existing FILE aside to FILE.prev (replacing an older FILE.prev) instead of
    /// refusing (exit 7); a FILE that is not a regular file is refused even so
    #[arg(long)]
    pub force: bool,
    /// Give up when no bytes arrived for this long
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub stall_timeout: Duration,
    /// On the member's host: copy the db from this data dir (lock-free, checked to be one bbolt
    /// commit) when its member is a caught-up voter, else stream it (see --require-local).
    /// The endpoints default to the client URLs the data dir last published. A DIR that is
    /// not a member's data dir is exit 3; not with --compress
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The member's WAL dir when etcd runs with --wal-dir (default DATA_DIR/member/wal)
    #[arg(long, value_name = "DIR")]
    pub wal_dir: Option<PathBuf>,
    /// etcd's settings file (/etc/etcd.env): ETCD_DATA_DIR (as --data-dir), ETCD_WAL_DIR,
    /// ETCD_ADVERTISE_CLIENT_URLS (the member's endpoint)
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// With --data-dir: fail (exit 5) instead of streaming when the local copy cannot be
    /// taken (member lagging, a learner, no leader, or the db never held still)
    #[arg(long)]
    pub require_local: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// What one endpoint's status said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    pub endpoint: String,
    pub error: Option<String>,
    pub member_id: u64,
    pub cluster_id: u64,
    pub leader: u64,
    pub raft_index: u64,
    /// The member's applied index (`raft_applied_index` of its status).
    pub applied: u64,
    pub is_learner: bool,
    pub version: String,
    pub db_size: i64,
}

impl Candidate {
    fn is_leader(&self) -> bool {
        self.error.is_none() && self.leader != 0 && self.leader == self.member_id
    }
}

/// Pick the member to save from: the leader, else the voter with the highest raft index (the
/// first such in the given order); never a learner nor an unreachable endpoint.
/// Returns the index and the reason in words.
pub fn choose(c: &[Candidate]) -> std::result::Result<(usize, &'static str), String> {
    let usable: Vec<usize> = (0..c.len())
        .filter(|&i| c[i].error.is_none() && !c[i].is_learner)
        .collect();
    if usable.is_empty() {
        let why: Vec<String> = c
            .iter()
            .map(|x| match &x.error {
                Some(e) => format!("{}: {e}", x.endpoint),
                None => format!("{}: a learner", x.endpoint),
            })
            .collect();
        return Err(why.join("; "));
    }
    if let Some(&i) = usable.iter().find(|&&i| c[i].is_leader()) {
        return Ok((i, "leader"));
    }
    let mut best = usable[0];
    for &i in &usable {
        if c[i].raft_index > c[best].raft_index {
            best = i;
        }
    }
    Ok((best, "highest raft index (no leader among the endpoints)"))
}

/// The final file name: FILE, or FILE.gz with `--compress` (unless FILE ends in .gz).
pub fn dest_path(file: &Path, compress: bool) -> PathBuf {
    let is_gz = file.extension().is_some_and(|e| e == "gz");
    if compress && !is_gz {
        let mut s = file.as_os_str().to_owned();
        s.push(".gz");
        PathBuf::from(s)
    } else {
        file.to_path_buf()
    }
}

pub(crate) async fn probe(cfg: &ConnConfig, ep: String) -> Candidate {
    let mut c = Candidate {
        endpoint: ep.clone(),
        ..Default::default()
    };
    let mut client = match cfg.connect(std::slice::from_ref(&ep)).await {
        Ok(cl) => cl,
        Err(e) => {
            c.error = Some(e.message);
            return c;
        }
    };
    match cfg.call(format!("status of {ep}"), client.status()).await {
        Ok(s) => {
            c.leader = s.leader();
            c.raft_index = s.raft_index();
            c.applied = s.raft_applied_index();
            c.is_learner = s.is_learner();
            c.version = s.version().to_string();
            c.db_size = s.db_size();
            if let Some(h) = s.header() {
                c.member_id = h.member_id();
                c.cluster_id = h.cluster_id();
            }
        }
        Err(e) => c.error = Some(e.message),
    }
    c
}

/// Hashes and counts the bytes written through it (the compressed file's sha256).
struct HashWriter<W: Write> {
    inner: W,
    h: Sha256,
    n: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.h.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

enum Sink {
    Plain(std::io::BufWriter<AtomicFile>),
    Gzip(Box<flate2::write::GzEncoder<HashWriter<std::io::BufWriter<AtomicFile>>>>),
}

/// What the writer thread produced.
struct Written {
    file: AtomicFile,
    /// Bytes received from the server.
    total: u64,
    image_sha: [u8; 32],
    trailer: Option<[u8; 32]>,
    file_sha: [u8; 32],
    file_size: u64,
    /// With --compress: the last key of bucket `key` (the revision), read from the stream.
    last_key: Option<std::result::Result<Option<Vec<u8>>, String>>,
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("cannot write {}: {e}", path.display()))
}

/// The writer thread: hold back the last 32 bytes, hash the rest, write everything.
fn writer(
    mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    file: AtomicFile,
    compress: bool,
) -> Result<Written> {
    let part = file.part_path().to_path_buf();
    let mut sink = if compress {
        Sink::Gzip(Box::new(flate2::write::GzEncoder::new(
            HashWriter {
                inner: std::io::BufWriter::with_capacity(1 << 20, file),
                h: Sha256::new(),
                n: 0,
            },
            flate2::Compression::new(GZIP_LEVEL),
        )))
    } else {
        Sink::Plain(std::io::BufWriter::with_capacity(1 << 20, file))
    };
    let mut h = Sha256::new();
    let mut held: Vec<u8> = Vec::with_capacity(64);
    let mut total = 0u64;
    // The gzip file cannot be read back cheaply: take the revision on the way.
    let mut scan = compress.then(|| etcd_disk::bolt::stream::LastKeyScan::new(b"key"));
    while let Some(chunk) = rx.blocking_recv() {
        total += chunk.len() as u64;
        if let Some(s) = &mut scan {
            s.feed(&chunk);
        }
        match &mut sink {
            Sink::Plain(w) => w.write_all(&chunk),
            Sink::Gzip(w) => w.write_all(&chunk),
        }
        .map_err(|e| io_err(&part, e))?;
        // Hash all but the last 32 bytes seen so far.
        if chunk.len() >= 32 {
            h.update(&held);
            let cut = chunk.len() - 32;
            h.update(&chunk[..cut]);
            held.clear();
            held.extend_from_slice(&chunk[cut..]);
        } else {
            held.extend_from_slice(&chunk);
            if held.len() > 32 {
                let cut = held.len() - 32;
                h.update(&held[..cut]);
                held.drain(..cut);
            }
        }
    }
    let image_sha: [u8; 32] = h.clone().finalize().into();
    let trailer: Option<[u8; 32]> = held.as_slice().try_into().ok();
    h.update(&held);
    let plain_sha: [u8; 32] = h.finalize().into();
    let (file, file_sha, file_size) = match sink {
        Sink::Plain(w) => (
            w.into_inner().map_err(|e| io_err(&part, e.into_error()))?,
            plain_sha,
            total,
        ),
        Sink::Gzip(g) => {
            let hw = g.finish().map_err(|e| io_err(&part, e))?;
            let sha: [u8; 32] = hw.h.finalize().into();
            let f = hw
                .inner
                .into_inner()
                .map_err(|e| io_err(&part, e.into_error()))?;
            (f, sha, hw.n)
        }
    };
    Ok(Written {
        file,
        total,
        image_sha,
        trailer,
        file_sha,
        file_size,
        last_key: scan.map(|s| s.finish()),
    })
}

struct Progress {
    on: bool,
    last: Instant,
    total: u64,
}

impl Progress {
    fn new() -> Progress {
        use std::io::IsTerminal;
        Progress {
            on: std::io::stderr().is_terminal() && diag::verbosity() >= 0,
            last: Instant::now(),
            total: 0,
        }
    }
    fn tick(&mut self, got: u64, done: bool) {
        if !self.on || (!done && self.last.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.last = Instant::now();
        let pct = if self.total > 0 {
            format!(" ({:.0}%)", got as f64 * 100.0 / self.total as f64)
        } else {
            String::new()
        };
        eprint!(
            "\retcd-snap: saving: {:.1} MB of {:.1} MB{pct}   {}",
            got as f64 / 1e6,
            self.total as f64 / 1e6,
            if done { "\n" } else { "" }
        );
    }
}

/// What is wrong with a received stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamProblem {
    /// The size rule (`size % 512 == 32`) does not hold: no trailer (or cut short).
    NoTrailer,
    /// The last 32 bytes are not the sha256 of the rest.
    Mismatch(etcd_disk::snapshot::TrailerCheck),
}

/// Check a received stream: the size rule, then the trailer against the image hash.
pub fn check_stream(
    total: u64,
    trailer: Option<[u8; 32]>,
    image_sha: [u8; 32],
) -> Option<StreamProblem> {
    match trailer {
        Some(t) if etcd_disk::snapshot::has_trailer(total) => {
            (t != image_sha).then_some(StreamProblem::Mismatch(etcd_disk::snapshot::TrailerCheck {
                expected: t,
                actual: image_sha,
            }))
        }
        _ => Some(StreamProblem::NoTrailer),
    }
}

/// Stream the snapshot of `ep` into `tx`. Returns bytes received.
async fn stream(
    cfg: &ConnConfig,
    ep: &str,
    stall: Duration,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<u64> {
    // No request timeout on the stream's channel: the stall timeout below replaces it.
    let opts = cfg
        .options()?
        .with_timeout(Duration::from_secs(100 * 365 * 86400));
    let connect = etcd_client::Client::connect([ep.to_string()], Some(opts));
    let client = match tokio::time::timeout(cfg.dial_timeout + stall, connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(etcd_error(e, format!("cannot connect to {ep}"))),
        Err(_) => {
            return Err(Error::unreachable(format!(
                "cannot connect to {ep}: deadline exceeded"
            )))
        }
    };
    let what = format!("snapshot from {ep}");
    let stalled = || {
        Error::unreachable(format!(
            "{what}: stalled: no data for {} (--stall-timeout)",
            duration::display(stall)
        ))
    };
    let mut s = match tokio::time::timeout(stall, client.maintenance_client().snapshot()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(etcd_error(e, &what)),
        Err(_) => return Err(stalled()),
    };
    let mut got = 0u64;
    let mut progress = Progress::new();
    loop {
        let msg = match tokio::time::timeout(stall, s.message()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(etcd_error(e, &what)),
            Err(_) => return Err(stalled()),
        };
        let Some(m) = msg else { break };
        let blob = m.blob();
        if progress.total == 0 {
            progress.total = m.remaining_bytes() + blob.len() as u64;
        }
        got += blob.len() as u64;
        if blob.is_empty() {
            continue;
        }
        if tx.send(blob.to_vec()).await.is_err() {
            // The writer stopped (an I/O error): it reports why.
            break;
        }
        progress.tick(got, false);
    }
    progress.tick(got, true);
    Ok(got)
}

fn command_timeout_given(a: &ConnArgs) -> Option<Duration> {
    a.command_timeout.or_else(|| {
        std::env::var("ETCDCTL_COMMAND_TIMEOUT")
            .ok()
            .and_then(|v| duration::parse(&v).ok())
    })
}

/// Stream the snapshot of `ep` into `FILE.part` through the writer thread and check it (size
/// rule and trailer). On failure the `.part` is removed.
async fn stream_checked(
    cfg: &ConnConfig,
    a: &SaveArgs,
    dest: &Path,
    ep: &str,
    overall: Option<Duration>,
) -> Result<Saved> {
    let file = AtomicFile::create(dest, 0o600)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let compress = a.compress;
    // A writer of the .part: on a signal the runner waits for it to stop before removing it.
    let busy = etcd_common::atomic::writer();
    let wt = std::thread::spawn(move || {
        let _busy = busy;
        writer(rx, file, compress)
    });
    let fut = stream(cfg, ep, a.stall_timeout, tx);
    let streamed = match overall {
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::unreachable(format!(
                "snapshot from {ep}: deadline exceeded after {} (--command-timeout)",
                duration::display(t)
            ))),
        },
        None => fut.await,
    };
    // The sender is dropped here (on error too): the writer drains and ends.
    let written = tokio::task::spawn_blocking(move || wt.join())
        .await
        .map_err(|e| Error::internal(format!("writer: {e}")))?
        .map_err(|_| Error::internal("writer thread panicked"))?;
    let got = streamed?;
    let w = written?;
    if w.total != got {
        return Err(Error::io(format!(
            "{}: wrote {} of {} bytes received",
            part_path(dest).display(),
            w.total,
            got
        )));
    }
    // 3. Check: size rule and the trailer. On failure the .part goes with `w.file`.
    let shown = part_path(dest);
    let image_len = w.total.saturating_sub(32);
    match check_stream(w.total, w.trailer, w.image_sha) {
        None => {}
        Some(StreamProblem::NoTrailer) => {
            return Err(Error::bad_input(format!(
                "{}: offset {}: snapshot stream from {ep} ended after {} bytes without a sha256 trailer (size % 512 != 32); nothing saved",
                shown.display(),
                w.total,
                w.total
            )))
        }
        Some(StreamProblem::Mismatch(c)) => {
            return Err(Error::bad_input(format!(
                "{}: offset {image_len}: snapshot from {ep} is corrupt: sha256 of bytes 0..{image_len} does not match the server's trailer ({}); nothing saved",
                shown.display(),
                c.etcd_message()
            )));
        }
    }
    Ok(Saved {
        file: w.file,
        total: w.total,
        image_sha: w.image_sha,
        file_sha: w.file_sha,
        file_size: w.file_size,
        last_key: w.last_key,
        txid: None,
    })
}

/// What was written to `FILE.part`, checked, by either path.
struct Saved {
    file: AtomicFile,
    /// Bytes of the snapshot (image and trailer), uncompressed.
    total: u64,
    image_sha: [u8; 32],
    file_sha: [u8; 32],
    file_size: u64,
    last_key: Option<std::result::Result<Option<Vec<u8>>, String>>,
    /// Disk copies: the bbolt txid and the attempts it took.
    txid: Option<(u64, u32)>,
}

/// Where the snapshot came from, and why.
struct Source {
    disk: bool,
    reason: Option<String>,
}

/// The local-copy flags resolved: the data dir (flag > ETCD_DATA_DIR of --env-file).
fn local_dir(a: &SaveArgs, env: Option<&EnvFile>) -> Result<Option<PathBuf>> {
    let dir = a
        .data_dir
        .clone()
        .or_else(|| env.and_then(|e| e.get("ETCD_DATA_DIR")).map(PathBuf::from));
    if dir.is_none() {
        if let Some(p) = &a.env_file {
            return Err(Error::usage(format!(
                "--env-file {}: no ETCD_DATA_DIR (give --data-dir)",
                p.display()
            )));
        }
        if a.require_local {
            return Err(Error::usage(
                "--require-local needs --data-dir or --env-file",
            ));
        }
        if a.wal_dir.is_some() {
            return Err(Error::usage("--wal-dir needs --data-dir or --env-file"));
        }
    } else if a.compress {
        return Err(Error::usage(
            "--compress cannot be combined with --data-dir/--env-file (the local copy is written as a plain snapshot; gzip it afterwards, or stream with --compress)",
        ));
    }
    Ok(dir)
}

/// `etcd-snap save`.
pub async fn run(a: SaveArgs, ctx: &Ctx) -> Result<Outcome> {
    let env = match &a.env_file {
        Some(p) => Some(EnvFile::load(p)?),
        None => None,
    };
    let local = match local_dir(&a, env.as_ref())? {
        Some(d) => {
            let wal = a.wal_dir.clone().or_else(|| {
                env.as_ref()
                    .and_then(|e| e.get("ETCD_WAL_DIR"))
                    .map(PathBuf::from)
            });
            Some(crate::local::open(&d, wal.as_deref())?)
        }
        None => None,
    };
    let recorded = local
        .as_ref()
        .map(|l| l.recorded_urls.clone())
        .unwrap_or_default();
    let cfg = a
        .conn
        .resolve_with(&ctx.upstream, &ProcessEnv, env.as_ref(), &recorded)?;
    let overall = command_timeout_given(&a.conn);
    let dest = dest_path(&a.file, a.compress);
    // One owner per target: claim FILE before anything else (a second run gets exit 7), then
    // check what is there: nothing, or a regular file to move aside with --force.
    let claim = etcd_common::atomic::claim(&dest)?;
    let existing = etcd_common::atomic::check_target_file(&dest, a.force)?;
    let mut warnings = Vec::new();
    if let Some(p) = claim.clear_part(&part_path(&dest))? {
        warnings.push(format!(
            "removed {}, left by an interrupted run",
            p.display()
        ));
    }
    let started = Instant::now();

    // 1. Choose the member.
    let mut set = tokio::task::JoinSet::new();
    for (i, ep) in cfg.endpoints.iter().enumerate() {
        let (cfg, ep) = (cfg.clone(), ep.clone());
        set.spawn(async move { (i, probe(&cfg, ep).await) });
    }
    let mut cands: Vec<(usize, Candidate)> = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(x) = r {
            cands.push(x);
        }
    }
    cands.sort_by_key(|(i, _)| *i);
    let mut cands: Vec<Candidate> = cands.into_iter().map(|(_, c)| c).collect();

    // 1b. On the member's host: may its db be copied from disk?
    let local_ok = match &local {
        Some(l) => Some(crate::local::check(&cfg, l, &mut cands).await),
        None => None,
    };
    let mut source = Source {
        disk: false,
        reason: None,
    };
    let mut disk_member = None;
    match &local_ok {
        Some(Ok((i, why))) => {
            disk_member = Some(*i);
            source.reason = Some(why.clone());
        }
        Some(Err(why)) => {
            if a.require_local {
                return Err(Error::check_failed(format!(
                    "no local copy of {}: {why}; not streaming (--require-local)",
                    local
                        .as_ref()
                        .map_or(String::new(), |l| l.db.display().to_string())
                )));
            }
            diag::warn(&format!(
                "no local copy: {why}: streaming the snapshot instead"
            ));
            source.reason = Some(format!("streamed: {why}"));
        }
        None => {}
    }
    let (ci, why) = match disk_member {
        Some(i) => (i, "the data dir's member (--data-dir)"),
        None => match choose(&cands) {
            Ok(x) => x,
            Err(why) => {
                let all_learners = cands.iter().all(|c| c.error.is_none() && c.is_learner);
                return Err(if all_learners {
                    Error::refused(format!(
                        "no voting member to save from: {why} (a learner may lag; give a voter's endpoint)"
                    ))
                } else {
                    Error::unreachable(format!("no endpoint to save from: {why}"))
                });
            }
        },
    };
    let chosen = cands[ci].clone();
    diag::info(&format!(
        "saving from {} ({}, member {})",
        chosen.endpoint,
        why,
        ids::hex(chosen.member_id)
    ));

    // The v2 store is not in a v3 snapshot: ask the member's v2 API (its top level only)
    // while the snapshot streams, to warn when it holds data.
    let v2_probe = {
        let (cfg, ep) = (cfg.clone(), chosen.endpoint.clone());
        tokio::spawn(async move {
            let t = cfg.command_timeout;
            etcd_common::v2::probe(&cfg, &ep, false, 3, t).await
        })
    };

    // 2. The disk copy, when allowed; it falls back to the stream when it never held still.
    let taken_at = SystemTime::now();
    let mut saved = None;
    if let (Some(l), Some(_)) = (&local, disk_member) {
        let mut file = AtomicFile::create(&dest, 0o600)?;
        let db = l.db.clone();
        let busy = etcd_common::atomic::writer();
        let (file, r) = tokio::task::spawn_blocking(move || {
            let _busy = busy;
            let r = crate::local::copy_snapshot(&db, &mut file);
            (file, r)
        })
        .await
        .map_err(|e| Error::internal(format!("disk copy: {e}")))?;
        match r? {
            Ok(d) => {
                source.disk = true;
                saved = Some(Saved {
                    file,
                    total: d.image_len + 32,
                    image_sha: d.image_sha,
                    file_sha: d.file_sha,
                    file_size: d.image_len + 32,
                    last_key: None,
                    txid: Some((d.txid, d.attempts)),
                });
            }
            Err(why) => {
                drop(file);
                if a.require_local {
                    return Err(Error::check_failed(format!(
                        "no local copy of {}: {why}; not streaming (--require-local)",
                        l.db.display()
                    )));
                }
                diag::warn(&format!(
                    "no local copy: {why}: streaming the snapshot instead"
                ));
                source.reason = Some(format!("streamed: {why}"));
            }
        }
    }
    let saved = match saved {
        Some(s) => s,
        None => stream_checked(&cfg, &a, &dest, &chosen.endpoint, overall).await?,
    };
    let compress = a.compress;
    let image_len = saved.total.saturating_sub(32);
    let w = saved;
    w.file.commit_moving_aside(&existing)?;
    drop(claim);

    // 4. The snapshot's revision: the last key of bucket `key` (a few page reads; with
    // --compress, found while streaming).
    let revision = if let Some(found) = w.last_key {
        match found {
            Ok(k) => Some(k.as_deref().map_or(0, revision_of_key)),
            Err(e) => {
                diag::debug(&format!("revision of {}: {e}", dest.display()));
                None
            }
        }
    } else {
        match etcd_disk::snapshot::open_db(&dest) {
            Ok((db, _)) => inspect::revision(&db).map_err(Error::from).ok(),
            Err(e) => {
                diag::debug(&format!("revision of {}: {e}", dest.display()));
                None
            }
        }
    };
    let v2 = match v2_probe.await {
        Ok(Ok(k)) => k,
        Ok(Err(e)) => etcd_common::v2::V2Keys {
            error: Some(e.message),
            ..Default::default()
        },
        Err(e) => etcd_common::v2::V2Keys {
            error: Some(format!("v2 probe: {e}")),
            ..Default::default()
        },
    };
    if let Some(e) = &v2.error {
        diag::debug(&format!("v2 API of {}: {e}", chosen.endpoint));
    }
    if let Some(w) = v2_warning(&v2) {
        warnings.push(w);
    }
    let secs = started.elapsed().as_secs_f64();
    let mut snap = json!({
        "path": dest.display().to_string(),
        "size_bytes": w.file_size,
        "sha256": etcd_disk::snapshot::hex(&w.file_sha),
        "db_sha256": etcd_disk::snapshot::hex(&w.image_sha),
        "db_size_bytes": image_len,
        "compressed": compress,
        "endpoint": chosen.endpoint,
        "source": if source.disk { "disk" } else { "stream" },
        "source_reason": source.reason,
    });
    if let (Some((txid, attempts)), Some(m)) = (w.txid, snap.as_object_mut()) {
        m.insert("txid".into(), json!(txid));
        m.insert("copy_attempts".into(), json!(attempts));
        if let Some(l) = &local {
            m.insert("data_dir".into(), json!(l.data_dir.display().to_string()));
        }
    }
    if let (Some(r), Some(m)) = (revision, snap.as_object_mut()) {
        m.insert("revision".into(), json!(r));
    }
    let mut facts = Facts::new();
    facts.insert(keys::SNAPSHOT.into(), snap);
    facts.insert(keys::ETCD_VERSION.into(), json!(chosen.version));
    facts.insert(keys::CLUSTER_ID.into(), json!(ids::hex(chosen.cluster_id)));
    facts.insert(keys::MEMBER_ID.into(), json!(ids::hex(chosen.member_id)));
    facts.insert("taken_at".into(), json!(rfc3339(taken_at)));
    facts.insert(keys::ENDPOINTS.into(), cfg.endpoints_fact());
    facts.insert(keys::BACKUP_METHOD.into(), json!("v3-snapshot"));
    if let Some(m) = facts.get_mut(keys::SNAPSHOT).and_then(Value::as_object_mut) {
        m.insert(
            "previous".into(),
            match &existing {
                etcd_common::atomic::Existing::None => json!(null),
                etcd_common::atomic::Existing::MoveAside(p) => {
                    json!({"action": "moved_aside", "path": p.display().to_string()})
                }
            },
        );
    }
    let cand_json: Vec<Value> = cands
        .iter()
        .map(|c| {
            json!({
                "endpoint": c.endpoint,
                "member_id": (c.error.is_none()).then(|| ids::hex(c.member_id)),
                "is_leader": c.is_leader(),
                "is_learner": c.is_learner,
                "raft_index": c.raft_index,
                "error": c.error,
            })
        })
        .collect();
    let data = json!({
        "chosen": {"endpoint": chosen.endpoint, "why": why},
        "candidates": cand_json,
        "v2": {
            "api_served": v2.served,
            "top_level_keys": v2.keys,
            "top_level_dirs": v2.dirs,
            "examples": v2.examples,
            "error": v2.error,
        },
        "took_ms": started.elapsed().as_millis() as u64,
        "mb_per_s": if secs > 0.0 { (w.total as f64 / 1e6 / secs * 10.0).round() / 10.0 } else { 0.0 },
    });
    let summary = format!(
        "saved {} ({:.1} MB{}, revision {}) from {} ({why}) in {:.1}s; {}",
        dest.display(),
        w.file_size as f64 / 1e6,
        if compress { " gzipped" } else { "" },
        revision.map_or("?".into(), |r| r.to_string()),
        chosen.endpoint,
        secs,
        match w.txid {
            Some((t, _)) => format!("copied from disk at bbolt txid {t}, sha256 trailer appended"),
            None => "streamed, sha256 trailer verified".into(),
        }
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

/// The warning for v2 data a v3 snapshot leaves out (None when the v2 API showed none).
pub fn v2_warning(v2: &etcd_common::v2::V2Keys) -> Option<String> {
    if !v2.served || !v2.has_data() {
        return None;
    }
    let eg = if v2.examples.is_empty() {
        String::new()
    } else {
        format!(", e.g. {}", v2.examples.join(", "))
    };
    Some(format!(
        "the v2 store holds data ({} key(s) and {} dir(s) at its top level{eg}) that a v3 snapshot does not carry: back it up with etcd-wal-backup (the v2 method; etcd-detect-version tells)",
        v2.keys, v2.dirs
    ))
}

/// The main revision in the first 8 bytes of a `key` bucket key (big endian), as
/// [`inspect::revision`] reads it.
fn revision_of_key(k: &[u8]) -> i64 {
    k.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, |b| u64::from_be_bytes(b) as i64)
}

/// RFC 3339 UTC with seconds (`2024-05-01T12:00:00Z`), without a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(ep: &str, id: u64, leader: u64, idx: u64) -> Candidate {
        Candidate {
            endpoint: ep.into(),
            member_id: id,
            leader,
            raft_index: idx,
            ..Default::default()
        }
    }

    #[test]
    fn choose_prefers_leader_then_index_never_learner() {
        let c = vec![cand("a", 1, 2, 10), cand("b", 2, 2, 9), cand("c", 3, 2, 11)];
        assert_eq!(choose(&c).unwrap(), (1, "leader"));
        let mut c2 = c.clone();
        c2[1].error = Some("down".into());
        assert_eq!(choose(&c2).unwrap().0, 2);
        let mut c3 = c2.clone();
        c3[2].is_learner = true;
        assert_eq!(choose(&c3).unwrap().0, 0);
        let mut c4 = c3.clone();
        c4[0].is_learner = true;
        let e = choose(&c4).unwrap_err();
        assert!(e.contains("b: down") && e.contains("a: a learner"), "{e}");
        // a learner that claims leadership is still skipped
        let mut c5 = vec![cand("a", 1, 1, 5), cand("b", 2, 1, 3)];
        c5[0].is_learner = true;
        assert_eq!(choose(&c5).unwrap().0, 1);
    }

    fn run_writer(chunks: Vec<Vec<u8>>, compress: bool) -> (Written, PathBuf, tempfile::TempDir) {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("s.db");
        let f = AtomicFile::create(&dest, 0o600).unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let t = std::thread::spawn(move || writer(rx, f, compress));
        for c in chunks {
            tx.blocking_send(c).unwrap();
        }
        drop(tx);
        (t.join().unwrap().unwrap(), dest, d)
    }

    fn image_with_trailer(len: usize) -> (Vec<u8>, [u8; 32]) {
        let img: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let h: [u8; 32] = Sha256::digest(&img).into();
        let mut all = img;
        all.extend_from_slice(&h);
        (all, h)
    }

    #[test]
    fn writer_holds_back_the_trailer_in_any_chunking() {
        let (all, h) = image_with_trailer(8192);
        for cut in [1usize, 5, 31, 32, 33, 1000, 4096] {
            let chunks: Vec<Vec<u8>> = all.chunks(cut).map(<[u8]>::to_vec).collect();
            let (w, dest, _d) = run_writer(chunks, false);
            assert_eq!(w.image_sha, h, "chunk {cut}");
            assert_eq!(w.trailer, Some(h));
            assert_eq!(check_stream(w.total, w.trailer, w.image_sha), None);
            let file_sha: [u8; 32] = Sha256::digest(&all).into();
            assert_eq!(w.file_sha, file_sha);
            w.file.commit().unwrap();
            assert_eq!(std::fs::read(&dest).unwrap(), all);
        }
    }

    #[test]
    fn corrupt_or_short_streams_are_refused_and_leave_nothing() {
        let (mut all, _) = image_with_trailer(8192);
        all[100] ^= 1;
        let (w, dest, d) = run_writer(vec![all.clone()], false);
        assert!(matches!(
            check_stream(w.total, w.trailer, w.image_sha),
            Some(StreamProblem::Mismatch(_))
        ));
        drop(w);
        assert!(!dest.exists() && !part_path(&dest).exists());
        drop(d);
        let (w, _, _d) = run_writer(vec![all[..8000].to_vec()], false);
        assert_eq!(
            check_stream(w.total, w.trailer, w.image_sha),
            Some(StreamProblem::NoTrailer)
        );
    }

    #[test]
    fn gzip_output_round_trips() {
        let (all, h) = image_with_trailer(100_000);
        let (w, dest, _d) = run_writer(all.chunks(30_000).map(<[u8]>::to_vec).collect(), true);
        assert_eq!(w.image_sha, h);
        let size = w.file_size;
        let sha = w.file_sha;
        w.file.commit().unwrap();
        let gz = std::fs::read(&dest).unwrap();
        assert_eq!(gz.len() as u64, size);
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&gz)), sha);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out, all);
    }

    /// Issue 13: with --compress the revision is read from the stream (it was left out).
    #[test]
    fn gzip_writer_finds_the_revision() {
        let d = tempfile::tempdir().unwrap();
        let mut e = etcd_disk::bolt::Edits::new();
        for r in 2..3000u64 {
            let mut k = r.to_be_bytes().to_vec();
            k.push(b'_');
            k.extend_from_slice(&0u64.to_be_bytes());
            e.put(b"key", &k, &[b'v'; 100]).unwrap();
        }
        e.put(b"meta", b"consistent_index", &[0; 8]).unwrap();
        let p = d.path().join("img");
        etcd_disk::bolt::create(4096, &e, &p).unwrap();
        let (all, _) = {
            let img = std::fs::read(&p).unwrap();
            let h: [u8; 32] = Sha256::digest(&img).into();
            let mut all = img;
            all.extend_from_slice(&h);
            (all, h)
        };
        let (w, _, _d) = run_writer(all.chunks(10_000).map(<[u8]>::to_vec).collect(), true);
        let k = w.last_key.unwrap().unwrap().unwrap();
        assert_eq!(revision_of_key(&k), 2999);
        let (w, _, _d) = run_writer(vec![all], false);
        assert!(w.last_key.is_none(), "plain saves read the file");
    }

    #[test]
    fn v2_warning_only_for_served_data() {
        use etcd_common::v2::V2Keys;
        assert_eq!(v2_warning(&V2Keys::default()), None);
        let served = V2Keys {
            served: true,
            ..Default::default()
        };
        assert_eq!(v2_warning(&served), None);
        let w = v2_warning(&V2Keys {
            served: true,
            keys: 1,
            dirs: 2,
            examples: vec!["/a".into(), "/d/".into()],
            error: None,
        })
        .unwrap();
        assert!(
            w.contains("1 key(s) and 2 dir(s)") && w.contains("e.g. /a, /d/"),
            "{w}"
        );
        assert!(w.contains("etcd-wal-backup"), "{w}");
    }

    #[test]
    fn dest_names() {
        assert_eq!(
            dest_path(Path::new("/b/s.db"), false),
            PathBuf::from("/b/s.db")
        );
        assert_eq!(
            dest_path(Path::new("/b/s.db"), true),
            PathBuf::from("/b/s.db.gz")
        );
        assert_eq!(
            dest_path(Path::new("/b/s.gz"), true),
            PathBuf::from("/b/s.gz")
        );
    }

    #[test]
    fn rfc3339_known_instants() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(0);
        assert_eq!(rfc3339(t), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }
}
