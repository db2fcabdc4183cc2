//! `cargo xtask bench`: our tools and etcd's own tools side by side on the same cluster and
//! data; several runs each, medians, ratio, peak RSS. The table is printed and kept in
//! BENCHMARKS.md (rows replaced by case, etcd version and dataset).

use anyhow::{bail, Context, Result};
use etcd_rescue_tests::{fill_k8s_like, workspace_root, Cluster, ClusterOpts, Version};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HELP: &str = "usage: cargo xtask bench [--dataset small|medium] [--runs N] [--etcd V[,V...]|both|all] [--only health,snap,v2,disk] [--no-write]

--etcd: a comma-separated list of 3.4.23, 3.5.1, 3.5.16, 3.5.30 (3.4 and 3.5 name 3.4.23 and
3.5.30); both = 3.4.23,3.5.30 (the default); all = every one.
Datasets: small = 5,000 keys, medium = 100,000 keys (values 1-8 KiB, Kubernetes-like keys).
Cases: health (etcd-health --cluster vs etcdctl endpoint health --cluster); snap-save (etcd-snap save vs
etcdctl snapshot save, one endpoint each); snap-save-local (etcd-snap save --data-dir on the member's
host vs etcdctl snapshot save); snap-status (etcd-snap status vs etcdctl/etcdutl snapshot status);
snap-restore (etcd-snap restore vs etcdctl/etcdutl snapshot restore, vs a plain cp of the file, vs
cp + sync of the file, with --skip-hash-check vs cp, and vs openssl dgst -sha256 of the file);
wal-backup (etcd-wal-backup backup with etcd running vs etcdctl/etcdutl backup of a stopped member; db from
disk, and with --db-source stream; and both on the stopped member);
detect-offline-64MB-wal (etcd-detect-version on a data dir with a full 64 MB WAL segment vs cat).
Reader throughput: disk-wal-read (CRC-verified WAL scan vs cat), disk-bolt-scan (full bbolt scan +
hash vs etcdctl/etcdutl snapshot status), on member 0's files after stopping it; MB/s in the names.
The table is printed on stdout and written into BENCHMARKS.md unless --no-write.";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dataset {
    Small,
    Medium,
}

impl Dataset {
    fn keys(self) -> usize {
        match self {
            Dataset::Small => 5_000,
            Dataset::Medium => 100_000,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Dataset::Small => "small",
            Dataset::Medium => "medium",
        }
    }
}

struct Opts {
    dataset: Dataset,
    runs: usize,
    versions: Vec<Version>,
    write: bool,
    /// Case groups to run: health, snap, v2, disk (all when empty).
    only: Vec<String>,
}

impl Opts {
    fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

fn parse() -> Result<Opts> {
    let mut o = Opts {
        dataset: Dataset::Small,
        runs: 10,
        versions: vec![Version::V34, Version::V3530],
        write: true,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dataset" => {
                o.dataset = match args.next().as_deref() {
                    Some("small") => Dataset::Small,
                    Some("medium") => Dataset::Medium,
                    other => bail!("--dataset takes small or medium, not {other:?}"),
                }
            }
            "--runs" => {
                o.runs = args
                    .next()
                    .context("--runs needs a number")?
                    .parse()
                    .context("--runs")?
            }
            "--etcd" => {
                let v = args.next();
                o.versions = match v.as_deref() {
                    Some("both") => vec![Version::V34, Version::V3530],
                    Some("all") => Version::EVERY.to_vec(),
                    Some(list) => list
                        .split(',')
                        .map(|s| {
                            Version::parse(s)
                                .with_context(|| format!("--etcd: unknown etcd version {s:?}"))
                        })
                        .collect::<Result<Vec<_>>>()?,
                    None => bail!(
                        "--etcd takes a version list (3.4.23,3.5.1,3.5.16,3.5.30), both or all"
                    ),
                }
            }
            "--no-write" => o.write = false,
            "--only" => {
                o.only = args
                    .next()
                    .context("--only needs groups")?
                    .split(',')
                    .map(String::from)
                    .collect();
                if let Some(g) = o
                    .only
                    .iter()
                    .find(|g| !["health", "snap", "v2", "disk"].contains(&g.as_str()))
                {
                    bail!("--only takes health, snap, v2 and disk, not {g:?}");
                }
            }
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{HELP}"),
        }
    }
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(o)
}

/// One measured run: wall time and peak RSS of the child.
struct Sample {
    wall: Duration,
    max_rss_kib: u64,
}

fn measure(mut cmd: Command) -> Result<Sample> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let t = Instant::now();
    let child = cmd.spawn().context("spawn")?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for the child we just spawned.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child; status and ru point to valid locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t.elapsed();
    if r != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("{:?} failed (status {status}): {err}", cmd.get_program());
    }
    Ok(Sample {
        wall,
        max_rss_kib: ru.ru_maxrss as u64,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Row {
    case: &'static str,
    version: Version,
    dataset: Dataset,
    ours: &'static str,
    theirs: &'static str,
    ours_median: Duration,
    theirs_median: Duration,
    ours_rss: u64,
    theirs_rss: u64,
    runs: usize,
}

impl Row {
    fn key(&self) -> String {
        format!(
            "| {} | {} | {} |",
            self.case,
            self.version,
            self.dataset.name()
        )
    }
    fn markdown(&self) -> String {
        let ratio = self.ours_median.as_secs_f64() / self.theirs_median.as_secs_f64().max(1e-9);
        format!(
            "{} `{}` | `{}` | {:.1} ms | {:.1} ms | {ratio:.2}× | {:.1} MiB | {:.1} MiB | {} |",
            self.key(),
            self.ours,
            self.theirs,
            self.ours_median.as_secs_f64() * 1e3,
            self.theirs_median.as_secs_f64() * 1e3,
            self.ours_rss as f64 / 1024.0,
            self.theirs_rss as f64 / 1024.0,
            self.runs
        )
    }
}

const TABLE_HEAD: &str = "| case | etcd | dataset | ours | etcd's tool | ours (median) | theirs (median) | ratio ours/theirs | ours peak RSS | theirs peak RSS | runs |\n|---|---|---|---|---|---|---|---|---|---|---|";
const BEGIN: &str = "<!-- bench:begin (rows written by `cargo xtask bench`) -->";
const END: &str = "<!-- bench:end -->";

/// Alternate ours and theirs run by run so that drift on a shared machine hits both alike.
fn side_by_side(
    runs: usize,
    ours: impl Fn() -> Command,
    theirs: impl Fn() -> Command,
) -> Result<(Vec<Sample>, Vec<Sample>)> {
    // One warm-up each (page cache, binary load).
    measure(ours())?;
    measure(theirs())?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(measure(ours())?);
        b.push(measure(theirs())?);
    }
    Ok((a, b))
}

fn row(
    case: &'static str,
    v: Version,
    d: Dataset,
    ours: &'static str,
    theirs: &'static str,
    s: (Vec<Sample>, Vec<Sample>),
) -> Row {
    let (a, b) = s;
    Row {
        case,
        version: v,
        dataset: d,
        ours,
        theirs,
        ours_rss: a.iter().map(|x| x.max_rss_kib).max().unwrap_or(0),
        theirs_rss: b.iter().map(|x| x.max_rss_kib).max().unwrap_or(0),
        runs: a.len(),
        ours_median: median(a.iter().map(|x| x.wall).collect()),
        theirs_median: median(b.iter().map(|x| x.wall).collect()),
    }
}

async fn bench_version(o: &Opts, v: Version) -> Result<Vec<Row>> {
    let mut c = Cluster::start(
        v,
        ClusterOpts {
            enable_v2: true, // the v2 method cases add user v2 keys
            ..Default::default()
        },
    )
    .await?;
    let mut client = c.client_all().await?;
    let t = Instant::now();
    let bytes = fill_k8s_like(&mut client, o.dataset.keys(), 1024, 8192, 32).await?;
    eprintln!(
        "bench: etcd {v}: filled {} keys ({:.0} MB) in {:.1}s",
        o.dataset.keys(),
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();

    if o.wants("health") {
        let s = side_by_side(
            o.runs,
            || {
                let mut c2 = c.tool("etcd-health");
                c2.args(["--cluster", "-q"]);
                c2
            },
            || {
                let mut c2 = c.etcdctl(0);
                c2.args(["endpoint", "health", "--cluster"]);
                c2
            },
        )?;
        rows.push(row(
            "health",
            v,
            o.dataset,
            "etcd-health --cluster",
            "etcdctl endpoint health --cluster",
            s,
        ));
    }
    if o.wants("snap") {
        rows.extend(bench_snap(o, v, &c)?);
    }
    if o.wants("v2") {
        rows.extend(v2_cases(o, v, &mut c).await?);
    }
    if o.wants("disk") {
        rows.extend(disk_cases(o, v, c).await?);
    }
    Ok(rows)
}

fn write_benchmarks(rows: &[Row]) -> Result<()> {
    let path = workspace_root().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (before, mut table_rows, after) = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let inner = &text[b + BEGIN.len()..e];
            let rows: Vec<String> =
                inner.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| case") && !l.starts_with("|---")).map(String::from).collect();
            (text[..b].to_string(), rows, text[e + END.len()..].to_string())
        }
        _ => (
            "# Benchmarks\n\nThe latest figures measured by `cargo xtask bench` on this project's machine (2 cores, 24 GiB). \
Each row: our tool and etcd's own tool on the same cluster and data, run alternately; wall-clock medians; peak RSS of the process.\n\n"
                .to_string(),
            Vec::new(),
            "\n".to_string(),
        ),
    };
    for r in rows {
        let key = r.key();
        table_rows.retain(|l| !l.starts_with(&key));
        table_rows.push(r.markdown());
    }
    table_rows.sort();
    let out = format!(
        "{before}{BEGIN}\n{TABLE_HEAD}\n{}\n{END}{after}",
        table_rows.join("\n")
    );
    std::fs::write(&path, out).with_context(|| format!("write {}", path.display()))?;
    eprintln!("bench: updated {}", path.display());
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bench: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let o = parse()?;
    let mut rows = Vec::new();
    for v in o.versions.clone() {
        rows.extend(bench_version(&o, v).await?);
    }
    println!("{TABLE_HEAD}");
    for r in &rows {
        println!("{}", r.markdown());
    }
    if o.write {
        write_benchmarks(&rows)?;
    }
    Ok(())
}

/// etcd-disk reader throughput (issue 3) on member 0's files, after stopping it: the
/// CRC-verified WAL scan (`examples/wal_read`, reference: `cat` of the segment files) and the
/// full bbolt scan that `snapshot status` does (`examples/bolt_scan`: every page checked, every
/// key and value hashed; reference: `etcdctl`/`etcdutl snapshot status`). MB/s (of the medians)
/// go into the names, as the table has no column for them.
async fn disk_cases(o: &Opts, v: Version, mut c: Cluster) -> Result<Vec<Row>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--quiet", "--release", "--package", "etcd-disk"])
        .args(["--example", "wal_read", "--example", "bolt_scan"])
        .current_dir(workspace_root())
        .status()
        .context("cargo build --examples")?;
    if !st.success() {
        bail!("building etcd-disk's examples failed ({st})");
    }
    let ex = etcd_rescue_tests::target_dir().join("release/examples");
    c.stop_member(0).await?;
    let dd = c.members[0].data_dir.clone();
    let wal_dir = dd.join("member/wal");
    let db = dd.join("member/snap/db");
    let segs = etcd_disk::wal::list_segments(&wal_dir)?;
    // Log bytes: closed segments whole, the last one up to its zeroed preallocated tail.
    let mut r = etcd_disk::wal::RecordReader::new(segs.clone());
    while r.next_record()?.is_some() {}
    let mut wal_bytes = r.last_valid_offset();
    for s in segs.iter().take(segs.len().saturating_sub(1)) {
        wal_bytes += std::fs::metadata(&s.path)?.len();
    }
    let db_bytes = std::fs::metadata(&db)?.len();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let rate = |bytes: u64, s: &[Sample]| {
        bytes as f64 / 1e6 / median(s.iter().map(|x| x.wall).collect()).as_secs_f64()
    };
    let mut rows = Vec::new();

    let s = side_by_side(
        o.runs,
        || {
            let mut cmd = Command::new(ex.join("wal_read"));
            cmd.arg(&wal_dir).arg("scan");
            cmd
        },
        || {
            let mut cmd = Command::new("cat");
            cmd.args(segs.iter().map(|s| s.path.clone()));
            cmd
        },
    )?;
    let (ours, theirs) = (rate(wal_bytes, &s.0), rate(wal_bytes, &s.1));
    eprintln!(
        "bench: etcd {v}: WAL {} segments, {:.0} MB: wal_read {ours:.0} MB/s, cat {theirs:.0} MB/s",
        segs.len(),
        wal_bytes as f64 / 1e6
    );
    rows.push(row(
        "disk-wal-read",
        v,
        o.dataset,
        leak(format!(
            "wal_read scan: {} segments, {:.0} MB, {ours:.0} MB/s",
            segs.len(),
            wal_bytes as f64 / 1e6
        )),
        leak(format!("cat (raw read): {theirs:.0} MB/s")),
        s,
    ));

    let tool = if v == Version::V34 {
        "etcdctl"
    } else {
        "etcdutl"
    };
    let s = side_by_side(
        o.runs,
        || {
            let mut cmd = Command::new(ex.join("bolt_scan"));
            cmd.arg(&db).arg("status");
            cmd
        },
        || {
            let mut cmd = match v {
                Version::V34 => c.etcdctl(0),
                _ => match c.etcdutl() {
                    Ok(cmd) => cmd,
                    Err(_) => Command::new("false"),
                },
            };
            cmd.args(["snapshot", "status", "-w", "json"]).arg(&db);
            cmd
        },
    )?;
    let (ours, theirs) = (rate(db_bytes, &s.0), rate(db_bytes, &s.1));
    eprintln!(
        "bench: etcd {v}: db {:.0} MB: bolt_scan status {ours:.0} MB/s, {tool} snapshot status {theirs:.0} MB/s",
        db_bytes as f64 / 1e6
    );
    rows.push(row(
        "disk-bolt-scan",
        v,
        o.dataset,
        leak(format!(
            "bolt_scan status: {:.0} MB db, {ours:.0} MB/s",
            db_bytes as f64 / 1e6
        )),
        leak(format!("{tool} snapshot status: {theirs:.0} MB/s")),
        s,
    ));
    Ok(rows)
}

/// etcd's own v2 backup of the stopped member's data dir `d1` into `b`:
/// `ETCDCTL_API=2 etcdctl backup --with-v3` (3.4) / `etcdutl backup` (3.5).
fn their_backup(c: &Cluster, v: Version, d1: &Path, b: &Path) -> Command {
    let mut cmd = match v {
        Version::V34 => {
            let mut cmd = c.command_for(0, &c.bins.etcdctl);
            cmd.env("ETCDCTL_API", "2").args(["backup", "--with-v3"]);
            cmd
        }
        _ => {
            let mut cmd = c.etcdutl().unwrap_or_else(|_| Command::new("false"));
            cmd.arg("backup");
            cmd
        }
    };
    cmd.arg("--data-dir").arg(d1).arg("--backup-dir").arg(b);
    cmd
}

/// The v2 method (issue 5), on the running cluster with user v2 keys added: `etcd-wal-backup
/// backup` of member 0 while etcd runs (db copied from disk; and from the snapshot stream) vs etcd's own tool on the
/// same data — `ETCDCTL_API=2 etcdctl backup --with-v3` (3.4) / `etcdutl backup` (3.5) — on
/// member 1's data dir with member 1 stopped (they cannot run on a live member: they wait on
/// the db lock); and offline `etcd-detect-version` on a data dir holding one full 64 MB WAL
/// segment (written with etcd-disk's writer) vs `cat` of the segments as the raw-read floor.
async fn v2_cases(o: &Opts, v: Version, c: &mut Cluster) -> Result<Vec<Row>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let url = c.members[1].client_url.clone();
    for i in 0..200 {
        v2_put(&url, &format!("/bench/v2/k{i:04}"), "v2-value")?;
    }
    let work = tempfile::tempdir()?;
    let out = work.path().to_path_buf();
    let d0 = c.members[0].data_dir.clone();
    let d1 = c.members[1].data_dir.clone();
    c.stop_member(1).await?;
    // A new backup dir per run; the previous run's output of the same side is removed first.
    let n = AtomicUsize::new(0);
    let fresh = |tag: &str| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let _ = std::fs::remove_dir_all(out.join(format!("{tag}{}", i.saturating_sub(2))));
        out.join(format!("{tag}{i}"))
    };
    let our_backup = |extra: &[&str], data: &Path| {
        let mut cmd = c.tool("etcd-wal-backup");
        cmd.args(["backup", "-q"])
            .args(extra)
            .arg("--data-dir")
            .arg(data)
            .arg("--backup-dir")
            .arg(fresh("ours"));
        cmd
    };
    let s = side_by_side(
        o.runs,
        || our_backup(&[], &d0),
        || their_backup(c, v, &d1, &fresh("theirs")),
    )?;
    let theirs = if v == Version::V34 {
        "ETCDCTL_API=2 etcdctl backup --with-v3 (member stopped)"
    } else {
        "etcdutl backup (member stopped)"
    };
    let mut rows = vec![row(
        "wal-backup",
        v,
        o.dataset,
        "etcd-wal-backup backup (etcd running)",
        theirs,
        s,
    )];
    // The same with the db from the member's snapshot stream (the fallback path).
    let s = side_by_side(
        o.runs,
        || our_backup(&["--db-source", "stream"], &d0),
        || their_backup(c, v, &d1, &fresh("theirs")),
    )?;
    rows.push(row(
        "wal-backup-stream",
        v,
        o.dataset,
        "etcd-wal-backup backup --db-source stream (etcd running)",
        theirs,
        s,
    ));
    // Like for like: both on the stopped member 1 (ours then copies the db file).
    let s = side_by_side(
        o.runs,
        || our_backup(&[], &d1),
        || their_backup(c, v, &d1, &fresh("theirs")),
    )?;
    rows.push(row(
        "wal-backup-stopped",
        v,
        o.dataset,
        "etcd-wal-backup backup (member stopped)",
        theirs,
        s,
    ));
    c.start_member(1).await?;

    // Offline detect on a data dir with one full 64 MB WAL segment (and a tail segment).
    let dd = work.path().join("detect");
    let segs = write_full_segment(&dd)?;
    let s = side_by_side(
        o.runs,
        || {
            let mut cmd = c.tool("etcd-detect-version");
            cmd.args(["-q", "--data-dir"]).arg(&dd);
            cmd
        },
        || {
            let mut cmd = Command::new("cat");
            cmd.args(&segs);
            cmd
        },
    )?;
    rows.push(row(
        "detect-offline-64MB-wal",
        v,
        o.dataset,
        "etcd-detect-version --data-dir (one full 64 MB segment)",
        "cat of the segments (raw read)",
        s,
    ));
    Ok(rows)
}

/// `PUT /v2/keys<key>` over plain HTTP/1.1.
fn v2_put(client_url: &str, key: &str, value: &str) -> Result<()> {
    use std::io::{Read, Write};
    let hostport = client_url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).context("v2 PUT")?;
    let body = format!("value={value}");
    write!(
        s,
        "PUT /v2/keys{key} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    if !(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.1 201")) {
        bail!("v2 PUT {key}: {}", out.lines().next().unwrap_or(""));
    }
    Ok(())
}

/// A data dir whose WAL holds one full 64,000,000-byte segment of 1 KiB v3 puts with some v2
/// writes among them, a tail segment, and an empty db. Returns the segment paths.
fn write_full_segment(dd: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    use etcd_disk::proto::{
        encode, entry_type, Entry, HardState, InternalRaftRequest, Metadata, PutRequest, Request,
        RequestHeader,
    };
    let wal = dd.join("member/wal");
    std::fs::create_dir_all(dd.join("member/snap"))?;
    let mut w = etcd_disk::wal::WalWriter::create(
        &wal,
        &Metadata {
            node_id: 1,
            cluster_id: 2,
        },
    )?;
    let val = vec![b'x'; 1024];
    let mut index = 0u64;
    while w.offset() < etcd_disk::wal::SEGMENT_SIZE_BYTES && index < 1_000_000 {
        let mut batch = Vec::new();
        for _ in 0..256 {
            index += 1;
            let data = if index % 1000 == 0 {
                encode(&Request {
                    id: index,
                    method: b"PUT".to_vec(),
                    path: format!("/1/bench/{index}").into_bytes(),
                    val: b"v".to_vec(),
                    ..Default::default()
                })
            } else {
                encode(&InternalRaftRequest {
                    put: Some(PutRequest {
                        key: format!("/registry/k{index}").into_bytes(),
                        value: val.clone(),
                        ..Default::default()
                    }),
                    header: Some(RequestHeader {
                        id: index,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
            };
            batch.push(Entry {
                r#type: entry_type::NORMAL,
                term: 2,
                index,
                data: Some(data),
            });
        }
        w.save(
            &HardState {
                term: 2,
                vote: 1,
                commit: index,
            },
            &batch,
        )?;
    }
    w.finish()?;
    let mut ed = etcd_disk::bolt::write::Edits::new();
    ed.put(b"meta", b"consistent_index", &index.to_be_bytes())?;
    etcd_disk::bolt::write::create(4096, &ed, &dd.join("member/snap/db"))?;
    Ok(etcd_disk::wal::list_segments(&wal)?
        .into_iter()
        .map(|s| s.path)
        .collect())
}

/// snap-save, snap-status, snap-restore (and restore against a plain `cp` of the file).
fn bench_snap(o: &Opts, v: Version, c: &Cluster) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let dir = c.dir.join("bench-snap");
    std::fs::create_dir_all(&dir)?;
    let ep = c.members[0].client_url.clone();
    let ours_file = dir.join("ours.db");
    let theirs_file = dir.join("theirs.db");
    let s = side_by_side(
        o.runs,
        || {
            let mut x = c.tool("etcd-snap");
            x.args(["-q", "save", "--force", "--endpoints", &ep])
                .arg(&ours_file);
            x
        },
        || {
            let mut x = c.etcdctl(0);
            x.args(["snapshot", "save"]).arg(&theirs_file);
            x
        },
    )?;
    rows.push(row(
        "snap-save",
        v,
        o.dataset,
        "etcd-snap save",
        "etcdctl snapshot save",
        s,
    ));
    // On the member's host: the db copied from its data dir (issue 17).
    let local_file = dir.join("ours-local.db");
    let dd = c.members[0].data_dir.clone();
    let s = side_by_side(
        o.runs,
        || {
            let mut x = c.tool("etcd-snap");
            x.args([
                "-q",
                "save",
                "--force",
                "--require-local",
                "--endpoints",
                &ep,
            ])
            .arg("--data-dir")
            .arg(&dd)
            .arg(&local_file);
            x
        },
        || {
            let mut x = c.etcdctl(0);
            x.args(["snapshot", "save"]).arg(&theirs_file);
            x
        },
    )?;
    rows.push(row(
        "snap-save-local",
        v,
        o.dataset,
        "etcd-snap save --data-dir",
        "etcdctl snapshot save",
        s,
    ));
    let etcd_tool = || match v {
        Version::V34 => Ok(c.etcdctl(0)),
        _ => c.etcdutl(),
    };
    let (st_name, rs_name) = match v {
        Version::V34 => ("etcdctl snapshot status", "etcdctl snapshot restore"),
        _ => ("etcdutl snapshot status", "etcdutl snapshot restore"),
    };
    etcd_tool()?;
    let snap = theirs_file.clone();
    let s = side_by_side(
        o.runs,
        || {
            let mut x = c.tool("etcd-snap");
            x.args(["-q", "status"]).arg(&snap);
            x
        },
        || {
            let mut x = etcd_tool().unwrap_or_else(|_| c.etcdctl(0));
            x.args(["snapshot", "status", "-w", "json"]).arg(&snap);
            x
        },
    )?;
    rows.push(row(
        "snap-status",
        v,
        o.dataset,
        "etcd-snap status",
        st_name,
        s,
    ));
    // Restore: every run into a fresh dir (removed before the run starts, outside the timing).
    let m = &c.members[0];
    let restore_args = |d: &std::path::Path| -> Vec<String> {
        vec![
            "--name".into(),
            m.name.clone(),
            "--initial-cluster".into(),
            c.initial_cluster(),
            "--initial-cluster-token".into(),
            "bench".into(),
            "--initial-advertise-peer-urls".into(),
            m.peer_url.clone(),
            "--data-dir".into(),
            d.display().to_string(),
        ]
    };
    let fresh = |name: &str| {
        let d = dir.join(name);
        let _ = std::fs::remove_dir_all(&d);
        d
    };
    let ours_restore = || {
        let d = fresh("restore-ours");
        let mut x = c.tool("etcd-snap");
        x.args(["-q", "restore"]).args(restore_args(&d)).arg(&snap);
        x
    };
    let s = side_by_side(o.runs, ours_restore, || {
        let d = fresh("restore-theirs");
        let mut x = etcd_tool().unwrap_or_else(|_| c.etcdctl(0));
        x.args(["snapshot", "restore"])
            .arg(&snap)
            .args(restore_args(&d));
        x
    })?;
    rows.push(row(
        "snap-restore",
        v,
        o.dataset,
        "etcd-snap restore",
        rs_name,
        s,
    ));
    // The reference: a plain cp of the snapshot into a fresh dir.
    let plain_cp = || {
        let d = fresh("cp");
        let _ = std::fs::create_dir_all(&d);
        let mut x = Command::new("cp");
        x.arg(&snap).arg(d.join("db"));
        x
    };
    let s = side_by_side(o.runs, ours_restore, plain_cp)?;
    rows.push(row(
        "snap-restore-vs-cp",
        v,
        o.dataset,
        "etcd-snap restore",
        "cp FILE (reference)",
        s,
    ));
    // A restore fsyncs what it writes (a crash must not leave a db that only looks complete);
    // a plain cp leaves it in the page cache. The like-for-like reference is a durable copy.
    let s = side_by_side(o.runs, ours_restore, || {
        let d = fresh("cp-sync");
        let _ = std::fs::create_dir_all(&d);
        let mut x = Command::new("sh");
        x.args(["-c", "cp \"$1\" \"$2\" && sync \"$2\"", "sh"])
            .arg(&snap)
            .arg(d.join("db"));
        x
    })?;
    rows.push(row(
        "snap-restore-vs-cp-fsync",
        v,
        o.dataset,
        "etcd-snap restore",
        "cp FILE && sync FILE (durable reference)",
        s,
    ));
    // The same without the trailer check: what the copy and the edits cost.
    let s = side_by_side(
        o.runs,
        || {
            let d = fresh("restore-ours-nohash");
            let mut x = c.tool("etcd-snap");
            x.args(["-q", "restore", "--skip-hash-check"])
                .args(restore_args(&d))
                .arg(&snap);
            x
        },
        plain_cp,
    )?;
    rows.push(row(
        "snap-restore-skip-hash-vs-cp",
        v,
        o.dataset,
        "etcd-snap restore --skip-hash-check",
        "cp FILE (reference)",
        s,
    ));
    // The floor of a checked restore: the sha256 of the image, one core, the fastest
    // implementation on the machine (OpenSSL's, SHA-NI where the CPU has it).
    if Command::new("openssl").arg("version").output().is_ok() {
        let s = side_by_side(o.runs, ours_restore, || {
            let mut x = Command::new("openssl");
            x.args(["dgst", "-sha256"]).arg(&snap);
            x
        })?;
        rows.push(row(
            "snap-restore-vs-sha256",
            v,
            o.dataset,
            "etcd-snap restore",
            "openssl dgst -sha256 FILE (the trailer check's floor)",
            s,
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}
