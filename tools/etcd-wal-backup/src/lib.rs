//! etcd-wal-backup: the v2 backup method, online, and putting a backup in place.
//!
//! - `backup`: what `etcdctl backup` does, without stopping etcd and without losing the last
//!   acknowledged write; v3 data carried by default. See [`backup`] for how the WAL and db
//!   are kept consistent.
//! - `restore`: put a backup (dir or `.tar.gz`) in place as `DATA_DIR/member` with etcd's
//!   modes, after checking every file against the manifest; refuses when a member dir exists.

pub mod backup;
pub mod manifest;
pub mod restore;

use clap::{Parser, Subcommand};
use etcd_common::man::ManExtra;
use etcd_common::runner::CommonArgs;
use etcd_common::{duration, Ctx, Error, Outcome, Result, Tool};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    duration::parse(s)
}

/// The v2 backup method: back up a running etcd member's snap and WAL (with its v3 db, and
/// every acknowledged write), and put such a backup in place as a data dir's member dir.
#[derive(Parser, Debug, Clone)]
#[command(name = "etcd-wal-backup", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
    /// Global (`-q`, `-v`, `--pretty`, `--input`): before or after the subcommand.
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Cmd {
    /// Back up a member's data dir while etcd runs: the newest usable .snap, one rewritten WAL
    /// complete up to the cluster's committed index (membership entries neutralised, new node
    /// and cluster IDs), and the v3 db (a lock-free consistent copy, or the member's snapshot
    /// stream); manifest with sha256
    Backup(backup::BackupArgs),
    /// Put a backup (dir or .tar.gz) in place as DATA_DIR/member with etcd's modes; refuses
    /// (exit 7) when a member dir exists. Start etcd next with --force-new-cluster
    Restore(restore::RestoreArgs),
}

pub(crate) fn mkdir_0700(p: &Path) -> Result<()> {
    etcd_common::atomic::mkdir_0700(p)
}

/// A temporary directory we create (mode 0700): removed on drop or on a signal unless
/// committed (renamed to its final name).
pub struct DirGuard {
    path: PathBuf,
    done: bool,
}

impl DirGuard {
    /// Create `path` (which must not exist).
    pub fn create(path: &Path) -> Result<DirGuard> {
        etcd_common::atomic::check_cancelled()?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(Error::bad_input(format!(
                    "{}: no such directory",
                    parent.display()
                )));
            }
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|e| Error::io(format!("cannot create {}: {e}", path.display())))?;
        etcd_common::atomic::track_partial(path);
        Ok(DirGuard {
            path: path.to_path_buf(),
            done: false,
        })
    }

    /// Take charge of `path`, which this run just made: removed on drop or on a signal unless
    /// [`keep`](Self::keep) is called.
    pub fn adopt(path: &Path) -> DirGuard {
        etcd_common::atomic::track_partial(path);
        DirGuard {
            path: path.to_path_buf(),
            done: false,
        }
    }

    /// Keep it (it is complete and in place).
    pub fn keep(mut self) {
        etcd_common::atomic::untrack_partial(&self.path);
        self.done = true;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// fsync and rename into place, fsync the parent.
    pub fn commit(mut self, dst: &Path) -> Result<()> {
        etcd_common::atomic::fsync_dir(&self.path)
            .map_err(|e| Error::io(format!("cannot fsync {}: {e}", self.path.display())))?;
        // Under the commit lock: renamed (and no longer a partial) before a signal, or not at
        // all.
        etcd_common::atomic::rename_noreplace_untrack(&self.path, dst, &self.path)?;
        self.done = true;
        etcd_common::atomic::fsync_dir(&etcd_common::atomic::parent_of(dst))
            .map_err(|e| Error::io(format!("cannot fsync the dir of {}: {e}", dst.display())))
    }

    /// Remove it now (our own temporary dir).
    pub fn remove(mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        etcd_common::atomic::untrack_partial(&self.path);
        self.done = true;
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.path);
            etcd_common::atomic::untrack_partial(&self.path);
        }
    }
}

impl Tool for Args {
    const NAME: &'static str = "etcd-wal-backup";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
    async fn run(self, ctx: Ctx) -> Result<Outcome> {
        match self.cmd {
            Cmd::Backup(a) => backup::run(a, &ctx.upstream).await,
            Cmd::Restore(a) => {
                let up = ctx.upstream.clone();
                // A writer: on a signal the runner waits for it to stop at a checkpoint (and
                // remove what it made) before anything else is removed.
                etcd_common::runner::blocking("restore", move || restore::run(a, &up)).await
            }
        }
    }
}

pub fn man() -> ManExtra {
    ManExtra {
        connects: true,
        input: "backup: the member's data dir (--data-dir, --env-file's ETCD_DATA_DIR, or facts.data_dir from stdin) and, \
while etcd runs, the member's client URL (--endpoints, facts.endpoints, ETCDCTL_ENDPOINTS, ETCD_ADVERTISE_CLIENT_URLS, then \
the client URLs the data dir records for its own member: its last attributes publish in the WAL, else its attributes in the \
newest .snap, else the db's members bucket; 127.0.0.1:2379 last; the endpoint whose member ID is the data dir's is used). restore: a backup dir or .tar.gz (--backup-dir, or facts.backup.path) and \
the target data dir (--data-dir or ETCD_DATA_DIR).",
        output: "backup: facts.backup {path, archive, method, with_v3, online, complete_to_index, complete_to_revision, \
committed_index, consistent_index, snapshot_index, entries, v2_writes, member_id, cluster_id, size_bytes, files \
[{path, size_bytes, sha256}], db_source {from: disk|stream, txid, attempts}, db_membership {members, removed, \
conf_state_voters}, start_with}, facts.backup_method (v2), facts.data_dir, facts.member_id, facts.cluster_id \
(of the source), facts.etcd_version. data.manifest is manifest.json. restore: facts.restore {data_dir, member_dir, wal_dir, \
member_id, cluster_id, name, complete_to_index, complete_to_revision, db_membership}, facts.next {action, flags}, facts.data_dir.

How the backup stays consistent while etcd runs: a linearizable read through the member, then its commit index C (every \
write acknowledged before the backup began is at or below C); the db, with consistent index CI, copied from disk without \
a lock (etcd's lock is advisory; bbolt never overwrites a page of its newest committed tree before the next commit is \
complete, so a copy during which the newest meta's txid, the file's inode and the copy's own meta stay the same holds \
exactly that commit; otherwise it is taken again, and after 3 tries from the member's snapshot stream, sha256 checked; \
--db-source stream always streams); the WAL cut at X = max(C, CI), waiting until the member's WAL holds X; entries kept in place (neutralised ones \
become empty entries with the same index), HardState commit = X, so that etcd replays (CI, X] into the db at startup and \
--force-new-cluster keeps every entry up to X. The .snap carried is the newest one at or below CI.

The db's membership is made to match what the backup starts with (patched copy-on-write): its members bucket holds the \
carried .snap's v2 members (none without a .snap, the common case: every membership entry of the WAL is neutralised, and \
--force-new-cluster adds the new member), members_removed the source's other members, and meta/confState the new member \
as the only voter, as etcd writes after the forced start. Left as they were, the source cluster's members stay in the db: \
etcd 3.5.16 keeps them, 3.5.30 removes them as zombies at the first start, 3.6 (membership from the db) brings them back. \
restore makes the same edits on the db it puts in place, so a backup written before this still starts without zombies.",
        environment: &[],
        examples: r#"Back up this host's member while etcd runs, as one archive:
  etcd-wal-backup backup --env-file /etc/etcd.env --backup-dir /backup/etcd-$(date +%F) --archive

Detect the method first, then back up:
  etcd-detect-version --env-file /etc/etcd.env --require v2 -q && \
      etcd-wal-backup backup --env-file /etc/etcd.env --backup-dir /backup/etcd

Put a backup in place on the first host (every member stopped and purged), then start it:
  etcd-wal-backup restore --backup-dir /backup/etcd.tar.gz --env-file /etc/etcd.env
  etcd --force-new-cluster --name "$ETCD_NAME" --data-dir /var/lib/etcd ...

As an Ansible task:
  - name: back up etcd (v2 method)
    ansible.builtin.command: >
      etcd-wal-backup backup --env-file /etc/etcd.env --backup-dir /backup/etcd-{{ ansible_date_time.date }}
      --archive
    args:
      creates: /backup/etcd-{{ ansible_date_time.date }}.tar.gz"#,
        see_also: &["etcd-detect-version", "etcd-purge", "etcd-member-fix", "etcdctl"],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition() {
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "x",
            "backup",
            "--data-dir",
            "/d",
            "--backup-dir",
            "/b",
            "--archive",
        ])
        .unwrap();
        match a.cmd {
            Cmd::Backup(b) => {
                assert!(b.archive && !b.without_v3);
                assert_eq!(b.wal_wait, Duration::from_secs(10));
            }
            Cmd::Restore(_) => panic!(),
        }
        assert!(Args::try_parse_from(["x", "backup", "--data-dir", "/d"]).is_err());
        assert!(Args::try_parse_from(["x", "restore", "--data-dir", "/d"]).is_ok());
    }

    #[test]
    fn dir_guard_removes_unless_committed() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("b.part");
        {
            let g = DirGuard::create(&p).unwrap();
            std::fs::write(g.path().join("x"), b"1").unwrap();
        }
        assert!(!p.exists());
        let g = DirGuard::create(&p).unwrap();
        g.commit(&t.path().join("b")).unwrap();
        assert!(t.path().join("b").is_dir() && !p.exists());
        assert!(DirGuard::create(&t.path().join("no/such")).is_err());
    }
}
