//! etcd-purge: stop etcd, wait until it let go of its data dir, and move `member/` (and a
//! separate WAL dir) aside.
//!
//! Steps: resolve the dirs (flag > upstream fact > `--env-file`), inspect them (refuse `/`,
//! symlinks, non-etcd dirs), finish what an interrupted earlier run left (`*.deleting.*` dirs,
//! `*.part` copies), stop etcd with the method given, wait until the lock probes of
//! `etcd_disk::datadir` say free (refuse with exit 7 while anything holds them), then rename
//! each dir to `<name>.purged.<UTC timestamp>` (or copy across filesystems when told to, or
//! delete with `--delete --yes`), fsync, and prune old copies beyond `--keep`.
//!
//! Crash safety: a rename is atomic; whatever is deleted is first renamed to
//! `<name>.deleting.<ts>` and a copy is written as `<copy>.part` and renamed when complete, so a
//! rerun after a crash at any point finds either the original or a complete copy, and removes
//! the leftovers.

use clap::Parser;
use etcd_common::atomic::{fsync_dir, parent_of, track_partial, untrack_partial};
use etcd_common::envelope::{keys, Facts};
use etcd_common::envfile::EnvFile;
use etcd_common::man::ManExtra;
use etcd_common::runner::CommonArgs;
use etcd_common::{diag, duration, Ctx, Error, Outcome, Result, ResultExt, Tool};
use etcd_disk::datadir::{self, LayoutError};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    duration::parse(s)
}

/// Stop etcd and move its member dir (and a separate WAL dir) aside, safely. Refuses (exit 7)
/// while etcd still holds the dir, and for anything that is not an etcd data dir.
#[derive(Parser, Debug, Clone)]
#[command(name = "etcd-purge", version, about, long_about = None)]
pub struct Args {
    /// The etcd data dir [default: facts.data_dir, then --env-file's ETCD_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A separate WAL dir (etcd's --wal-dir) [default: --env-file's ETCD_WAL_DIR]
    #[arg(long, value_name = "DIR")]
    pub wal_dir: Option<PathBuf>,
    /// etcd's settings file (/etc/etcd.env): ETCD_DATA_DIR, ETCD_WAL_DIR
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// How to stop etcd first: systemd:UNIT, service:NAME, docker:CONTAINER, pid:FILE or none
    #[arg(long, value_name = "METHOD", default_value = "none", value_parser = StopMethod::parse)]
    pub stop: StopMethod,
    /// How long to wait for etcd to exit and release its locks
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// Put the purged copies in this dir instead of next to what is purged (same filesystem)
    #[arg(long, value_name = "DIR", conflicts_with = "delete")]
    pub to: Option<PathBuf>,
    /// When the move would cross filesystems: refuse (exit 7), or copy then remove the original
    #[arg(long, value_name = "HOW", default_value = "refuse", value_parser = ["refuse", "copy"])]
    pub cross_fs: String,
    /// Keep only the newest N purged copies (older ones are deleted) [default: keep all]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Delete instead of moving aside (needs --yes)
    #[arg(long, requires = "yes")]
    pub delete: bool,
    /// Confirm --delete
    #[arg(long)]
    pub yes: bool,
    /// Print the plan; stop nothing, move nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// How etcd is stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopMethod {
    None,
    Systemd(String),
    Service(String),
    Docker(String),
    Pid(PathBuf),
}

impl StopMethod {
    pub fn parse(s: &str) -> std::result::Result<StopMethod, String> {
        if s == "none" {
            return Ok(StopMethod::None);
        }
        let Some((kind, target)) = s.split_once(':') else {
            return Err(format!(
                "{s:?}: expected systemd:UNIT, service:NAME, docker:CONTAINER, pid:FILE or none"
            ));
        };
        if target.is_empty() {
            return Err(format!("{s:?}: empty {kind} target"));
        }
        match kind {
            "systemd" => Ok(StopMethod::Systemd(target.into())),
            "service" => Ok(StopMethod::Service(target.into())),
            "docker" => Ok(StopMethod::Docker(target.into())),
            "pid" => Ok(StopMethod::Pid(target.into())),
            _ => Err(format!(
                "{s:?}: unknown method {kind:?} (systemd, service, docker, pid, none)"
            )),
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            StopMethod::None => "none",
            StopMethod::Systemd(_) => "systemd",
            StopMethod::Service(_) => "service",
            StopMethod::Docker(_) => "docker",
            StopMethod::Pid(_) => "pid",
        }
    }

    pub fn target(&self) -> Option<String> {
        match self {
            StopMethod::None => None,
            StopMethod::Systemd(t) | StopMethod::Service(t) | StopMethod::Docker(t) => {
                Some(t.clone())
            }
            StopMethod::Pid(p) => Some(p.display().to_string()),
        }
    }

    /// The argv that asks whether it runs (exit 0 / "true" = running), and the one that stops.
    pub fn commands(&self) -> Option<(Vec<String>, Vec<String>)> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            StopMethod::Systemd(u) => Some((
                v(&["systemctl", "is-active", "--quiet", u]),
                v(&["systemctl", "stop", u]),
            )),
            StopMethod::Service(n) => {
                Some((v(&["service", n, "status"]), v(&["service", n, "stop"])))
            }
            StopMethod::Docker(c) => Some((
                v(&["docker", "inspect", "-f", "{{.State.Running}}", c]),
                v(&["docker", "stop", c]),
            )),
            StopMethod::None | StopMethod::Pid(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers: names, timestamps, pruning, move feasibility.

/// `20260126T101500Z` for a Unix time (UTC), and its RFC 3339 form.
pub fn utc_stamp(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, mi, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
    )
}

/// `20260126T101500Z` (optionally `-N`) → `2026-01-26T10:15:00Z`.
pub fn stamp_to_rfc3339(stamp: &str) -> Option<String> {
    let b = stamp.as_bytes();
    if b.len() < 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| {
        stamp
            .get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
    };
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        digits(0..4)?,
        digits(4..6)?,
        digits(6..8)?,
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?
    ))
}

/// The name of a purged copy: `member.purged.20260126T101500Z`.
pub fn copy_name(base: &str, stamp: &str) -> String {
    format!("{base}.purged.{stamp}")
}

/// The stamp of a complete purged copy of `base` (None for other names, `.part` copies and
/// copies being deleted).
pub fn copy_stamp<'a>(base: &str, name: &'a str) -> Option<&'a str> {
    let rest = name.strip_prefix(base)?.strip_prefix(".purged.")?;
    if rest.ends_with(".part") || rest.contains(".deleting") || stamp_to_rfc3339(rest).is_none() {
        return None;
    }
    Some(rest)
}

/// Names of leftovers an interrupted run may have left for `base`: dirs being deleted and
/// partial copies.
pub fn is_leftover(base: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(base) else {
        return false;
    };
    rest.starts_with(".deleting.")
        || (rest.starts_with(".purged.") && (rest.ends_with(".part") || rest.contains(".deleting")))
}

/// Which copies to delete to keep the newest `keep` (names sorted newest first by stamp).
pub fn select_prune(base: &str, names: &[String], keep: Option<u32>) -> Vec<String> {
    let Some(keep) = keep else {
        return Vec::new();
    };
    let mut copies: Vec<(&str, &String)> = names
        .iter()
        .filter_map(|n| copy_stamp(base, n).map(|s| (s, n)))
        .collect();
    // Newest first; `-N` suffixes of the same second sort after the plain stamp.
    copies.sort_by(|a, b| b.0.cmp(a.0));
    copies
        .into_iter()
        .skip(keep as usize)
        .map(|(_, n)| n.clone())
        .collect()
}

/// How a dir gets to its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveHow {
    Rename,
    Copy,
}

/// Decide how to move `src` (device `src_dev`, its parent on `parent_dev`) into a dir on
/// `dest_dev`. A mount point cannot be renamed; crossing filesystems needs `--cross-fs copy`.
pub fn move_how(
    src: &Path,
    src_dev: u64,
    parent_dev: u64,
    dest_dev: u64,
    cross_fs_copy: bool,
) -> Result<MoveHow> {
    if src_dev != parent_dev {
        return Err(Error::refused(format!(
            "{} is a mount point: it cannot be moved aside; unmount it, or purge its contents by hand",
            src.display()
        )));
    }
    if src_dev == dest_dev {
        return Ok(MoveHow::Rename);
    }
    if cross_fs_copy {
        return Ok(MoveHow::Copy);
    }
    Err(Error::refused(format!(
        "moving {} to the destination would cross filesystems: give --to on the same filesystem, or --cross-fs copy",
        src.display()
    )))
}

// ---------------------------------------------------------------------------------------------
// Stopping etcd.

/// What the stop step observed and did.
#[derive(Debug, Clone, Default)]
struct StopReport {
    was_running: bool,
    stopped_now: bool,
    pid: Option<i32>,
    waited_ms: u64,
    detail: String,
}

fn run_cmd(argv: &[String]) -> Result<std::process::Output> {
    let (prog, rest) = argv
        .split_first()
        .ok_or_else(|| Error::internal("empty command"))?;
    Command::new(prog)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("cannot run {prog}: {e}")))
}

fn out_line(o: &std::process::Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr);
    let s = String::from_utf8_lossy(&o.stdout);
    let t = if e.trim().is_empty() { s } else { e };
    etcd_common::error::one_line(t.trim())
}

/// `R` running, `Z`/`X` dead, None when the process is gone.
fn proc_state(pid: i32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

fn pid_alive(pid: i32) -> bool {
    !matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

fn looks_like_etcd(pid: i32) -> bool {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let base = String::from_utf8_lossy(argv0)
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    base.contains("etcd") || datadir::comm(pid).contains("etcd")
}

fn read_pid_file(p: &Path) -> Result<Option<i32>> {
    let text = match fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::io(format!(
                "cannot read pid file {}: {e}",
                p.display()
            )))
        }
    };
    let t = text.trim();
    match t.parse::<i32>() {
        Ok(pid) if pid > 1 => Ok(Some(pid)),
        _ => Err(Error::bad_input(format!(
            "pid file {}: {t:?} is not a process ID",
            p.display()
        ))),
    }
}

async fn stop_etcd(method: &StopMethod, deadline: Instant, dry_run: bool) -> Result<StopReport> {
    let mut r = StopReport::default();
    let t0 = Instant::now();
    match method {
        StopMethod::None => {
            r.detail = "not asked to stop anything".into();
        }
        StopMethod::Pid(file) => {
            let Some(pid) = read_pid_file(file)? else {
                r.detail = format!("pid file {} absent: nothing to stop", file.display());
                return Ok(r);
            };
            r.pid = Some(pid);
            if !pid_alive(pid) {
                r.detail = format!("pid {pid} (from {}) is not running", file.display());
                return Ok(r);
            }
            if !looks_like_etcd(pid) {
                return Err(Error::refused(format!(
                    "pid {pid} (from {}) is {:?}, not etcd: refusing to signal it (stale pid file?)",
                    file.display(),
                    datadir::comm(pid)
                )));
            }
            r.was_running = true;
            if dry_run {
                r.detail = format!("would send SIGTERM to etcd pid {pid}");
                return Ok(r);
            }
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            )
            .map_err(|e| Error::io(format!("cannot signal pid {pid}: {e}")))?;
            r.stopped_now = true;
            while pid_alive(pid) {
                if Instant::now() >= deadline {
                    return Err(Error::refused(format!(
                        "etcd pid {pid} still running {} after SIGTERM",
                        duration::display(t0.elapsed())
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r.detail = format!("sent SIGTERM to etcd pid {pid}; it exited");
        }
        other => {
            let Some((probe, stop)) = other.commands() else {
                return Err(Error::internal("no commands for stop method"));
            };
            let o = run_cmd(&probe)?;
            let running = match other {
                StopMethod::Docker(_) => {
                    o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true"
                }
                _ => o.status.success(),
            };
            if !running {
                r.detail = format!("{} reports it is not running", probe.join(" "));
                return Ok(r);
            }
            r.was_running = true;
            if dry_run {
                r.detail = format!("would run {}", stop.join(" "));
                return Ok(r);
            }
            let o = run_cmd(&stop)?;
            if !o.status.success() {
                return Err(Error::io(format!(
                    "{} failed ({}): {}",
                    stop.join(" "),
                    o.status,
                    out_line(&o)
                )));
            }
            r.stopped_now = true;
            r.detail = format!("ran {}", stop.join(" "));
        }
    }
    r.waited_ms = t0.elapsed().as_millis() as u64;
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Stats and hashes.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Stats {
    files: u64,
    bytes: u64,
}

fn walk_stats(dir: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    for ent in walkdir::WalkDir::new(dir).follow_links(false) {
        let ent = ent.map_err(|e| Error::io(format!("cannot walk {}: {e}", dir.display())))?;
        if ent.file_type().is_file() {
            s.files += 1;
            s.bytes += ent
                .metadata()
                .map_err(|e| Error::io(format!("cannot stat {}: {e}", ent.path().display())))?
                .len();
        }
    }
    Ok(s)
}

fn sha256_file(p: &Path) -> Result<(String, u64)> {
    let mut f = fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", p.display()))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, n))
}

fn file_fact(p: &Path) -> Result<Value> {
    let (sha, size) = sha256_file(p)?;
    Ok(json!({
        "path": p.display().to_string(),
        "name": p.file_name().map(|n| n.to_string_lossy().to_string()),
        "size_bytes": size,
        "sha256": sha,
    }))
}

// ---------------------------------------------------------------------------------------------
// File system steps.

fn dev_of(p: &Path) -> Result<u64> {
    fs::symlink_metadata(p)
        .map(|m| m.dev())
        .with_context(|| format!("cannot stat {}", p.display()))
}

fn list_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn remove_tree(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("cannot remove {}: {e}", p.display()))),
    }
    fsync_dir(&parent_of(p)).with_context(|| format!("cannot fsync {}", parent_of(p).display()))
}

fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    // Never onto something that is there (an empty dir would be replaced by a plain rename).
    etcd_common::atomic::rename_noreplace(from, to)?;
    for d in [parent_of(to), parent_of(from)] {
        fsync_dir(&d).with_context(|| format!("cannot fsync {}", d.display()))?;
    }
    Ok(())
}

/// Delete a dir crash-safely: rename it to `<name>.deleting.<stamp>` first.
fn delete_dir(p: &Path, stamp: &str) -> Result<()> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let doomed = parent_of(p).join(format!("{name}.deleting.{stamp}"));
    rename_durable(p, &doomed)?;
    remove_tree(&doomed)
}

/// Copy a tree (dirs 0700, files with their mode, fsynced), into `dst` which must not exist.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    for ent in walkdir::WalkDir::new(src).follow_links(false) {
        let ent = ent.map_err(|e| Error::io(format!("cannot walk {}: {e}", src.display())))?;
        let rel = ent
            .path()
            .strip_prefix(src)
            .map_err(|e| Error::internal(format!("walk outside {}: {e}", src.display())))?;
        let to = dst.join(rel);
        let ft = ent.file_type();
        if ft.is_dir() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&to)
                .with_context(|| format!("cannot create {}", to.display()))?;
        } else if ft.is_file() {
            fs::copy(ent.path(), &to).with_context(|| {
                format!("cannot copy {} to {}", ent.path().display(), to.display())
            })?;
            fs::File::open(&to)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot fsync {}", to.display()))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(ent.path())
                .with_context(|| format!("cannot read link {}", ent.path().display()))?;
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("cannot create link {}", to.display()))?;
        }
    }
    for ent in walkdir::WalkDir::new(dst).contents_first(true) {
        let ent = ent.map_err(|e| Error::io(format!("cannot walk {}: {e}", dst.display())))?;
        if ent.file_type().is_dir() {
            fsync_dir(ent.path())
                .with_context(|| format!("cannot fsync {}", ent.path().display()))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The run.

/// One dir to purge.
#[derive(Debug, Clone)]
struct Item {
    /// `member` or `wal` (a separate WAL dir).
    what: &'static str,
    src: PathBuf,
    /// The copy's base name (`member`, or the WAL dir's own name).
    base: String,
    /// Where copies of it go.
    dest_dir: PathBuf,
    how: MoveHow,
}

fn layout_error(e: LayoutError) -> Error {
    match e {
        LayoutError::Io(d) => Error::io(d.to_string()),
        other => Error::refused(other.to_string()),
    }
}

fn resolve_dirs(args: &Args, upstream: &Facts) -> Result<(PathBuf, Option<PathBuf>)> {
    let env = match &args.env_file {
        Some(p) => Some(EnvFile::load(p)?),
        None => None,
    };
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| {
            upstream
                .get(keys::DATA_DIR)
                .and_then(Value::as_str)
                .map(PathBuf::from)
        })
        .or_else(|| {
            env.as_ref()
                .and_then(|e| e.get("ETCD_DATA_DIR"))
                .map(PathBuf::from)
        })
        .ok_or_else(|| {
            Error::usage("no data dir: give --data-dir, or --env-file with ETCD_DATA_DIR")
        })?;
    let wal_dir = args.wal_dir.clone().or_else(|| {
        env.as_ref()
            .and_then(|e| e.get("ETCD_WAL_DIR"))
            .map(PathBuf::from)
    });
    Ok((data_dir, wal_dir))
}

/// Entries of a data dir without `member/` that still make it look like an etcd data dir
/// (empty, our own copies, a mount's lost+found).
fn harmless_entry(name: &str) -> bool {
    name == "lost+found"
        || name.starts_with("member.")
        || name.starts_with('.')
        || name.ends_with(".purged")
}

fn is_wal_dir_entry(name: &str) -> bool {
    datadir::is_wal_name(name)
        || name.ends_with(".tmp")
        || name.ends_with(".broken")
        || name.starts_with('.')
}

/// Facts about the newest copies (the ones this run made, or found on a rerun).
fn copy_facts(items_found: &[(&'static str, PathBuf, PathBuf)], separate: bool) -> Result<Value> {
    let mut purged = Vec::new();
    let mut total = Stats::default();
    let mut wal_tail = Value::Null;
    let mut db = Value::Null;
    for (what, from, copy) in items_found {
        let st = walk_stats(copy)?;
        total.files += st.files;
        total.bytes += st.bytes;
        purged.push(json!({
            "what": what,
            "from": from.display().to_string(),
            "to": copy.display().to_string(),
            "files": st.files,
            "bytes": st.bytes,
        }));
        let wal_dir = match (*what, separate) {
            ("member", false) => Some(copy.join("wal")),
            ("wal", _) => Some(copy.clone()),
            _ => None,
        };
        if let Some(w) = wal_dir {
            if let Some(tail) = datadir::wal_segments(&w)
                .map_err(|e| Error::io(e.to_string()))?
                .last()
            {
                wal_tail = file_fact(tail)?;
            }
        }
        if *what == "member" {
            let d = copy.join("snap").join("db");
            if d.is_file() {
                db = file_fact(&d)?;
            }
        }
    }
    Ok(json!({
        "purged": purged,
        "files": total.files,
        "bytes": total.bytes,
        "wal_tail": wal_tail,
        "db": db,
    }))
}

impl Tool for Args {
    const NAME: &'static str = "etcd-purge";

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    async fn run(self, ctx: Ctx) -> Result<Outcome> {
        let t0 = Instant::now();
        let (data_dir, wal_dir) = resolve_dirs(&self, &ctx.upstream)?;
        // One owner per target: the data dir (and a separate WAL dir) are claimed for the run
        // (DATA_DIR.lock, the lock etcd-snap and etcd-wal-backup restore take), so a purge and
        // a restore of the same dir never interleave; the loser exits 7.
        let mut _claims = Vec::new();
        if !self.dry_run {
            for d in std::iter::once(&data_dir).chain(wal_dir.as_ref()) {
                if parent_of(d).is_dir() {
                    _claims.push(etcd_common::atomic::claim(d)?);
                }
            }
        }
        let ins = datadir::inspect(&data_dir, wal_dir.as_deref()).map_err(layout_error)?;
        let layout = ins.layout.clone();
        let mut warnings = Vec::new();
        let mut actions: Vec<String> = Vec::new();
        let delete = self.delete && self.yes;
        let cross_copy = self.cross_fs == "copy";

        // What is there to purge, and is it etcd's?
        let purge_member = ins.member_exists;
        if purge_member && !ins.is_etcd() {
            return Err(Error::refused(format!(
                "{} is not an etcd data dir: {} has neither wal/ nor snap/",
                layout.data_dir.display(),
                layout.member_dir.display()
            )));
        }
        if !ins.data_dir_exists {
            warnings.push(format!(
                "{} does not exist: nothing to purge",
                layout.data_dir.display()
            ));
        } else if !purge_member {
            let odd: Vec<&String> = ins
                .other_entries
                .iter()
                .filter(|n| !harmless_entry(n))
                .collect();
            if !odd.is_empty() {
                return Err(Error::refused(format!(
                    "{} is not an etcd data dir: no member/, and it holds {}",
                    layout.data_dir.display(),
                    odd.iter()
                        .take(3)
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let purge_wal = layout.separate_wal && ins.wal_dir_exists && {
            let names = list_names(&layout.wal_dir);
            if let Some(bad) = names.iter().find(|n| !is_wal_dir_entry(n)) {
                return Err(Error::refused(format!(
                    "{} is not an etcd WAL dir: it holds {bad}",
                    layout.wal_dir.display()
                )));
            }
            !names.is_empty()
        };

        // Where copies go; check every move before changing anything.
        let to = match &self.to {
            Some(t) => Some(datadir::absolute(t).with_context(|| format!("--to {}", t.display()))?),
            None => None,
        };
        if let Some(t) = &to {
            if !t.is_dir() && !self.dry_run {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(t)
                    .with_context(|| format!("cannot create --to {}", t.display()))?;
            }
        }
        let wal_base = layout
            .wal_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "wal".into());
        let wal_base = if wal_base == "member" {
            "wal".to_string()
        } else {
            wal_base
        };
        let member_dest = to.clone().unwrap_or_else(|| layout.data_dir.clone());
        let wal_dest = to.clone().unwrap_or_else(|| parent_of(&layout.wal_dir));
        let mut items = Vec::new();
        for (what, on, src, base, dest) in [
            (
                "member",
                purge_member,
                &layout.member_dir,
                "member".to_string(),
                &member_dest,
            ),
            (
                "wal",
                purge_wal,
                &layout.wal_dir,
                wal_base.clone(),
                &wal_dest,
            ),
        ] {
            if !on {
                continue;
            }
            let how = if delete {
                MoveHow::Rename
            } else {
                let dest_dev = if dest.is_dir() {
                    dev_of(dest)?
                } else {
                    dev_of(&parent_of(dest))?
                };
                move_how(
                    src,
                    dev_of(src)?,
                    dev_of(&parent_of(src))?,
                    dest_dev,
                    cross_copy,
                )?
            };
            items.push(Item {
                what,
                src: src.clone(),
                base,
                dest_dir: dest.clone(),
                how,
            });
        }

        // Finish what an interrupted run left behind.
        let mut leftovers = Vec::new();
        let mut scan: Vec<(PathBuf, String)> = vec![
            (layout.data_dir.clone(), "member".into()),
            (member_dest.clone(), "member".into()),
        ];
        if layout.separate_wal {
            scan.push((parent_of(&layout.wal_dir), wal_base.clone()));
            scan.push((wal_dest.clone(), wal_base.clone()));
        }
        scan.sort();
        scan.dedup();
        for (dir, base) in &scan {
            for n in list_names(dir) {
                if is_leftover(base, &n) {
                    leftovers.push(dir.join(n));
                }
            }
        }
        if !self.dry_run {
            for l in &leftovers {
                remove_tree(l)?;
                actions.push(format!("removed leftover {}", l.display()));
            }
        }

        // A copy to another filesystem needs room for the whole dir there: checked before etcd
        // is stopped, so a full disk refuses (6) with etcd still running.
        for it in items.iter().filter(|it| it.how == MoveHow::Copy) {
            let need = walk_stats(&it.src)?.bytes;
            let probe = if it.dest_dir.is_dir() {
                it.dest_dir.clone()
            } else {
                parent_of(&it.dest_dir)
            };
            if let Ok(v) = nix::sys::statvfs::statvfs(&probe) {
                let free = v.blocks_available().saturating_mul(v.fragment_size());
                // Margin: directory blocks and metadata of the copy.
                let want = need + need / 64 + (1 << 20);
                if free < want {
                    return Err(Error::io(format!(
                        "cannot copy {} to {}: {need} bytes to copy and {free} bytes free there; nothing was stopped or moved",
                        it.src.display(),
                        it.dest_dir.display()
                    )));
                }
            }
        }

        // Stop etcd (also when there is nothing to purge: the step is "etcd is stopped").
        let deadline = t0 + self.stop_timeout;
        let stop = stop_etcd(&self.stop, deadline, self.dry_run).await?;
        if stop.stopped_now {
            actions.push(stop.detail.clone());
        }
        diag::info(&stop.detail);

        // Wait until etcd let go of the dir.
        let mut locks_json = Value::Null;
        if purge_member || purge_wal {
            let mut waited = false;
            loop {
                let l = datadir::probe_locks(&ins).map_err(|e| Error::io(e.to_string()))?;
                locks_json = json!({
                    "db": l.db.describe(),
                    "wal": l.wal.as_ref().map(|w| w.describe()),
                    "held": l.held(),
                });
                if !l.held() {
                    break;
                }
                let waiting_for_stop = stop.was_running && !self.dry_run;
                if self.dry_run && stop.was_running {
                    break; // would stop first
                }
                if !waiting_for_stop || Instant::now() >= deadline {
                    let why = if waited {
                        format!(
                            "still held {} after stopping",
                            duration::display(self.stop_timeout)
                        )
                    } else {
                        "etcd is running (give --stop to stop it first)".to_string()
                    };
                    return Err(Error::refused(format!(
                        "refusing to purge {}: {}: {why}",
                        layout.data_dir.display(),
                        l.describe_held()
                    )));
                }
                waited = true;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        // Move (or delete).
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (mut stamp, _) = utc_stamp(now);
        // A unique stamp for every item of this run.
        let mut n = 0;
        while items
            .iter()
            .any(|it| it.dest_dir.join(copy_name(&it.base, &stamp)).exists())
        {
            n += 1;
            stamp = format!("{}-{n}", utc_stamp(now).0);
        }
        let mut made: Vec<(&'static str, PathBuf, PathBuf)> = Vec::new();
        let mut deleted_facts = Value::Null;
        let mut plan = Vec::new();
        if delete {
            // Facts of what is deleted, taken before.
            let found: Vec<(&'static str, PathBuf, PathBuf)> = items
                .iter()
                .map(|it| (it.what, it.src.clone(), it.src.clone()))
                .collect();
            if !found.is_empty() {
                deleted_facts = copy_facts(&found, layout.separate_wal)?;
            }
            for it in &items {
                plan.push(format!("delete {}", it.src.display()));
                if !self.dry_run {
                    delete_dir(&it.src, &stamp)?;
                    actions.push(format!("deleted {}", it.src.display()));
                }
            }
        } else {
            for it in &items {
                let dst = it.dest_dir.join(copy_name(&it.base, &stamp));
                match it.how {
                    MoveHow::Rename => {
                        plan.push(format!("rename {} to {}", it.src.display(), dst.display()))
                    }
                    MoveHow::Copy => plan.push(format!(
                        "copy {} to {} (another filesystem), then delete the original",
                        it.src.display(),
                        dst.display()
                    )),
                }
                if self.dry_run {
                    made.push((it.what, it.src.clone(), it.src.clone()));
                    continue;
                }
                match it.how {
                    MoveHow::Rename => rename_durable(&it.src, &dst)?,
                    MoveHow::Copy => {
                        let part = it
                            .dest_dir
                            .join(format!("{}.part", copy_name(&it.base, &stamp)));
                        track_partial(&part);
                        if let Err(e) = copy_tree(&it.src, &part) {
                            // ENOSPC and other failures: the copy goes, the original stays.
                            let _ = remove_tree(&part);
                            untrack_partial(&part);
                            return Err(e);
                        }
                        rename_durable(&part, &dst)?;
                        untrack_partial(&part);
                        delete_dir(&it.src, &stamp)?;
                    }
                }
                let _ = fs::set_permissions(&dst, fs::Permissions::from_mode(0o700));
                actions.push(format!("moved {} to {}", it.src.display(), dst.display()));
                made.push((it.what, it.src.clone(), dst));
            }
        }

        // Prune old copies.
        let mut pruned = Vec::new();
        if !delete {
            let mut dirs: Vec<(PathBuf, String)> = vec![(member_dest.clone(), "member".into())];
            if layout.separate_wal {
                dirs.push((wal_dest.clone(), wal_base.clone()));
            }
            for (dir, base) in dirs {
                for name in select_prune(&base, &list_names(&dir), self.keep) {
                    let p = dir.join(&name);
                    plan.push(format!("delete old copy {}", p.display()));
                    if !self.dry_run {
                        delete_dir(&p, &stamp)?;
                        actions.push(format!("deleted old copy {}", p.display()));
                    }
                    pruned.push(p.display().to_string());
                }
            }
        }

        // Facts: this run's copies, or on a rerun the newest copies found.
        let changed = !items.is_empty()
            || !pruned.is_empty()
            || !leftovers.is_empty()
            || stop.stopped_now
            || (self.dry_run && stop.was_running);
        let (copies, copied_at) = if delete {
            (deleted_facts, None)
        } else if !made.is_empty() {
            let at = if self.dry_run {
                None
            } else {
                stamp_to_rfc3339(&stamp)
            };
            (copy_facts(&made, layout.separate_wal)?, at)
        } else {
            // Nothing purged now: describe the newest existing copies (same stamp for both).
            let newest = |dir: &Path, base: &str| -> Option<(String, PathBuf)> {
                let mut v: Vec<(String, PathBuf)> = list_names(dir)
                    .into_iter()
                    .filter_map(|n| copy_stamp(base, &n).map(|s| (s.to_string(), dir.join(&n))))
                    .collect();
                v.sort();
                v.pop()
            };
            let mut found = Vec::new();
            let mut at = None;
            if let Some((s, p)) = newest(&member_dest, "member") {
                found.push(("member", layout.member_dir.clone(), p));
                if layout.separate_wal {
                    let w = wal_dest.join(copy_name(&wal_base, &s));
                    if w.is_dir() {
                        found.push(("wal", layout.wal_dir.clone(), w));
                    }
                }
                at = stamp_to_rfc3339(&s);
            }
            if found.is_empty() {
                (
                    json!({"purged": [], "files": 0, "bytes": 0, "wal_tail": null, "db": null}),
                    None,
                )
            } else {
                (copy_facts(&found, layout.separate_wal)?, at)
            }
        };
        let mut purge = json!({
            "data_dir": layout.data_dir.display().to_string(),
            "wal_dir": layout.separate_wal.then(|| layout.wal_dir.display().to_string()),
            "stop": {"method": self.stop.method(), "target": self.stop.target()},
            "mode": if delete { "delete" } else { "move" },
            "purged_at": copied_at,
        });
        if let (Some(p), Some(c)) = (purge.as_object_mut(), copies.as_object()) {
            for (k, v) in c {
                p.insert(k.clone(), v.clone());
            }
        }
        let mut facts = Facts::new();
        facts.insert(
            keys::DATA_DIR.into(),
            json!(layout.data_dir.display().to_string()),
        );
        facts.insert("purge".into(), purge);

        let summary = if self.dry_run {
            if plan.is_empty() {
                "dry run: nothing to purge".to_string()
            } else {
                format!("dry run: would {}", plan.join("; "))
            }
        } else if items.is_empty() {
            format!(
                "nothing to purge in {}{}",
                layout.data_dir.display(),
                if stop.stopped_now {
                    " (etcd stopped)"
                } else {
                    ""
                }
            )
        } else {
            actions.join("; ")
        };
        let data = json!({
            "dry_run": self.dry_run,
            "plan": plan,
            "actions": actions,
            "stop": {
                "method": self.stop.method(),
                "target": self.stop.target(),
                "was_running": stop.was_running,
                "stopped_now": stop.stopped_now,
                "pid": stop.pid,
                "detail": stop.detail,
                "waited_ms": stop.waited_ms,
            },
            "locks": locks_json,
            "pruned": pruned,
            "leftovers": leftovers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "took_ms": t0.elapsed().as_millis() as u64,
        });
        Ok(Outcome {
            changed,
            facts,
            data,
            warnings,
            summary,
            failure: None,
        })
    }
}

/// Man page sections beyond clap's.
pub fn man() -> ManExtra {
    ManExtra {
        connects: false,
        input: "An upstream envelope on stdin may give the data dir in facts.data_dir (after --data-dir, before --env-file's ETCD_DATA_DIR). \
--env-file also gives ETCD_WAL_DIR.",
        output: "facts.data_dir and facts.purge {data_dir, wal_dir (a separate WAL dir or null), stop {method, target}, mode (move|delete), \
purged_at, purged [{what (member|wal), from, to, files, bytes}], files, bytes, wal_tail {path, name, size_bytes, sha256}, db {path, size_bytes, sha256}}: \
the copies made by this run, or on a rerun that finds nothing to purge the newest existing copies, so reruns print the same facts with changed:false. \
data has dry_run, plan, actions, stop {was_running, stopped_now, pid, detail, waited_ms}, locks (what the probes saw), pruned, leftovers (removed remains of an interrupted run), took_ms. \
Refusals exit 7: etcd still holds the dir (shared flock on member/snap/db, OFD lock query on the newest WAL segment) after --stop-timeout, \
or without --stop; / or a symlinked member/, wal/ or snap/; a dir that is not an etcd data dir; a move across filesystems without --cross-fs copy; \
a mount point; a pid file naming a process that is not etcd. With --dry-run, changed says whether a real run would change anything.",
        environment: &[],
        examples: r#"Stop etcd (systemd) and move its member dir aside, keeping the three newest copies:
  etcd-purge --env-file /etc/etcd.env --stop systemd:etcd --keep 3

See what would happen:
  etcd-purge --data-dir /var/lib/etcd --stop pid:/run/etcd.pid --dry-run --pretty

As an Ansible task:
  - name: purge etcd member dir
    ansible.builtin.command: etcd-purge --env-file /etc/etcd.env --stop systemd:etcd
    register: purge
    changed_when: (purge.stdout | from_json).changed"#,
        see_also: &["etcd-wal-backup", "etcd-snap", "etcd-member-fix", "etcd-rejoin"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn args_are_well_formed() {
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "etcd-purge",
            "--data-dir",
            "/var/lib/etcd",
            "--stop",
            "systemd:etcd.service",
            "--keep",
            "2",
        ])
        .unwrap();
        assert_eq!(a.stop, StopMethod::Systemd("etcd.service".into()));
        assert_eq!(a.keep, Some(2));
        assert!(Args::try_parse_from(["etcd-purge", "--delete"]).is_err());
        assert!(Args::try_parse_from(["etcd-purge", "--delete", "--yes", "--to", "x"]).is_err());
        assert!(Args::try_parse_from(["etcd-purge", "--keep", "0"]).is_err());
        assert!(Args::try_parse_from(["etcd-purge", "--stop", "kill:9"]).is_err());
        assert!(Args::try_parse_from(["etcd-purge", "--cross-fs", "move"]).is_err());
    }

    #[test]
    fn stop_methods() {
        assert_eq!(StopMethod::parse("none").unwrap(), StopMethod::None);
        assert_eq!(
            StopMethod::parse("pid:/run/etcd.pid").unwrap(),
            StopMethod::Pid("/run/etcd.pid".into())
        );
        assert_eq!(
            StopMethod::parse("docker:etcd1").unwrap(),
            StopMethod::Docker("etcd1".into())
        );
        assert!(StopMethod::parse("systemd:").is_err());
        assert!(StopMethod::parse("etcd").is_err());
        let (probe, stop) = StopMethod::Service("etcd".into()).commands().unwrap();
        assert_eq!(probe, ["service", "etcd", "status"]);
        assert_eq!(stop, ["service", "etcd", "stop"]);
        let (probe, stop) = StopMethod::Systemd("etcd".into()).commands().unwrap();
        assert_eq!(probe, ["systemctl", "is-active", "--quiet", "etcd"]);
        assert_eq!(stop, ["systemctl", "stop", "etcd"]);
        assert_eq!(
            StopMethod::Docker("c".into()).commands().unwrap().1,
            ["docker", "stop", "c"]
        );
        assert!(StopMethod::Pid("x".into()).commands().is_none());
    }

    #[test]
    fn stamps() {
        assert_eq!(
            utc_stamp(0),
            (
                "19700101T000000Z".to_string(),
                "1970-01-01T00:00:00Z".to_string()
            )
        );
        // 2024-02-29 12:34:56 UTC
        assert_eq!(utc_stamp(1_709_210_096).0, "20240229T123456Z");
        assert_eq!(
            stamp_to_rfc3339("20240229T123456Z-2").as_deref(),
            Some("2024-02-29T12:34:56Z")
        );
        assert_eq!(stamp_to_rfc3339("2024"), None);
    }

    #[test]
    fn copy_names_and_pruning() {
        assert_eq!(
            copy_name("member", "20240229T123456Z"),
            "member.purged.20240229T123456Z"
        );
        assert_eq!(
            copy_stamp("member", "member.purged.20240229T123456Z"),
            Some("20240229T123456Z")
        );
        assert_eq!(
            copy_stamp("member", "member.purged.20240229T123456Z.part"),
            None
        );
        assert_eq!(copy_stamp("member", "member.purged.junk"), None);
        assert_eq!(copy_stamp("member", "wal.purged.20240229T123456Z"), None);
        assert!(is_leftover("member", "member.deleting.20240229T123456Z"));
        assert!(is_leftover("member", "member.purged.20240229T123456Z.part"));
        assert!(is_leftover(
            "member",
            "member.purged.20240229T123456Z.deleting.20250101T000000Z"
        ));
        assert!(!is_leftover("member", "member.purged.20240229T123456Z"));
        assert!(!is_leftover("member", "member"));
        let names: Vec<String> = [
            "member.purged.20240101T000000Z",
            "member.purged.20240301T000000Z",
            "member.purged.20240301T000000Z-1",
            "member.purged.20240201T000000Z",
            "member",
            "other",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert!(select_prune("member", &names, None).is_empty());
        assert_eq!(
            select_prune("member", &names, Some(2)),
            [
                "member.purged.20240201T000000Z",
                "member.purged.20240101T000000Z"
            ]
        );
        assert_eq!(select_prune("member", &names, Some(9)).len(), 0);
    }

    #[test]
    fn moves() {
        let p = Path::new("/d/member");
        assert_eq!(move_how(p, 1, 1, 1, false).unwrap(), MoveHow::Rename);
        assert_eq!(move_how(p, 1, 1, 2, true).unwrap(), MoveHow::Copy);
        assert_eq!(
            move_how(p, 1, 1, 2, false).unwrap_err().exit_code().code(),
            7
        );
        let e = move_how(p, 2, 1, 2, true).unwrap_err();
        assert!(e.message.contains("mount point"), "{}", e.message);
    }

    #[test]
    fn entries() {
        assert!(harmless_entry("lost+found"));
        assert!(harmless_entry("member.purged.20240101T000000Z"));
        assert!(!harmless_entry("important.txt"));
        assert!(is_wal_dir_entry("0000000000000000-0000000000000000.wal"));
        assert!(is_wal_dir_entry("0.tmp"));
        assert!(!is_wal_dir_entry("notes.txt"));
    }
}
