//! `restore`: put a backup in place as `DATA_DIR/member` (step 3 of the v2 restore procedure).
//!
//! Every file is checked against the manifest's sha256 (while it is copied or unpacked, one
//! read) before anything appears under the data dir. The member dir is built as
//! `DATA_DIR/member.part` (dirs 0700, WAL and db 0600, `.snap` 0644 as etcd writes them), every
//! file and dir fsynced, and renamed to `DATA_DIR/member` (under the commit lock of
//! `etcd_common::atomic`: a signal stops it before or after, never during). An existing
//! `member` dir (or `.wal` files in a separate WAL dir) is refused: purge (move aside) first.

use crate::manifest::{self, Manifest};
use crate::{mkdir_0700, DirGuard};
use etcd_common::envelope::{keys, Facts};
use etcd_common::envfile::EnvFile;
use etcd_common::{Error, Outcome, Result};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Flags of `restore`.
#[derive(clap::Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The backup: a directory or a .tar.gz written by `backup` (default: facts.backup.path)
    #[arg(long, value_name = "DIR|FILE")]
    pub backup_dir: Option<PathBuf>,
    /// The data dir to put it in (default: ETCD_DATA_DIR of --env-file)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Put the WAL in this separate dir (etcd's --wal-dir; default DATA_DIR/member/wal)
    #[arg(long, value_name = "DIR")]
    pub wal_dir: Option<PathBuf>,
    /// etcd's settings file: ETCD_DATA_DIR, ETCD_WAL_DIR, ETCD_NAME
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The member name etcd will be started with (for the next-step facts; default ETCD_NAME)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

fn is_archive(p: &Path) -> bool {
    p.is_file()
}

fn has_wal_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".wal"))
        })
        .unwrap_or(false)
}

/// Copy `root/rel` (a file of the backup, never through a symlink) to `dst` with `mode`,
/// fsynced, checking its size and sha256 against the manifest entry `f` on the way (one read).
fn copy_file(root: &Path, f: &manifest::FileEntry, dst: &Path, mode: u32) -> Result<()> {
    let src = root.join(&f.path);
    let mut i = manifest::open_in(root, &f.path)?;
    let mut o = etcd_common::atomic::create_new(dst, mode)?;
    let (sha, n) = manifest::copy_hashing(&mut i, &mut o, &src, dst)?;
    manifest::check_one(&src, f, n, &sha)?;
    o.sync_all()
        .map_err(|e| Error::io(format!("cannot write {}: {e}", dst.display())))
}

/// Make the db's membership match what the member dir starts with (see
/// [`crate::backup::membership_edits`]): a backup written by this version already holds it (the
/// patch rewrites the same content); an older one still holds the source cluster's members,
/// which etcd 3.5.16 keeps, 3.5.30 removes as zombies and 3.6 brings back.
fn trim_membership(member: &Path, member_id: &str) -> Result<Option<crate::backup::DbMembership>> {
    let db_path = member.join("snap/db");
    if !db_path.is_file() {
        return Ok(None);
    }
    let node_id = u64::from_str_radix(member_id, 16).map_err(|_| {
        Error::bad_input(format!("manifest: member_id {member_id:?} is not a hex ID"))
    })?;
    let snap_dir = member.join("snap");
    let snap = match etcd_disk::snap::list_snaps(&snap_dir)?.into_iter().next() {
        Some(info) => {
            let s = etcd_disk::snap::read_snap(&info.path)?;
            Some((info, s))
        }
        None => None,
    };
    let src = etcd_disk::bolt::BoltDb::open(&db_path)?;
    let (old, old_removed) = etcd_disk::v2scan::db_membership(&src)?;
    let (edits, dm) = crate::backup::membership_edits(&old, &old_removed, snap.as_ref(), node_id)?;
    let mode = manifest::mode_for("member/snap/db");
    etcd_disk::bolt::patch(&src, &edits, &db_path)?;
    std::fs::set_permissions(&db_path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("cannot chmod {}: {e}", db_path.display())))?;
    Ok(Some(dm))
}

pub fn run(a: RestoreArgs, upstream: &Facts) -> Result<Outcome> {
    let env = match &a.env_file {
        Some(p) => Some(EnvFile::load(p)?),
        None => None,
    };
    let src = a
        .backup_dir
        .clone()
        .or_else(|| {
            upstream
                .get("backup")
                .and_then(|b| b.get("path"))
                .and_then(Value::as_str)
                .map(PathBuf::from)
        })
        .ok_or_else(|| Error::usage("--backup-dir is required (or facts.backup.path on stdin)"))?;
    let data_dir = a
        .data_dir
        .clone()
        .or_else(|| {
            env.as_ref()
                .and_then(|e| e.get("ETCD_DATA_DIR"))
                .map(PathBuf::from)
        })
        .ok_or_else(|| Error::usage("--data-dir (or --env-file with ETCD_DATA_DIR) is required"))?;
    let wal_dir = a.wal_dir.clone().or_else(|| {
        env.as_ref()
            .and_then(|e| e.get("ETCD_WAL_DIR"))
            .map(PathBuf::from)
    });
    let name = a.name.clone().or_else(|| {
        env.as_ref()
            .and_then(|e| e.get("ETCD_NAME"))
            .map(str::to_string)
    });
    if !src.exists() {
        return Err(Error::bad_input(format!(
            "{}: no such backup",
            src.display()
        )));
    }
    // One owner per target: the data dir is claimed (DATA_DIR.lock, shared with etcd-snap
    // restore) before anything is looked at or written; a second restore exits 7. What this
    // run created (the data dir, its parents) is removed again when it fails.
    let mut created =
        etcd_common::atomic::mkdir_0700_created(&etcd_common::atomic::parent_of(&data_dir))?;
    let r = etcd_common::atomic::claim(&data_dir).and_then(|claim| {
        let r = put_in_place(&claim, &src, wal_dir.as_deref(), name, &mut created);
        drop(claim);
        r
    });
    if r.is_err() {
        etcd_common::atomic::remove_created(&created);
    }
    r
}

fn put_in_place(
    claim: &etcd_common::atomic::Claim,
    src: &Path,
    wal_dir: Option<&Path>,
    name: Option<String>,
    created: &mut Vec<PathBuf>,
) -> Result<Outcome> {
    let src = src.to_path_buf();
    let data_dir = claim.target();
    let ins = etcd_disk::datadir::inspect(data_dir, wal_dir)
        .map_err(|e| Error::bad_input(e.to_string()))?;
    let layout = ins.layout.clone();
    // Our own partial builds from an interrupted run (even a SIGKILL, which no handler sees):
    // they hold copies of the backup's files only, the backup itself is untouched, so a rerun
    // removes them and starts over; also when `member` is complete already (a run killed
    // after its rename into place, before it removed its staging dir), then refuses.
    let part = etcd_common::atomic::part_path(&layout.member_dir);
    let stage_path = layout.data_dir.join(".etcd-wal-backup.restore.part");
    // Holding the claim, they are a dead run's ([`Claim::clear_part`]).
    let mut cleaned = Vec::new();
    for leftover in [&part, &stage_path] {
        if let Some(p) = claim.clear_part(leftover)? {
            cleaned.push(format!(
                "removed {}, left by an interrupted restore",
                p.display()
            ));
        }
    }

    if ins.member_exists || std::fs::symlink_metadata(&layout.member_dir).is_ok() {
        return Err(Error::refused(format!(
            "{} exists: purge (move aside) the member dir first",
            layout.member_dir.display()
        )));
    }
    if layout.separate_wal && has_wal_files(&layout.wal_dir) {
        return Err(Error::refused(format!(
            "{} holds .wal files: purge (move aside) the WAL dir first",
            layout.wal_dir.display()
        )));
    }
    if layout.separate_wal && layout.wal_dir.exists() {
        let empty = std::fs::read_dir(&layout.wal_dir)
            .map(|mut rd| rd.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(Error::refused(format!(
                "{} is not empty",
                layout.wal_dir.display()
            )));
        }
    }
    created.extend(etcd_common::atomic::mkdir_0700_created(&layout.data_dir)?);
    // Stage: the backup's files under a temporary dir inside the data dir (same filesystem).
    // A dir backup is read once: every file is hashed while it is copied.
    let stage = DirGuard::create(&stage_path)?;
    let (root, m): (PathBuf, Manifest) = if is_archive(&src) {
        let hashed = manifest::unpack(&src, stage.path())?;
        let m = manifest::read(stage.path())?;
        manifest::check_listing(stage.path(), &m)?;
        manifest::check_hashes(stage.path(), &m, &hashed)?;
        (stage.path().to_path_buf(), m)
    } else {
        let m = manifest::read(&src)?;
        manifest::check_listing(&src, &m)?;
        (src.clone(), m)
    };

    // Build member.part with etcd's modes.
    let member = DirGuard::create(&part)?;
    for f in &m.files {
        let rel = Path::new(&f.path)
            .strip_prefix("member")
            .map_err(|_| Error::bad_input(format!("unexpected file {}", f.path)))?;
        let dst = member.path().join(rel);
        if let Some(parent) = dst.parent() {
            mkdir_0700(parent)?;
        }
        let from = root.join(&f.path);
        if root == stage.path() {
            std::fs::rename(&from, &dst).map_err(|e| {
                Error::io(format!(
                    "cannot move {} to {}: {e}",
                    from.display(),
                    dst.display()
                ))
            })?;
            std::fs::set_permissions(
                &dst,
                std::fs::Permissions::from_mode(manifest::mode_for(&f.path)),
            )
            .map_err(|e| Error::io(format!("cannot chmod {}: {e}", dst.display())))?;
        } else {
            copy_file(&root, f, &dst, manifest::mode_for(&f.path))?;
        }
    }
    let membership = trim_membership(member.path(), &m.member_id)?;
    for sub in ["snap", "wal"] {
        let d = member.path().join(sub);
        mkdir_0700(&d)?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("cannot chmod {}: {e}", d.display())))?;
        etcd_common::atomic::fsync_dir(&d)
            .map_err(|e| Error::io(format!("cannot fsync {}: {e}", d.display())))?;
    }
    // A separate WAL dir gets the segments; member/wal stays as etcd leaves it (absent).
    let mut wal_guard = None;
    if layout.separate_wal {
        let from = member.path().join("wal");
        if layout.wal_dir.exists() {
            std::fs::remove_dir(&layout.wal_dir).map_err(|e| {
                Error::io(format!(
                    "cannot replace empty {}: {e}",
                    layout.wal_dir.display()
                ))
            })?;
        }
        if let Some(p) = layout.wal_dir.parent() {
            created.extend(etcd_common::atomic::mkdir_0700_created(p)?);
        }
        etcd_common::atomic::rename_noreplace(&from, &layout.wal_dir)?;
        // Ours until the member dir is in place: removed again if this run fails or is
        // interrupted before that.
        wal_guard = Some(DirGuard::adopt(&layout.wal_dir));
        etcd_common::atomic::fsync_dir(&etcd_common::atomic::parent_of(&layout.wal_dir))
            .map_err(|e| Error::io(format!("cannot fsync: {e}")))?;
    }
    member.commit(&layout.member_dir)?;
    if let Some(g) = wal_guard {
        g.keep();
    }
    std::fs::set_permissions(&layout.data_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(format!("cannot chmod {}: {e}", layout.data_dir.display())))?;
    stage.remove();

    let mut flags = vec![
        "--force-new-cluster".to_string(),
        format!("--data-dir={}", layout.data_dir.display()),
    ];
    if let Some(n) = &name {
        flags.insert(1, format!("--name={n}"));
    }
    if layout.separate_wal {
        flags.push(format!("--wal-dir={}", layout.wal_dir.display()));
    }
    let mut facts = Facts::new();
    facts.insert(keys::DATA_DIR.into(), json!(layout.data_dir));
    facts.insert(keys::MEMBER_ID.into(), json!(m.member_id));
    facts.insert(keys::CLUSTER_ID.into(), json!(m.cluster_id));
    facts.insert(
        "restore".into(),
        json!({
            "from": src,
            "data_dir": layout.data_dir,
            "member_dir": layout.member_dir,
            "wal_dir": layout.wal_dir,
            "name": name,
            "member_id": m.member_id,
            "cluster_id": m.cluster_id,
            "complete_to_index": m.complete_to_index,
            "complete_to_revision": m.complete_to_revision,
            "with_v3": m.with_v3,
            "db_membership": membership,
        }),
    );
    facts.insert(
        "next".into(),
        json!({
            "action": "start etcd on this host alone with --force-new-cluster (every other member stopped and purged), then fix its peer URL (it comes up as http://localhost:2380) before adding members",
            "force_new_cluster": true,
            "name": name,
            "data_dir": layout.data_dir,
            "flags": flags,
        }),
    );
    let summary = format!(
        "backup {} put in place as {}: start etcd with {}",
        src.display(),
        layout.member_dir.display(),
        flags.join(" ")
    );
    Ok(Outcome {
        changed: true,
        facts,
        data: json!({"manifest": m}),
        warnings: cleaned,
        summary,
        failure: None,
    })
}
