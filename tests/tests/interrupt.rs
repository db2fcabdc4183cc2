//! Interrupt safety of `etcd-wal-backup` (issue 11, reproduction 3), on a real etcd member:
//! kill loops at random moments over the whole run (delays uniform in [0, 1.2 × a normal
//! run's duration]), SIGINT, SIGTERM and SIGKILL mixed, for `restore` from a dir backup and
//! from a `.tar.gz`, and for `backup` to a dir and to `--archive`. After every kill:
//!
//! - the target is absent (the old state) or complete (the new state: a restored member dir
//!   identical, file by file, to a normal restore's; a backup whose every file matches its
//!   manifest);
//! - SIGINT/SIGTERM exit 130/143 saying "partial files removed", and it is true: no `.part`,
//!   no staging dir, no lock file, and no data dir the run created (or the run finished first
//!   and says so with exit 0, its output complete);
//! - the next run succeeds (or, the output being complete, refuses with exit 7) and leaves no
//!   `.part` or lock file, also after a SIGKILL.
//!
//! Once per restore loop, the member dir restored right after a kill is started with real etcd
//! (`--force-new-cluster`) and every key is read back.
//!
//! `INTERRUPT_KILLS` sets the kills per loop (default 50); `INTERRUPT_TOOLS_DIR` runs the
//! tools from another dir (to check that the test fails on an older build).
#![allow(clippy::unwrap_used)]

use etcd_rescue_tests::{Cluster, ClusterOpts, Version};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEYS: usize = 3000;
/// Value sizes: ~15 MB of values for the dir loops (a run copies the db and the WAL holding
/// them: a few hundred ms, so that kills land mid-copy); an archive is compressed, slower:
/// ~3.6 MB does.
const VAL_DIR: (usize, usize) = (4000, 6000);
const VAL_ARCHIVE: (usize, usize) = (800, 1600);

fn kills() -> usize {
    std::env::var("INTERRUPT_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
}

/// The loops measure durations: one at a time, whatever the test threads.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// xorshift64*, seeded from the clock (printed, and settable with `INTERRUPT_SEED`).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("INTERRUPT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("INTERRUPT_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tool(c: &Cluster, name: &str) -> Command {
    match std::env::var_os("INTERRUPT_TOOLS_DIR") {
        Some(d) => c.command_for(etcd_rescue_tests::ALL, PathBuf::from(d).join(name)),
        None => c.tool(name),
    }
}

/// What a run ended with.
#[derive(Debug)]
struct Ended {
    /// Exit code, or None when killed by a signal (SIGKILL).
    code: Option<i32>,
    envelope: Option<Value>,
    stderr: String,
    took: Duration,
}

fn run_to_end(mut c: Command) -> Ended {
    let t0 = Instant::now();
    let out = c.stdin(Stdio::null()).output().unwrap();
    ended(out, t0)
}

fn ended(out: std::process::Output, t0: Instant) -> Ended {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Ended {
        code: out.status.code(),
        envelope: serde_json::from_str(stdout.trim()).ok(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        took: t0.elapsed(),
    }
}

/// Start `c`, send `sig` after `delay`, wait for it.
fn kill_after(mut c: Command, delay: Duration, sig: i32) -> Ended {
    let t0 = Instant::now();
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    // Not yet waited for: the pid is still ours even if the run already ended (a zombie).
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
    ended(child.wait_with_output().unwrap(), t0)
}

fn sig_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "SIGKILL",
    }
}

/// sha256 of every regular file under `dir` (relative paths), and every dir as "dir".
fn digest_tree(dir: &Path) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                out.insert(rel, "dir".to_string());
                stack.push(p);
            } else if t.is_file() {
                let h = Sha256::digest(std::fs::read(&p).unwrap());
                out.insert(rel, etcd_disk::snapshot::hex(&h));
            } else {
                out.insert(rel, format!("{t:?}"));
            }
        }
    }
    out
}

/// Names under `root` (recursively) that a finished or cleaned-up run must not leave.
fn leftovers(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".part") || n.ends_with(".lock") || n.contains(".tmp") {
                out.push(e.path().display().to_string());
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            }
        }
    }
    out
}

/// A one-member cluster with KEYS keys (values of `val` bytes), stopped, and a work dir.
async fn stopped(v: Version, val: (usize, usize)) -> (Cluster, PathBuf, PathBuf) {
    let mut c = Cluster::start(v, ClusterOpts::members(1)).await.unwrap();
    let mut cl = c.client_all().await.unwrap();
    etcd_rescue_tests::fill_k8s_like(&mut cl, KEYS, val.0, val.1, 16)
        .await
        .unwrap();
    drop(cl);
    c.stop_all().await.unwrap();
    let data_dir = c.members[0].data_dir.clone();
    let root = c.dir.join("interrupt");
    std::fs::create_dir(&root).unwrap();
    (c, data_dir, root)
}

/// A signal for kill `i`: the three mixed at random, each at least once every 3 kills.
fn pick_signal(rng: &mut Rng, i: usize) -> i32 {
    const SIGS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGKILL];
    if i < 3 {
        SIGS[i]
    } else {
        SIGS[(rng.next() % 3) as usize]
    }
}

/// Counts of how the kills landed.
#[derive(Default, Debug)]
struct Tally {
    finished_first: usize,
    cleaned_up: usize,
    killed_absent: usize,
    killed_complete: usize,
}

/// Check an interrupted run's exit: 0 (it finished first), or 130/143 saying "partial files
/// removed" for SIGINT/SIGTERM (or killed by it before its handlers were installed); SIGKILL:
/// no exit code. Returns whether it said it finished.
fn check_exit(tag: &str, sig: i32, e: &Ended) -> bool {
    match (sig, e.code) {
        (libc::SIGKILL, None) => false,
        // Killed by the default action before the handlers were installed (a few hundred
        // microseconds after exec): nothing was written yet, which the caller checks.
        (libc::SIGINT | libc::SIGTERM, None) => false,
        (_, Some(0)) => {
            assert_eq!(
                e.envelope.as_ref().unwrap()["ok"],
                true,
                "{tag}: {:?}",
                e.envelope
            );
            true
        }
        (libc::SIGINT, Some(130)) | (libc::SIGTERM, Some(143)) => {
            let env = e.envelope.as_ref().unwrap_or_else(|| {
                panic!("{tag}: no envelope after {}: {}", sig_name(sig), e.stderr)
            });
            let msg = env["error"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains("partial files removed"), "{tag}: {env}");
            false
        }
        _ => panic!(
            "{tag}: {} gave exit {:?}: {:?}\n{}",
            sig_name(sig),
            e.code,
            e.envelope,
            e.stderr
        ),
    }
}

/// Put `member` (a restored member dir) in place on member 0, start real etcd on it with
/// --force-new-cluster and count the keys.
async fn start_on(c: &mut Cluster, member: &Path, tag: &str, val: (usize, usize)) {
    let d = c.members[0].data_dir.clone();
    if d.join("member").exists() {
        std::fs::rename(d.join("member"), d.join(format!("member.before-{tag}"))).unwrap();
    }
    std::fs::rename(member, d.join("member")).unwrap();
    c.start_member_with(0, &["--force-new-cluster"])
        .await
        .unwrap_or_else(|e| panic!("{tag}: etcd refused the dir: {e:#}\n{}", c.log_tail(0, 30)));
    let mut k = c.client(0).await.unwrap();
    let r = k
        .get(
            "/registry/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.count(), KEYS as i64, "{tag}: every key is there");
    // Values read back (a page at a time: the whole db is larger than a gRPC message).
    let mut read = 0;
    for n in (0..KEYS).step_by(7) {
        let key = etcd_rescue_tests::k8s_key(n);
        let r = k.get(key.as_str(), None).await.unwrap();
        let kv = r
            .kvs()
            .first()
            .unwrap_or_else(|| panic!("{tag}: {key} missing"));
        assert_eq!(
            kv.value(),
            etcd_rescue_tests::k8s_value(n, val.0, val.1),
            "{key}"
        );
        read += 1;
    }
    eprintln!("{tag}: {read} values compared");
    c.stop_member(0).await.unwrap();
    std::fs::rename(d.join("member"), d.join(format!("member.{tag}"))).unwrap();
    eprintln!("{tag}: etcd started on a member dir restored after a kill, {KEYS} keys read");
}

/// The restore kill loop, from `backup` (a dir or a .tar.gz).
async fn restore_loop(v: Version, archive: bool) {
    let _serial = SERIAL.lock().await;
    let val = if archive { VAL_ARCHIVE } else { VAL_DIR };
    let (mut c, data_dir, root) = stopped(v, val).await;
    let tag = if archive {
        "restore-archive"
    } else {
        "restore-dir"
    };
    let bdir = root.join("backup");
    let mut b = tool(&c, "etcd-wal-backup");
    b.args([
        "backup",
        "--data-dir",
        s(&data_dir),
        "--backup-dir",
        s(&bdir),
    ]);
    if archive {
        b.arg("--archive");
    }
    let e = run_to_end(b);
    assert_eq!(e.code, Some(0), "{:?}\n{}", e.envelope, e.stderr);
    let src = PathBuf::from(
        e.envelope.unwrap()["facts"]["backup"]["path"]
            .as_str()
            .unwrap(),
    );
    let target = root.join("restored/data");
    let restore = |c: &Cluster| {
        let mut x = tool(c, "etcd-wal-backup");
        x.args(["restore", "--backup-dir", s(&src), "--data-dir", s(&target)]);
        x
    };
    // A normal run: the reference member dir, and the duration.
    let mut took = Duration::ZERO;
    let mut reference = None;
    for _ in 0..2 {
        let e = run_to_end(restore(&c));
        assert_eq!(e.code, Some(0), "{tag}: {:?}\n{}", e.envelope, e.stderr);
        let d = digest_tree(&target.join("member"));
        assert!(d.contains_key("snap/db") && d.contains_key("wal"), "{d:?}");
        if let Some(r) = &reference {
            assert_eq!(&d, r, "{tag}: two restores of one backup are identical");
        }
        reference = Some(d);
        took = took.max(e.took);
        std::fs::remove_dir_all(root.join("restored")).unwrap();
    }
    let reference = reference.unwrap();
    eprintln!("{tag} ({}): a normal run takes {took:?}", v.as_str());
    let mut rng = Rng::new();
    let mut t = Tally::default();
    let mut failed = Vec::new();
    let mut started = false;
    for i in 0..kills() {
        let sig = pick_signal(&mut rng, i);
        let delay = took.mul_f64(1.2 * rng.unit());
        let k = format!("{tag} kill {i} ({} after {delay:?})", sig_name(sig));
        let member = target.join("member");
        let one = || {
            let e = kill_after(restore(&c), delay, sig);
            let finished = check_exit(&k, sig, &e);
            let complete = if member.exists() {
                assert_eq!(
                    digest_tree(&member),
                    reference,
                    "{k}: the member dir is there, so it must be complete: {:?}\n{}",
                    e.envelope,
                    e.stderr
                );
                true
            } else {
                false
            };
            if sig != libc::SIGKILL {
                assert_eq!(complete, finished, "{k}: {:?}\n{}", e.envelope, e.stderr);
                assert_eq!(
                    leftovers(&root),
                    Vec::<String>::new(),
                    "{k}: 'partial files removed' must be true"
                );
                if !finished {
                    assert!(
                        !target.exists(),
                        "{k}: the interrupted run removes the data dir it created"
                    );
                }
            }
            // The next run completes, whatever the kill left; or, the member dir being
            // complete already, refuses to touch it (7), and cleans up all the same.
            let r = run_to_end(restore(&c));
            let want = if complete { 7 } else { 0 };
            assert_eq!(
                r.code,
                Some(want),
                "{k}: rerun: {:?}\n{}",
                r.envelope,
                r.stderr
            );
            assert_eq!(digest_tree(&member), reference, "{k}: rerun");
            assert_eq!(
                leftovers(&root),
                Vec::<String>::new(),
                "{k}: after the rerun"
            );
            (finished, complete)
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(one)) {
            Ok((finished, complete)) => {
                t.count(sig, finished, complete);
                if !complete && sig == libc::SIGKILL && !started {
                    started = true;
                    start_on(&mut c, &member, &format!("{tag}-{i}"), val).await;
                }
            }
            Err(p) => failed.push(keep_going(&k, p)),
        }
        let _ = std::fs::remove_dir_all(root.join("restored"));
        for l in leftovers(&root) {
            let _ = std::fs::remove_dir_all(&l);
            let _ = std::fs::remove_file(&l);
        }
    }
    eprintln!("{tag} ({}): {} kills: {t:?}", v.as_str(), kills());
    assert_eq!(
        failed,
        Vec::<String>::new(),
        "{} of {} kills failed",
        failed.len(),
        kills()
    );
    if !started {
        // Every SIGKILL landed after the end: start etcd on a normal restore instead.
        let r = run_to_end(restore(&c));
        assert_eq!(r.code, Some(0));
        start_on(&mut c, &target.join("member"), tag, val).await;
    }
}

/// A failed kill: panic again, unless `INTERRUPT_KEEP_GOING` is set (then count it, to measure
/// how often an older build fails).
fn keep_going(k: &str, p: Box<dyn std::any::Any + Send>) -> String {
    if std::env::var_os("INTERRUPT_KEEP_GOING").is_none() {
        std::panic::resume_unwind(p);
    }
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let first = msg.lines().next().unwrap_or_default().to_string();
    eprintln!("FAILED {k}: {first}");
    first
}

impl Tally {
    fn count(&mut self, sig: i32, finished: bool, complete: bool) {
        match (finished, complete) {
            (true, _) => self.finished_first += 1,
            (false, true) => self.killed_complete += 1,
            (false, false) if sig == libc::SIGKILL => self.killed_absent += 1,
            _ => self.cleaned_up += 1,
        }
    }
}

/// Whether the backup dir `b` is complete: every file under it listed in its manifest with
/// the same sha256, and nothing else.
fn backup_complete(b: &Path) -> Result<(), String> {
    let m: Value = serde_json::from_slice(
        &std::fs::read(b.join("manifest.json")).map_err(|e| format!("manifest: {e}"))?,
    )
    .map_err(|e| format!("manifest: {e}"))?;
    let mut want: BTreeMap<String, String> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    want.insert("manifest.json".into(), String::new());
    let got: BTreeMap<String, String> = digest_tree(b)
        .into_iter()
        .filter(|(_, v)| v != "dir")
        .map(|(k, v)| {
            let v = if k == "manifest.json" {
                String::new()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    if got != want {
        return Err(format!("files {got:?}, manifest {want:?}"));
    }
    if !want.keys().any(|k| k.ends_with(".wal")) || !want.contains_key("member/snap/db") {
        return Err(format!("no WAL or db: {want:?}"));
    }
    Ok(())
}

/// Whether the archive is complete: it unpacks and its files match its manifest.
fn archive_complete(a: &Path, scratch: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    let st = Command::new("tar")
        .args(["xzf", s(a), "-C", s(scratch)])
        .status()
        .unwrap();
    if !st.success() {
        return Err(format!("tar xzf {} failed", a.display()));
    }
    let r = backup_complete(scratch);
    std::fs::remove_dir_all(scratch).unwrap();
    r
}

async fn backup_loop(v: Version, archive: bool) {
    let _serial = SERIAL.lock().await;
    let val = if archive { VAL_ARCHIVE } else { VAL_DIR };
    let (c, data_dir, root) = stopped(v, val).await;
    let tag = if archive {
        "backup-archive"
    } else {
        "backup-dir"
    };
    let out = root.join("out");
    std::fs::create_dir(&out).unwrap();
    let scratch = root.join("scratch");
    let bdir = out.join("b");
    let fin = if archive {
        out.join("b.tar.gz")
    } else {
        bdir.clone()
    };
    let backup = |c: &Cluster| {
        let mut x = tool(c, "etcd-wal-backup");
        x.args([
            "backup",
            "--data-dir",
            s(&data_dir),
            "--backup-dir",
            s(&bdir),
        ]);
        if archive {
            x.arg("--archive");
        }
        x
    };
    let complete = |p: &Path| {
        if archive {
            archive_complete(p, &scratch)
        } else {
            backup_complete(p)
        }
    };
    let reset = || {
        if archive {
            let _ = std::fs::remove_file(&fin);
        } else {
            let _ = std::fs::remove_dir_all(&fin);
        }
    };
    let mut took = Duration::ZERO;
    for _ in 0..2 {
        let e = run_to_end(backup(&c));
        assert_eq!(e.code, Some(0), "{tag}: {:?}\n{}", e.envelope, e.stderr);
        complete(&fin).unwrap();
        took = took.max(e.took);
        reset();
    }
    eprintln!("{tag} ({}): a normal run takes {took:?}", v.as_str());
    let mut rng = Rng::new();
    let mut t = Tally::default();
    let mut failed = Vec::new();
    for i in 0..kills() {
        let sig = pick_signal(&mut rng, i);
        let delay = took.mul_f64(1.2 * rng.unit());
        let k = format!("{tag} kill {i} ({} after {delay:?})", sig_name(sig));
        let one = || {
            let e = kill_after(backup(&c), delay, sig);
            let finished = check_exit(&k, sig, &e);
            let there = std::fs::symlink_metadata(&fin).is_ok();
            if there {
                complete(&fin).unwrap_or_else(|m| {
                    panic!(
                        "{k}: the backup is there, so it must be complete: {m}\n{:?}\n{}",
                        e.envelope, e.stderr
                    )
                });
            }
            if sig != libc::SIGKILL {
                assert_eq!(there, finished, "{k}: {:?}\n{}", e.envelope, e.stderr);
                assert_eq!(
                    leftovers(&out),
                    Vec::<String>::new(),
                    "{k}: 'partial files removed' must be true"
                );
            }
            // The next run completes; or, the backup being there, refuses (7) and cleans up.
            let r = run_to_end(backup(&c));
            let want = if there { 7 } else { 0 };
            assert_eq!(
                r.code,
                Some(want),
                "{k}: rerun: {:?}\n{}",
                r.envelope,
                r.stderr
            );
            complete(&fin).unwrap_or_else(|m| panic!("{k}: rerun: {m}"));
            assert_eq!(
                leftovers(&out),
                Vec::<String>::new(),
                "{k}: after the rerun"
            );
            (finished, there)
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(one)) {
            Ok((finished, there)) => t.count(sig, finished, there),
            Err(p) => failed.push(keep_going(&k, p)),
        }
        reset();
        for l in leftovers(&out) {
            let _ = std::fs::remove_dir_all(&l);
            let _ = std::fs::remove_file(&l);
        }
    }
    eprintln!("{tag} ({}): {} kills: {t:?}", v.as_str(), kills());
    assert_eq!(
        failed,
        Vec::<String>::new(),
        "{} of {} kills failed",
        failed.len(),
        kills()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_from_a_dir_survives_kills() {
    restore_loop(Version::V35, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_from_an_archive_survives_kills() {
    restore_loop(Version::V35, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_to_a_dir_survives_kills() {
    backup_loop(Version::V35, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_to_an_archive_survives_kills() {
    backup_loop(Version::V35, true).await;
}
