//! etcd-snap: the v3 method, native. `save` streams a snapshot from the best member and checks
//! the server's sha256 trailer while it streams; `status` and `verify` read a snapshot file
//! (`.db`, `.gz` or a raw `member/snap/db`) offline; `restore` builds the data dir etcd 3.5's
//! `etcdutl snapshot restore` builds (which etcd 3.4 runs too) in a sibling directory and renames
//! it into place.
//!
//! Layout: [`Args`] (clap) and the dispatch here; [`source`] opens a snapshot file (plain or
//! gzip) for reading; [`save`], [`inspect`] (status, verify) and [`restore`] hold the
//! subcommands, each with a pure planning part that is unit-tested without a server.

use clap::{Parser, Subcommand};
use etcd_common::man::ManExtra;
use etcd_common::runner::CommonArgs;
use etcd_common::{Ctx, Error, Outcome, Result, Tool};

pub mod inspect;
pub mod local;
pub mod restore;
pub mod save;
pub mod source;

/// Save, inspect and restore etcd v3 snapshots natively: sha256 checked while saving, the same
/// status as etcdctl, a bbolt consistency check, and a crash-safe restore for etcd 3.4 and 3.5.
#[derive(Parser, Debug, Clone)]
#[command(name = "etcd-snap", version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Cmd {
    /// Stream a snapshot from the leader (or the most advanced voter) to FILE, checking its
    /// sha256 trailer on the way, or on a member's host copy it from its data dir
    /// (--data-dir); FILE.part until complete
    Save(save::SaveArgs),
    /// What `etcdctl snapshot status -w json` prints for FILE, plus what operators need
    Status(inspect::StatusArgs),
    /// Check FILE: sha256 trailer and bbolt consistency; exit 3 naming the offset if corrupt
    Verify(inspect::VerifyArgs),
    /// Build a member's data dir from a snapshot, as `etcdutl snapshot restore` does
    Restore(restore::RestoreArgs),
}

impl Tool for Args {
    const NAME: &'static str = "etcd-snap";

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    async fn run(self, ctx: Ctx) -> Result<Outcome> {
        match self.cmd {
            Cmd::Save(a) => save::run(a, &ctx).await,
            Cmd::Status(a) => run_blocking(move || inspect::status(a, &ctx)).await,
            Cmd::Verify(a) => run_blocking(move || inspect::verify(a, &ctx)).await,
            // A writer: on a signal the runner waits for it to stop before removing its files.
            Cmd::Restore(a) => {
                etcd_common::runner::blocking("restore", move || restore::run(a, &ctx)).await
            }
        }
    }
}

/// Run file-bound work off the async workers (signals are still handled by the runner).
async fn run_blocking<F>(f: F) -> Result<Outcome>
where
    F: FnOnce() -> Result<Outcome> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Error::internal(format!("worker failed: {e}"))),
    }
}

/// Man page sections beyond clap's.
pub fn man() -> ManExtra {
    ManExtra {
        connects: true,
        input: "save: the endpoints from --endpoints, facts.endpoints of an upstream envelope, ETCDCTL_ENDPOINTS, in that order \
(with --data-dir/--env-file then ETCD_ADVERTISE_CLIENT_URLS of --env-file, then the client URLs the data dir last published). \
save --data-dir DIR (or ETCD_DATA_DIR and ETCD_WAL_DIR of --env-file), on the member's host: the member is the data dir's (its WAL's node ID), \
found among the endpoints by its status; the db is copied from DIR/member/snap/db only when etcd runs on DIR and the member is a voter with a leader \
whose applied index reaches the leader's commit index (status), and only a copy during which no bbolt commit landed and the file was not replaced \
(3 attempts; a defragmentation replaces it); otherwise the snapshot is streamed, or with --require-local the run exits 5. \
status, verify and restore: FILE, or facts.snapshot.path of an upstream envelope (so `etcd-snap save F | etcd-snap verify` works). \
FILE may be a snapshot file (bbolt image followed by its sha256), the same gzip-compressed (detected by its magic bytes), \
or a raw member/snap/db copied from a data dir (no sha256: restore needs --skip-hash-check). \
restore reads ETCD_NAME, ETCD_INITIAL_CLUSTER, ETCD_INITIAL_CLUSTER_TOKEN, ETCD_INITIAL_ADVERTISE_PEER_URLS, ETCD_DATA_DIR \
and ETCD_WAL_DIR from --env-file; explicit flags win.",
        output: "save: facts.snapshot {path, size_bytes, sha256 (of the file), db_sha256 (of the bbolt image: the server's trailer), \
revision (also with --compress: read while streaming), compressed, endpoint, source (disk or stream), source_reason (why; null without --data-dir), \
txid, copy_attempts and data_dir (disk copies)}, facts.etcd_version, facts.cluster_id, facts.member_id (the member it was taken from), facts.taken_at; \
data.chosen {endpoint, why}, data.candidates, data.v2 {api_served, top_level_keys, top_level_dirs, examples, error} (the member's v2 API, asked while streaming); \
a warning (envelope warnings and stderr) when the v2 store holds data, which a v3 snapshot does not carry. \
status: data.etcdctl {hash, revision, totalKey, totalSize} exactly as `etcdctl snapshot status -w json`, plus user_keys, key_revisions, \
tombstones, members, members_removed, cluster_version, consistent_index, term, compacted_revision, has_sha256_trailer; facts.snapshot gains \
revision, size_bytes, has_sha256_trailer. \
verify: data.trailer (ok, missing, mismatch), data.db_sha256, data.bbolt {ok, problems}; exit 3 with the file and offset when corrupt. \
restore: facts.data_dir, facts.wal_dir, facts.member_id, facts.cluster_id, facts.members [{id, name, peer_urls}], facts.revision \
(of the snapshot), facts.bumped_to (with --bump-revision).",
        environment: &[],
        examples: r#"Save from the leader of a cluster, then verify what the pipeline saved:
  etcd-snap save --endpoints 10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379 /backup/etcd.db | etcd-snap verify

Save compressed, with a stall timeout, and print the sha256 with jq:
  etcd-snap save --compress --stall-timeout 60s /backup/etcd.db | jq -r .facts.snapshot.sha256

On a member's host, copy the db from disk (a caught-up voter only; else fail with exit 5):
  etcd-snap save --env-file /etc/etcd.env --require-local /backup/etcd.db | jq .facts.snapshot.source

Compare with etcdctl's status:
  etcd-snap status /backup/etcd.db.gz | jq -c .data.etcdctl

Restore one member from its settings file, never going back in revision for Kubernetes watchers:
  etcd-snap restore --env-file /etc/etcd.env --bump-revision 1000000000 --mark-compacted /backup/etcd.db

As an Ansible task:
  - name: restore etcd member
    ansible.builtin.command: etcd-snap restore --env-file /etc/etcd.env /backup/etcd.db
    register: r
    changed_when: (r.stdout | from_json).changed"#,
        see_also: &["etcd-health", "etcd-purge", "etcdctl", "etcdutl"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn args_are_well_formed() {
        Args::command().debug_assert();
    }
}
