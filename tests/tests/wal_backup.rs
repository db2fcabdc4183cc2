//! etcd-wal-backup end to end on 3-member etcd 3.4.23 and 3.5.1 clusters with --enable-v2:
//! a backup under a concurrent v2+v3 writer and one of an idle cluster right after its last
//! write, both with etcd running; etcd's own backup (`ETCDCTL_API=2 etcdctl backup --with-v3`
//! on 3.4, `etcdutl backup` on 3.5) of the stopped member; corrupt copies (flipped WAL bit,
//! truncated .snap) → exit 3 and no partial dir; then every member purged (moved aside) and
//! each backup put in place on member 0 and started with --force-new-cluster: every key
//! acknowledged before the backup began is there, the last one included; new writes get
//! higher revisions; the cluster ID is new; the key sets equal etcd's backup's (which loses the
//! last write when it is above the persisted commit index).
#![allow(clippy::unwrap_used)]

use etcd_rescue_tests::{Cluster, ClusterOpts, Version};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn http(client_url: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let hostport = client_url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(hostport).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    // Chunked bodies: keep the JSON line.
    let body = body
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or("")
        .to_string();
    (status, body)
}

async fn v2_put(url: &str, key: &str, value: &str) -> bool {
    let (st, _) = http(
        url,
        "PUT",
        &format!("/v2/keys{key}"),
        &format!("value={value}"),
    )
    .await;
    st == 200 || st == 201
}

/// Every v2 key (not dirs) with its value.
async fn v2_all(url: &str) -> BTreeMap<String, String> {
    let (st, body) = http(url, "GET", "/v2/keys/?recursive=true", "").await;
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    fn walk(n: &Value, out: &mut BTreeMap<String, String>) {
        for c in n
            .get("nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if c.get("dir").and_then(Value::as_bool).unwrap_or(false) {
                walk(c, out);
            } else {
                out.insert(
                    c["key"].as_str().unwrap().to_string(),
                    c["value"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&v["node"], &mut out);
    out
}

/// Every v3 key with its value and the highest mod revision.
async fn v3_all(c: &mut etcd_client::Client) -> (BTreeMap<String, String>, i64) {
    let r = c
        .get(
            vec![0u8],
            Some(etcd_client::GetOptions::new().with_all_keys()),
        )
        .await
        .unwrap();
    let mut max = 0;
    let mut out = BTreeMap::new();
    for kv in r.kvs() {
        max = max.max(kv.mod_revision());
        out.insert(
            String::from_utf8_lossy(kv.key()).to_string(),
            String::from_utf8_lossy(kv.value()).to_string(),
        );
    }
    (out, max)
}

fn envelope(o: &Output) -> Value {
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(s.lines().count(), 1, "one line on stdout: {s}");
    serde_json::from_str(s.trim()).unwrap()
}

fn run_tool(c: &Cluster, args: &[String]) -> (i32, Value, String) {
    let o = c.tool("etcd-wal-backup").args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        envelope(&o),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Acknowledged writes: key → (value, ack time).
type Acks = Arc<Mutex<Vec<(String, bool, String, Instant)>>>;

/// What a restored single member serves.
struct Restored {
    v3: BTreeMap<String, String>,
    v2: BTreeMap<String, String>,
    cluster_id: u64,
}

/// Put `member` (a prepared member dir) in place on member 0 (already purged), start it
/// with --force-new-cluster, read everything, check a new write's revision, stop, move aside.
async fn start_restored(c: &mut Cluster, tag: &str) -> Restored {
    c.start_member_with(0, &["--force-new-cluster"])
        .await
        .unwrap_or_else(|e| panic!("{tag}: start: {e:#}\n{}", c.log_tail(0, 30)));
    let mut k = c.client(0).await.unwrap();
    let st = k.status().await.unwrap();
    let cluster_id = st.header().unwrap().cluster_id();
    let members = k.member_list().await.unwrap();
    assert_eq!(members.members().len(), 1, "{tag}: one member");
    let (v3, max_rev) = v3_all(&mut k).await;
    let v2 = v2_all(&c.members[0].client_url).await;
    let put = k.put("/after/restore", "1", None).await.unwrap();
    let rev = put.header().unwrap().revision();
    assert!(
        rev > max_rev,
        "{tag}: a new write got revision {rev}, not above the restored {max_rev}"
    );
    assert!(v2_put(&c.members[0].client_url, "/after/restore", "1").await);
    c.stop_member(0).await.unwrap();
    let d = &c.members[0].data_dir;
    std::fs::rename(d.join("member"), d.join(format!("member.{tag}"))).unwrap();
    Restored { v3, v2, cluster_id }
}

fn acked_before(acks: &Acks, t: Instant) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let (mut v3, mut v2) = (BTreeMap::new(), BTreeMap::new());
    for (k, is_v2, val, at) in acks.lock().unwrap().iter() {
        if *at <= t {
            if *is_v2 {
                v2.insert(k.clone(), val.clone());
            } else {
                v3.insert(k.clone(), val.clone());
            }
        }
    }
    (v3, v2)
}

fn assert_contains(tag: &str, have: &BTreeMap<String, String>, want: &BTreeMap<String, String>) {
    let missing: Vec<&String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty(),
        "{tag}: {} of {} acknowledged keys missing, e.g. {:?}",
        missing.len(),
        want.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
}

fn flip_byte(p: &Path, off: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, off).unwrap();
}

fn copy_dir(src: &Path, dst: &Path) {
    let st = std::process::Command::new("cp")
        .args(["-a", &s(src), &s(dst)])
        .status()
        .unwrap();
    assert!(st.success());
}

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

async fn backup_restore(v: Version) {
    let mut c = Cluster::start(
        v,
        ClusterOpts {
            enable_v2: true,
            snapshot_count: Some(100),
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let work = tempfile::tempdir().unwrap();
    let d0 = c.members[0].data_dir.clone();
    let url1 = c.members[1].client_url.clone();
    let mut k = c.client_all().await.unwrap();
    let old_cluster = k.status().await.unwrap().header().unwrap().cluster_id();
    let acks: Acks = Arc::new(Mutex::new(Vec::new()));
    // A base: enough entries for a .snap, v2 keys among them.
    for i in 0..120 {
        let key = format!("/base/v3/{i:04}");
        k.put(key.as_str(), format!("b{i}"), None).await.unwrap();
        acks.lock()
            .unwrap()
            .push((key, false, format!("b{i}"), Instant::now()));
        if i % 10 == 0 {
            let key = format!("/base/v2/{i:04}");
            assert!(v2_put(&url1, &key, &format!("b{i}")).await);
            acks.lock()
                .unwrap()
                .push((key, true, format!("b{i}"), Instant::now()));
        }
    }

    // 1. Backup under a concurrent writer.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acks, stop, url) = (acks.clone(), stop.clone(), url1.clone());
        let mut kw = c.client_all().await.unwrap();
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("/w/v3/{i:05}");
                if kw.put(key.as_str(), format!("w{i}"), None).await.is_ok() {
                    acks.lock()
                        .unwrap()
                        .push((key, false, format!("w{i}"), Instant::now()));
                }
                if i % 3 == 0 {
                    let key = format!("/w/v2/{i:05}");
                    if v2_put(&url, &key, &format!("w{i}")).await {
                        acks.lock()
                            .unwrap()
                            .push((key, true, format!("w{i}"), Instant::now()));
                    }
                }
                i += 1;
            }
            i
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b1 = work.path().join("b1");
    let t1 = Instant::now();
    let args: Vec<String> = vec![
        "backup".into(),
        "--data-dir".into(),
        s(&d0),
        "--backup-dir".into(),
        s(&b1),
    ];
    let out = {
        let cmd_args = args.clone();
        let mut cmd = c.tool("etcd-wal-backup");
        cmd.args(&cmd_args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    let took1 = t1.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    let e1 = envelope(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{e1} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f1 = &e1["facts"]["backup"];
    assert_eq!(f1["online"], true, "{e1}");
    assert_eq!(f1["with_v3"], true);
    // By default the db is copied from disk, lock-free, kept only if no bbolt commit landed
    // during the copy (the writer commits every ~100 ms; a copy of this db takes ~1 ms).
    assert_eq!(f1["db_source"]["from"], "disk", "{e1}");
    assert!(f1["db_source"]["attempts"].as_u64().unwrap() <= 3, "{e1}");
    assert!(f1["complete_to_index"].as_u64().unwrap() >= f1["committed_index"].as_u64().unwrap());
    assert!(f1["complete_to_revision"].as_i64().unwrap() > 0);
    assert!(
        f1["snapshot_index"].as_u64().unwrap() > 0,
        "a .snap is carried: {e1}"
    );
    assert!(b1.join("manifest.json").is_file() && !work.path().join("b1.part").exists());
    assert_eq!(
        std::fs::metadata(&b1).unwrap().permissions().mode() & 0o777,
        0o700
    );
    eprintln!(
        "wal-backup {v}: backup under a writer ({written} writes) took {} ms: {}",
        took1.as_millis(),
        f1
    );

    // 2. An idle cluster right after its last write (a v2 then a v3 key), as an archive.
    assert!(v2_put(&url1, "/last/v2", "L2").await);
    acks.lock()
        .unwrap()
        .push(("/last/v2".into(), true, "L2".into(), Instant::now()));
    k.put("/last/v3", "L3", None).await.unwrap();
    acks.lock()
        .unwrap()
        .push(("/last/v3".into(), false, "L3".into(), Instant::now()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // What the member's WAL persisted: the last entries may sit above its persisted commit.
    let o = c
        .tool("etcd-detect-version")
        .args(["--data-dir", &s(&d0)])
        .output()
        .unwrap();
    let det = envelope(&o);
    let persisted_commit = det["data"]["offline"]["hard_state"]["commit"]
        .as_u64()
        .unwrap();
    let wal_last = det["data"]["offline"]["wal_last_index"].as_u64().unwrap();
    let t2 = Instant::now();
    let b2 = work.path().join("b2");
    let (code, e2, err2) = run_tool(
        &c,
        &[
            "backup".into(),
            "--data-dir".into(),
            s(&d0),
            "--backup-dir".into(),
            s(&b2),
            "--archive".into(),
            "--db-source".into(),
            "stream".into(),
        ],
    );
    assert_eq!(code, 0, "{e2} {err2}");
    assert_eq!(e2["facts"]["backup"]["db_source"]["from"], "stream", "{e2}");
    let cut = e2["facts"]["backup"]["complete_to_index"].as_u64().unwrap();
    assert!(
        cut >= wal_last,
        "idle backup complete to {cut}, the WAL held entries up to {wal_last}"
    );
    eprintln!(
        "wal-backup {v}: idle member: WAL last entry {wal_last}, persisted commit {persisted_commit}, backup complete to {cut} (revision {})",
        e2["facts"]["backup"]["complete_to_revision"]
    );
    let b2_tgz = work.path().join("b2.tar.gz");
    assert!(b2_tgz.is_file() && !b2.exists() && !work.path().join("b2.part").exists());
    // Refuses to overwrite.
    let (code, _, _) = run_tool(
        &c,
        &[
            "backup".into(),
            "--data-dir".into(),
            s(&d0),
            "--backup-dir".into(),
            s(&b2),
            "--archive".into(),
        ],
    );
    assert_eq!(code, 7);

    // 3. Stop; etcd's own backup of the stopped member, for comparison.
    c.stop_all().await.unwrap();
    let b3 = work.path().join("b3");
    let out = match v {
        Version::V34 => c
            .command_for(0, &c.bins.etcdctl)
            .env("ETCDCTL_API", "2")
            .args([
                "backup",
                "--data-dir",
                &s(&d0),
                "--backup-dir",
                &s(&b3),
                "--with-v3",
            ])
            .output()
            .unwrap(),
        _ => c
            .etcdutl()
            .unwrap()
            .args(["backup", "--data-dir", &s(&d0), "--backup-dir", &s(&b3)])
            .output()
            .unwrap(),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 4. Corrupt copies of the stopped member's dir → exit 3 naming file and offset, no .part.
    let cw = work.path().join("corrupt-wal");
    copy_dir(&d0, &cw);
    let seg = files_with(&cw.join("member/wal"), ".wal").pop().unwrap();
    flip_byte(&seg, 200);
    let bx = work.path().join("bx");
    let (code, ex, errx) = run_tool(
        &c,
        &[
            "backup".into(),
            "--data-dir".into(),
            s(&cw),
            "--backup-dir".into(),
            s(&bx),
        ],
    );
    assert_eq!(code, 3, "{ex} {errx}");
    let msg = ex["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&s(&seg)) && msg.contains("offset"), "{msg}");
    assert!(!bx.exists() && !work.path().join("bx.part").exists());
    let cs = work.path().join("corrupt-snap");
    copy_dir(&d0, &cs);
    let newest = files_with(&cs.join("member/snap"), ".snap").pop().unwrap();
    let len = std::fs::metadata(&newest).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (code, ex, errx) = run_tool(
        &c,
        &[
            "backup".into(),
            "--data-dir".into(),
            s(&cs),
            "--backup-dir".into(),
            s(&bx),
        ],
    );
    assert_eq!(code, 3, "{ex} {errx}");
    let msg = ex["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&s(&newest)) && msg.contains("offset"), "{msg}");
    assert!(!bx.exists() && !work.path().join("bx.part").exists());

    // 5. Purge every member (move aside).
    for m in &c.members {
        std::fs::rename(m.data_dir.join("member"), m.data_dir.join("member.old")).unwrap();
    }

    // 6. The backup taken under the writer.
    let (code, er, err) = run_tool(
        &c,
        &[
            "restore".into(),
            "--backup-dir".into(),
            s(&b1),
            "--data-dir".into(),
            s(&d0),
            "--name".into(),
            "m0".into(),
        ],
    );
    assert_eq!(code, 0, "{er} {err}");
    assert_eq!(er["facts"]["next"]["flags"][0], "--force-new-cluster");
    assert_eq!(
        std::fs::metadata(d0.join("member/wal"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    // A member dir is there now: refused.
    let (code, _, _) = run_tool(
        &c,
        &[
            "restore".into(),
            "--backup-dir".into(),
            s(&b1),
            "--data-dir".into(),
            s(&d0),
        ],
    );
    assert_eq!(code, 7);
    let r1 = start_restored(&mut c, "b1").await;
    let (want3, want2) = acked_before(&acks, t1);
    assert_contains("b1 v3", &r1.v3, &want3);
    assert_contains("b1 v2", &r1.v2, &want2);
    assert_ne!(r1.cluster_id, old_cluster, "b1: a new cluster ID");

    // 7. The idle backup: everything, the last write included.
    let (code, er, err) = run_tool(
        &c,
        &[
            "restore".into(),
            "--backup-dir".into(),
            s(&b2_tgz),
            "--data-dir".into(),
            s(&d0),
        ],
    );
    assert_eq!(code, 0, "{er} {err}");
    let r2 = start_restored(&mut c, "b2").await;
    let (want3, want2) = acked_before(&acks, t2);
    assert_contains("b2 v3", &r2.v3, &want3);
    assert_contains("b2 v2", &r2.v2, &want2);
    assert_eq!(r2.v3.get("/last/v3").map(String::as_str), Some("L3"));
    assert_eq!(r2.v2.get("/last/v2").map(String::as_str), Some("L2"));
    assert_ne!(r2.cluster_id, old_cluster);

    // 8. etcd's backup, restored the same way (moved in place, --force-new-cluster).
    std::fs::rename(b3.join("member"), d0.join("member")).unwrap();
    let r3 = start_restored(&mut c, "b3").await;
    let k3: BTreeSet<&String> = r3.v3.keys().collect();
    let k2: BTreeSet<&String> = r2.v3.keys().collect();
    let j3: BTreeSet<&String> = r3.v2.keys().collect();
    let j2: BTreeSet<&String> = r2.v2.keys().collect();
    assert!(
        k3.is_subset(&k2),
        "etcd's backup has v3 keys ours lacks: {:?}",
        k3.difference(&k2).collect::<Vec<_>>()
    );
    assert!(
        j3.is_subset(&j2),
        "etcd's backup has v2 keys ours lacks: {:?}",
        j3.difference(&j2).collect::<Vec<_>>()
    );
    let lost3: Vec<&&String> = k2.difference(&k3).collect();
    let lost2: Vec<&&String> = j2.difference(&j3).collect();
    for l in lost3.iter().chain(lost2.iter()) {
        assert!(
            l.starts_with("/last/"),
            "etcd's backup lacks {l}, not only the last write"
        );
    }
    eprintln!(
        "wal-backup {v}: ours {} v3 + {} v2 keys; etcd's backup {} v3 + {} v2 keys, lost {:?} {:?}",
        k2.len(),
        j2.len(),
        k3.len(),
        j3.len(),
        lost3,
        lost2
    );
}

use std::os::unix::fs::PermissionsExt;

/// The db's membership: member IDs, removed IDs, `meta/confState`.
fn db_membership(db: &Path) -> (BTreeSet<String>, BTreeSet<String>, Option<String>) {
    let st = etcd_disk::snapshot::status(&etcd_disk::bolt::BoltDb::open(db).unwrap()).unwrap();
    (
        st.members.iter().map(|m| m.id.clone()).collect(),
        st.members_removed.iter().cloned().collect(),
        st.conf_state,
    )
}

fn detect(c: &Cluster, data_dir: &Path) -> Value {
    let o = c
        .tool("etcd-detect-version")
        .args(["--data-dir", &s(data_dir)])
        .output()
        .unwrap();
    envelope(&o)
}

/// The common v2 restore: a backup with no `.snap` (default --snapshot-count), taken with
/// only --data-dir and --backup-dir (no ETCDCTL_ENDPOINTS: the member listens on 127.0.K.1,
/// not on the default 127.0.0.1:2379, and the data dir records its client URL), restored and
/// started with --force-new-cluster. The source cluster's members must not stay in the db
/// (zombies that etcd 3.6 brings back): after the start the db's `members` bucket holds
/// exactly the new member, and `meta/confState` names it as the only voter.
async fn restore_membership_and_own_endpoint(v: Version) {
    let mut c = Cluster::start(
        v,
        ClusterOpts {
            enable_v2: true,
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let work = tempfile::tempdir().unwrap();
    let d0 = c.members[0].data_dir.clone();
    let url0 = c.members[0].client_url.clone();
    assert!(!url0.contains("127.0.0.1"), "{url0}");
    let mut k = c.client_all().await.unwrap();
    k.put("/m/v3", "1", None).await.unwrap();
    assert!(v2_put(&url0, "/m/v2", "1").await);
    let old: BTreeSet<String> = k
        .member_list()
        .await
        .unwrap()
        .members()
        .iter()
        .map(|m| format!("{:016x}", m.id()))
        .collect();
    assert_eq!(old.len(), 3);
    assert!(files_with(&d0.join("member/snap"), ".snap").is_empty());
    // The source dir: its db and its v2/WAL membership agree.
    let dv = detect(&c, &d0);
    let reasons = dv["facts"]["etcd36"]["reasons"].to_string();
    assert!(!reasons.contains("members bucket"), "{dv}");

    let b = work.path().join("b");
    let out = {
        let mut cmd = c.tool("etcd-wal-backup");
        cmd.env_remove("ETCDCTL_ENDPOINTS").args([
            "backup",
            "--data-dir",
            &s(&d0),
            "--backup-dir",
            &s(&b),
        ]);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    let eb = envelope(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{eb} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(eb["facts"]["endpoints"][0], url0.as_str(), "{eb}");
    let new_id = eb["facts"]["backup"]["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    let new_num = u64::from_str_radix(&new_id, 16).unwrap();
    let want_cs = format!("{{\"voters\":[{new_num}],\"auto_leave\":false}}");
    // The backup's db: no member yet (--force-new-cluster adds the new one), the old ones
    // removed, the new member the only voter.
    let (m, r, cs) = db_membership(&b.join("member/snap/db"));
    assert!(m.is_empty(), "{m:?}");
    assert_eq!(r, old);
    assert_eq!(cs.as_deref(), Some(want_cs.as_str()));

    c.stop_all().await.unwrap();
    for m in &c.members {
        std::fs::rename(m.data_dir.join("member"), m.data_dir.join("member.old")).unwrap();
    }
    let (code, er, err) = run_tool(
        &c,
        &[
            "restore".into(),
            "--backup-dir".into(),
            s(&b),
            "--data-dir".into(),
            s(&d0),
        ],
    );
    assert_eq!(code, 0, "{er} {err}");
    let dv = detect(&c, &d0);
    let reasons = dv["facts"]["etcd36"]["reasons"].to_string();
    assert!(!reasons.contains("members bucket"), "{dv}");

    c.start_member_with(0, &["--force-new-cluster"])
        .await
        .unwrap_or_else(|e| panic!("start: {e:#}\n{}", c.log_tail(0, 30)));
    let mut k = c.client(0).await.unwrap();
    let ml = k.member_list().await.unwrap();
    let listed: BTreeSet<String> = ml
        .members()
        .iter()
        .map(|m| format!("{:016x}", m.id()))
        .collect();
    assert_eq!(listed, BTreeSet::from([new_id.clone()]));
    let got = k.get("/m/v3", None).await.unwrap();
    assert_eq!(got.kvs().len(), 1);
    // A write after the start, then stop and read the db.
    k.put("/m/after", "1", None).await.unwrap();
    drop(k);
    c.stop_member(0).await.unwrap();
    let (m, r, cs) = db_membership(&d0.join("member/snap/db"));
    assert_eq!(
        m,
        BTreeSet::from([new_id.clone()]),
        "db members after the start"
    );
    assert!(r.is_superset(&old), "{r:?}");
    assert_eq!(cs.as_deref(), Some(want_cs.as_str()));
    let log = std::fs::read_to_string(&c.members[0].log).unwrap_or_default();
    assert!(!log.contains("Removing zombie member"), "zombies logged");
    let dv = detect(&c, &d0);
    let reasons = dv["facts"]["etcd36"]["reasons"].to_string();
    assert!(!reasons.contains("members bucket"), "{dv}");
    eprintln!(
        "membership {v}: old {old:?}; new {new_id}; db members after the start {m:?}, removed {r:?}, confState {cs:?}"
    );
}

/// v2 user writes, one with a TTL (so the leader proposes a SYNC every 500 ms), and v3
/// writes: detect-version's `wal_writes` counts the v2 user writes only.
async fn sync_entries_are_not_user_writes(v: Version) {
    let c = Cluster::start(
        v,
        ClusterOpts {
            enable_v2: true,
            members: 1,
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let url = c.members[0].client_url.clone();
    let mut k = c.client_all().await.unwrap();
    assert!(v2_put(&url, "/s/a", "1").await);
    let (st, _) = http(&url, "PUT", "/v2/keys/s/ttl", "value=t&ttl=600").await;
    assert!(st == 200 || st == 201, "{st}");
    let (st, _) = http(&url, "POST", "/v2/keys/s/queue", "value=q").await;
    assert!(st == 200 || st == 201, "{st}");
    let (st, _) = http(&url, "DELETE", "/v2/keys/s/a", "").await;
    assert_eq!(st, 200);
    let user_writes = 4;
    k.put("/s/v3a", "1", None).await.unwrap();
    k.put("/s/v3b", "1", None).await.unwrap();
    // SYNC every 500 ms while the TTL key exists.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d = detect(&c, &c.members[0].data_dir);
    assert_eq!(d["facts"]["v2"]["wal_writes"], user_writes, "{d}");
    let reasons = d["facts"]["etcd36"]["reasons"].to_string();
    assert!(
        reasons.contains(&format!("{user_writes} user write(s)")) && reasons.contains("SYNC"),
        "{reasons}"
    );
    eprintln!("sync {v}: {reasons}");
}

macro_rules! both_versions {
    ($($name:ident),* $(,)?) => {
        etcd_rescue_tests::each_version!($($name),*);
    };
}

both_versions!(
    backup_restore,
    restore_membership_and_own_endpoint,
    sync_entries_are_not_user_writes
);
etcd_rescue_tests::smoke_3_5_16!(backup_restore, restore_membership_and_own_endpoint);
