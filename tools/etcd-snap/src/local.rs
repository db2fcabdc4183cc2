//! `save --data-dir`: on the member's host, take the db from disk instead of the member's stream.
//!
//! Decisions:
//! - **Which member**: the data dir's own (its WAL metadata's node ID), found among the
//!   endpoints by the member ID its status reports. The endpoints default to the client URLs
//!   the data dir last published (as etcd-wal-backup does), after `ETCD_ADVERTISE_CLIENT_URLS`
//!   of `--env-file`.
//! - **Caught up** ([`judge`], pure): etcd holds the data dir's lock; the member answers, is
//!   a voter (not a learner), has a leader, and its applied index reaches the leader's commit
//!   index. The leader's commit index is its status `raft_index` (etcd reports the committed
//!   index there), asked first; the member's `raft_applied_index` is then polled for up to
//!   [`CATCH_UP_WAIT`] (a follower learns a commit with the leader's next message).
//! - **The copy**: [`etcd_common::livedb`], the lock-free copy etcd-wal-backup uses (same
//!   newest bbolt txid before and after, same inode, the copy's own newest meta equal to it;
//!   3 attempts), straight into `FILE.part`; then the sha256 of the image is appended as
//!   the server's stream does (`image ‖ sha256(image)`), so etcdctl/etcdutl `snapshot
//!   status` and `restore` take the file as a streamed one. The file's own sha256 continues
//!   from the image's hasher: one pass over the bytes, on a thread that follows the copy.
//!   The copy holds the member's newest backend commit: etcd commits its backend at most its
//!   batch interval (100 ms by default) after applying an entry.
//! - **Otherwise**: the reason goes into `facts.snapshot.source_reason` and the snapshot is
//!   streamed as without `--data-dir`; with `--require-local` the run fails with exit 5.

use crate::save::Candidate;
use etcd_common::atomic::AtomicFile;
use etcd_common::conn::ConnConfig;
use etcd_common::livedb;
use etcd_common::{ids, Error, Result};
use etcd_disk::datadir;
use sha2::Digest;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the member's applied index may take to reach the leader's commit index.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(1);

/// The member's data dir, as found on disk.
#[derive(Debug, Clone)]
pub struct LocalMember {
    pub data_dir: PathBuf,
    pub db: PathBuf,
    pub node_id: u64,
    /// etcd holds the data dir's lock (it runs on it).
    pub running: bool,
    /// The client URLs the data dir last published (default endpoints).
    pub recorded_urls: Vec<String>,
}

/// Read the data dir: its db, its member ID and whether etcd runs on it. A dir without
/// `member/snap/db` or WAL is bad input (exit 3).
pub fn open(data_dir: &Path, wal_dir: Option<&Path>) -> Result<LocalMember> {
    let ins = datadir::inspect(data_dir, wal_dir)
        .map_err(|e| Error::bad_input(format!("--data-dir: {e}")))?;
    if !ins.is_etcd() || !ins.db_exists || ins.wal_segments.is_empty() {
        return Err(Error::bad_input(format!(
            "--data-dir {}: not an etcd member's data dir (needs {} and WAL segments in {})",
            data_dir.display(),
            ins.layout.db.display(),
            ins.layout.wal_dir.display()
        )));
    }
    let md = etcd_common::localmember::wal_metadata(&ins.layout.wal_dir)?;
    let running = datadir::probe_locks(&ins)?.held();
    let recorded_urls = etcd_common::localmember::recorded_client_urls(&ins, md.node_id);
    Ok(LocalMember {
        data_dir: ins.layout.data_dir.clone(),
        db: ins.layout.db.clone(),
        node_id: md.node_id,
        running,
        recorded_urls,
    })
}

/// Why the local copy may (Ok) or may not (Err, in words) be taken: see the module docs.
/// `leader_commit` is the leader's commit index, None when it could not be asked.
pub fn judge(
    running: bool,
    member: Option<&Candidate>,
    leader_commit: std::result::Result<u64, String>,
) -> std::result::Result<(), String> {
    if !running {
        return Err("etcd does not hold the data dir's lock (not running on it)".into());
    }
    let Some(m) = member else {
        return Err("no endpoint answers as the data dir's member".into());
    };
    if let Some(e) = &m.error {
        return Err(format!("the member does not answer: {e}"));
    }
    if m.is_learner {
        return Err("the member is a learner (it may lag)".into());
    }
    if m.leader == 0 {
        return Err("the member has no leader: cannot tell it is caught up".into());
    }
    let c = leader_commit.map_err(|e| format!("cannot ask the leader its commit index: {e}"))?;
    if m.applied < c {
        return Err(format!(
            "the member lags: applied index {} < the leader's commit index {c}",
            m.applied
        ));
    }
    Ok(())
}

/// The leader's commit index: from the candidates when the leader is one, else through the
/// member's member list.
async fn leader_commit(
    cfg: &ConnConfig,
    member: &Candidate,
    cands: &[Candidate],
) -> std::result::Result<u64, String> {
    if member.leader == member.member_id {
        return Ok(member.raft_index);
    }
    if let Some(l) = cands
        .iter()
        .find(|c| c.error.is_none() && c.member_id == member.leader)
    {
        return Ok(l.raft_index);
    }
    let mut client = cfg
        .connect(std::slice::from_ref(&member.endpoint))
        .await
        .map_err(|e| e.message)?;
    let list = cfg
        .call(
            format!("member list of {}", member.endpoint),
            client.member_list(),
        )
        .await
        .map_err(|e| e.message)?;
    let urls: Vec<String> = list
        .members()
        .iter()
        .find(|m| m.id() == member.leader)
        .map(|m| m.client_urls().to_vec())
        .unwrap_or_default();
    if urls.is_empty() {
        return Err(format!(
            "leader {} has no client URL in the member list",
            ids::hex(member.leader)
        ));
    }
    let mut lc = cfg.connect(&urls).await.map_err(|e| e.message)?;
    let st = cfg
        .call(
            format!("status of the leader ({})", urls.join(",")),
            lc.status(),
        )
        .await
        .map_err(|e| e.message)?;
    Ok(st.raft_index())
}

/// Decide whether the local copy may be taken: Ok(index of the member among `cands`, why in
/// words), or the reason not to.
pub async fn check(
    cfg: &ConnConfig,
    local: &LocalMember,
    cands: &mut [Candidate],
) -> std::result::Result<(usize, String), String> {
    let i = cands
        .iter()
        .position(|c| c.error.is_none() && c.member_id == local.node_id);
    let Some(i) = i else {
        let e = judge(local.running, None, Ok(0)).err().unwrap_or_default();
        return Err(format!("{e} (member {})", ids::hex(local.node_id)));
    };
    let lc = if cands[i].error.is_none() && cands[i].leader != 0 && !cands[i].is_learner {
        leader_commit(cfg, &cands[i], cands).await
    } else {
        Ok(0)
    };
    let deadline = Instant::now() + CATCH_UP_WAIT;
    loop {
        match judge(local.running, Some(&cands[i]), lc.clone()) {
            Ok(()) => {
                return Ok((
                    i,
                    format!(
                        "a caught-up voter: applied index {} >= the leader's commit index {}",
                        cands[i].applied,
                        lc.unwrap_or(0)
                    ),
                ))
            }
            Err(e) if !e.starts_with("the member lags") || Instant::now() >= deadline => {
                return Err(e)
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let again = crate::save::probe(cfg, cands[i].endpoint.clone()).await;
        if again.error.is_none() && again.member_id == local.node_id {
            cands[i] = again;
        }
    }
}

/// A disk copy turned into a snapshot file.
#[derive(Debug)]
pub struct DiskSnapshot {
    pub txid: u64,
    pub attempts: u32,
    /// The image's size (the file is 32 bytes longer).
    pub image_len: u64,
    pub image_sha: [u8; 32],
    pub file_sha: [u8; 32],
}

/// Copy the live db at `db` into `file` (its `.part`) and append the sha256 trailer.
/// Err(moved) when no attempt held still (the `.part` is left for the caller to drop).
pub fn copy_snapshot(
    db: &Path,
    file: &mut AtomicFile,
) -> Result<std::result::Result<DiskSnapshot, String>> {
    let part = file.part_path().to_path_buf();
    let c = match livedb::copy_live_db_into(db, file.file(), &part, |_| {})? {
        Ok(c) => c,
        Err(moved) => {
            return Ok(Err(format!(
                "the db did not hold still in {} copies: {}",
                livedb::ATTEMPTS,
                livedb::describe(&moved)
            )))
        }
    };
    let (txid, attempts, size) = (c.txid, c.attempts, c.size);
    let state = c.hash.wait_state()?;
    let image_sha: [u8; 32] = state.clone().finalize().into();
    let mut fh = state;
    fh.update(image_sha);
    let file_sha: [u8; 32] = fh.finalize().into();
    file.file()
        .write_all_at(&image_sha, size)
        .map_err(|e| Error::io(format!("cannot write {}: {e}", part.display())))?;
    Ok(Ok(DiskSnapshot {
        txid,
        attempts,
        image_len: size,
        image_sha,
        file_sha,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(applied: u64, leader: u64) -> Candidate {
        Candidate {
            endpoint: "e".into(),
            member_id: 1,
            leader,
            applied,
            raft_index: applied,
            ..Default::default()
        }
    }

    #[test]
    fn judge_requires_a_running_caught_up_voter_with_a_leader() {
        assert_eq!(judge(true, Some(&member(10, 2)), Ok(10)), Ok(()));
        assert_eq!(judge(true, Some(&member(11, 2)), Ok(10)), Ok(()));
        let e = judge(true, Some(&member(9, 2)), Ok(10)).unwrap_err();
        assert!(
            e.starts_with("the member lags") && e.contains("9 < "),
            "{e}"
        );
        assert!(judge(false, Some(&member(10, 2)), Ok(10))
            .unwrap_err()
            .contains("not running"));
        assert!(judge(true, None, Ok(10))
            .unwrap_err()
            .contains("no endpoint"));
        assert!(judge(true, Some(&member(10, 0)), Ok(10))
            .unwrap_err()
            .contains("no leader"));
        let mut l = member(10, 2);
        l.is_learner = true;
        assert!(judge(true, Some(&l), Ok(10))
            .unwrap_err()
            .contains("learner"));
        let mut d = member(10, 2);
        d.error = Some("down".into());
        assert!(judge(true, Some(&d), Ok(10)).unwrap_err().contains("down"));
        assert!(judge(true, Some(&member(10, 2)), Err("x".into()))
            .unwrap_err()
            .contains("leader its commit index: x"));
    }

    #[test]
    fn a_copy_becomes_a_snapshot_file_with_the_trailer() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("db");
        let mut e = etcd_disk::bolt::Edits::new();
        for i in 0..2000u32 {
            e.put(b"key", &i.to_be_bytes(), &[7u8; 200]).unwrap();
        }
        etcd_disk::bolt::create(4096, &e, &src).unwrap();
        let dest = d.path().join("s.db");
        let mut f = AtomicFile::create(&dest, 0o600).unwrap();
        let s = copy_snapshot(&src, &mut f).unwrap().unwrap();
        f.commit().unwrap();
        let bytes = std::fs::read(&dest).unwrap();
        let img = std::fs::read(&src).unwrap();
        assert_eq!(&bytes[..img.len()], &img[..]);
        assert_eq!(bytes.len() as u64, s.image_len + 32);
        assert_eq!(bytes.len() % 512, 32);
        let want: [u8; 32] = sha2::Sha256::digest(&img).into();
        assert_eq!(&bytes[img.len()..], &want[..]);
        assert_eq!(s.image_sha, want);
        let fs: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        assert_eq!(s.file_sha, fs);
        assert_eq!(s.attempts, 1);
    }
}
