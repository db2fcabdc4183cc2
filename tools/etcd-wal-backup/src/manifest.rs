//! The backup's `manifest.json` (what it is, up to which index and revision it is complete,
//! the sha256 of every file) and the `.tar.gz` form.
//!
//! Archives use the `tar` crate (the one cargo itself uses to pack and unpack crates: well
//! kept, streaming, path-traversal checks on unpack) over `flate2`.

use crate::backup::Neutralised;
use etcd_common::atomic::{self, AtomicFile};
use etcd_common::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "etcd-wal-backup/1";
pub const NAME: &str = "manifest.json";

/// One file of the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the backup dir (`member/wal/…`).
    pub path: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// Octal mode etcd uses for it (`0600`, `0644`).
    pub mode: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created_at: String,
    pub tool_version: String,
    pub source_data_dir: String,
    pub source_member_id: String,
    pub source_cluster_id: String,
    pub source_endpoint: Option<String>,
    pub source_etcd_version: Option<String>,
    /// Taken while etcd ran (commit index learned from the member).
    pub online: bool,
    /// New IDs in the WAL metadata.
    pub member_id: String,
    pub cluster_id: String,
    pub with_v3: bool,
    /// Every entry up to this raft index is in the backup.
    pub complete_to_index: u64,
    /// Every v3 write up to this revision is in the backup.
    pub complete_to_revision: Option<i64>,
    pub committed_index: Option<u64>,
    pub consistent_index: Option<u64>,
    pub snapshot_index: u64,
    pub snapshot_term: u64,
    pub entries: u64,
    pub neutralised: Neutralised,
    pub files: Vec<FileEntry>,
}

/// RFC 3339 UTC of now (no date crate needed).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Open `root/rel`, a file of a backup, trusting nothing: every directory on the way must be a
/// real directory (not a symlink) and the file a regular file opened with `O_NOFOLLOW`.
pub fn open_in(root: &Path, rel: &str) -> Result<std::fs::File> {
    let mut d = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for comp in parts.iter().take(parts.len().saturating_sub(1)) {
        d.push(comp);
        match std::fs::symlink_metadata(&d) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                return Err(Error::bad_input(format!(
                    "{}: {}, not a directory (refused)",
                    d.display(),
                    atomic::describe_type(&m)
                )))
            }
            Err(e) => return Err(Error::bad_input(format!("{}: {e}", d.display()))),
        }
    }
    atomic::open_regular(&root.join(rel))
}

/// sha256 and size of a file, streamed (never through a symlink: see [`open_in`]).
pub fn sha256_file(p: &Path) -> Result<(String, u64)> {
    let f = atomic::open_regular(p)?;
    sha256_of(f, p)
}

fn sha256_of(mut f: std::fs::File, p: &Path) -> Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f
            .read(&mut buf)
            .map_err(|e| Error::io(format!("cannot read {}: {e}", p.display())))?;
        if k == 0 {
            break;
        }
        h.update(buf.get(..k).unwrap_or(&[]));
        n += k as u64;
    }
    Ok((etcd_disk::snapshot::hex(&h.finalize()), n))
}

/// The files of a backup dir (relative paths under `member/`), sorted.
/// Anything but a regular file or a real directory (a symlink, FIFO, socket, device) is refused.
pub fn list_files(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let top = root.join("member");
    if let Ok(m) = std::fs::symlink_metadata(&top) {
        if !m.is_dir() {
            return Err(Error::bad_input(format!(
                "{}: {}, not a directory (refused)",
                top.display(),
                atomic::describe_type(&m)
            )));
        }
    }
    for e in walkdir::WalkDir::new(&top)
        .follow_links(false)
        .follow_root_links(false)
        .sort_by_file_name()
    {
        let e = e.map_err(|e| Error::io(format!("cannot list {}: {e}", root.display())))?;
        let t = e.file_type();
        if !t.is_file() && !t.is_dir() {
            let what = e
                .metadata()
                .map(|m| atomic::describe_type(&m))
                .unwrap_or("a special file");
            return Err(Error::bad_input(format!(
                "{}: {what}, not a regular file (refused: a backup holds only regular files)",
                e.path().display()
            )));
        }
        if t.is_file() {
            let rel = e
                .path()
                .strip_prefix(root)
                .map_err(|_| Error::internal("path outside the backup"))?;
            out.push(rel.display().to_string());
        }
    }
    Ok(out)
}

/// The mode etcd gives a backup file.
pub fn mode_for(rel: &str) -> u32 {
    if rel.ends_with(".snap") {
        0o644
    } else {
        0o600
    }
}

/// Whether a relative path may appear in a backup.
pub fn allowed_path(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let ok_name =
        |n: &str| !n.is_empty() && n != "." && n != ".." && n.bytes().all(|b| b.is_ascii_graphic());
    match parts.as_slice() {
        [m] => *m == NAME,
        ["member", "snap", n] => ok_name(n) && (*n == "db" || n.ends_with(".snap")),
        ["member", "wal", n] => ok_name(n) && n.ends_with(".wal"),
        _ => false,
    }
}

/// (path, size, sha256) of every file under `root/member` but those in `skip`.
pub fn hash_files(root: &Path, skip: &[&str]) -> Result<Vec<(String, u64, String)>> {
    let mut out = Vec::new();
    for rel in list_files(root)? {
        if skip.contains(&rel.as_str()) {
            continue;
        }
        let (sha, size) = sha256_file(&root.join(&rel))?;
        out.push((rel, size, sha));
    }
    Ok(out)
}

/// Fill `m.files` from `hashed` ((path, size, sha256) of every file under `root/member`, from
/// [`hash_files`] or computed while writing) in the order of [`list_files`], and write
/// `root/manifest.json`. A file present but not in `hashed` is an internal error: the manifest
/// must cover every file.
pub fn write(root: &Path, mut m: Manifest, hashed: &[(String, u64, String)]) -> Result<Manifest> {
    m.files.clear();
    for rel in list_files(root)? {
        let (size, sha) = hashed
            .iter()
            .find(|k| k.0 == rel)
            .map(|(_, n, h)| (*n, h.clone()))
            .ok_or_else(|| Error::internal(format!("{rel}: in the backup but not hashed")))?;
        m.files.push(FileEntry {
            mode: format!("{:04o}", mode_for(&rel)),
            path: rel,
            size_bytes: size,
            sha256: sha,
        });
    }
    let mut text =
        serde_json::to_string_pretty(&m).map_err(|e| Error::internal(format!("manifest: {e}")))?;
    text.push('\n');
    atomic::write_file(&root.join(NAME), text.as_bytes(), 0o600)?;
    Ok(m)
}

/// Read `manifest.json` of a backup dir.
pub fn read(root: &Path) -> Result<Manifest> {
    let p = root.join(NAME);
    if std::fs::symlink_metadata(&p).is_err() {
        return Err(Error::bad_input(format!(
            "{}: not an etcd-wal-backup backup (no {NAME})",
            root.display()
        )));
    }
    let mut text = Vec::new();
    atomic::open_regular(&p)?
        .read_to_end(&mut text)
        .map_err(|e| Error::io(format!("cannot read {}: {e}", p.display())))?;
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| Error::bad_input(format!("{}: {e}", p.display())))?;
    if m.format != FORMAT {
        return Err(Error::bad_input(format!(
            "{}: format {:?}, this tool reads {FORMAT:?}",
            p.display(),
            m.format
        )));
    }
    for f in &m.files {
        if !allowed_path(&f.path) {
            return Err(Error::bad_input(format!(
                "{}: unexpected file {:?}",
                p.display(),
                f.path
            )));
        }
    }
    Ok(m)
}

/// Check every file of the manifest (size and sha256) under `root`; nothing else may be there.
pub fn verify(root: &Path, m: &Manifest) -> Result<()> {
    check_listing(root, m)?;
    let mut hashed = Vec::new();
    for f in &m.files {
        let p = root.join(&f.path);
        let (sha, size) = sha256_of(open_in(root, &f.path)?, &p)?;
        hashed.push((f.path.clone(), size, sha));
    }
    check_hashes(root, m, &hashed)
}

/// Every file under `root/member` is in the manifest, and every file of the manifest is there.
pub fn check_listing(root: &Path, m: &Manifest) -> Result<()> {
    let present = list_files(root)?;
    for rel in &present {
        if !m.files.iter().any(|f| &f.path == rel) {
            return Err(Error::bad_input(format!(
                "{}: {rel} is not in the manifest",
                root.display()
            )));
        }
    }
    for f in &m.files {
        if !present.contains(&f.path) {
            return Err(Error::bad_input(format!(
                "{}: missing",
                root.join(&f.path).display()
            )));
        }
    }
    Ok(())
}

/// Check the (path, size, sha256) computed for the files of `root` (while copying or
/// unpacking them) against the manifest: every file of the manifest, each matching.
pub fn check_hashes(root: &Path, m: &Manifest, hashed: &[(String, u64, String)]) -> Result<()> {
    for f in &m.files {
        let p = root.join(&f.path);
        let Some((_, size, sha)) = hashed.iter().find(|h| h.0 == f.path) else {
            return Err(Error::bad_input(format!("{}: missing", p.display())));
        };
        check_one(&p, f, *size, sha)?;
    }
    Ok(())
}

/// One file's size and sha256 against its manifest entry.
pub fn check_one(p: &Path, f: &FileEntry, size: u64, sha: &str) -> Result<()> {
    if size != f.size_bytes || sha != f.sha256 {
        return Err(Error::bad_input(format!(
            "{}: sha256 {sha} ({size} bytes), the manifest says {} ({} bytes)",
            p.display(),
            f.sha256,
            f.size_bytes
        )));
    }
    Ok(())
}

/// Copy `src` to `dst` in chunks, hashing what passes (one read of the source), stopping at a
/// signal ([`atomic::check_cancelled`] between chunks). Returns (sha256, bytes).
pub fn copy_hashing(
    src: &mut impl Read,
    dst: &mut impl Write,
    what: &Path,
    to: &Path,
) -> Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        atomic::check_cancelled()?;
        let k = match src.read(&mut buf) {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("cannot read {}: {e}", what.display()))),
        };
        if k == 0 {
            break;
        }
        let chunk = buf.get(..k).unwrap_or(&[]);
        h.update(chunk);
        dst.write_all(chunk)
            .map_err(|e| Error::io(format!("cannot write {}: {e}", to.display())))?;
        n += k as u64;
    }
    Ok((etcd_disk::snapshot::hex(&h.finalize()), n))
}

/// Pack `root` (manifest first, then the files) into `dst` (`.part` → fsync → rename).
pub fn archive(root: &Path, dst: &Path) -> Result<()> {
    let m = read(root)?;
    let f = AtomicFile::create(dst, 0o600)?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut tb = tar::Builder::new(gz);
    tb.mode(tar::HeaderMode::Deterministic);
    let mut names: Vec<(String, u32)> = vec![(NAME.to_string(), 0o600)];
    names.extend(m.files.iter().map(|f| (f.path.clone(), mode_for(&f.path))));
    for (rel, mode) in names {
        let p = root.join(&rel);
        let mut file = std::fs::File::open(&p)
            .map_err(|e| Error::io(format!("cannot open {}: {e}", p.display())))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}: {e}", p.display())))?
            .len();
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(0);
        tb.append_data(&mut h, &rel, &mut file)
            .map_err(|e| Error::io(format!("cannot archive {}: {e}", p.display())))?;
    }
    let gz = tb
        .into_inner()
        .map_err(|e| Error::io(format!("cannot write {}: {e}", dst.display())))?;
    let mut f = gz
        .finish()
        .map_err(|e| Error::io(format!("cannot write {}: {e}", dst.display())))?;
    f.flush()
        .map_err(|e| Error::io(format!("cannot write {}: {e}", dst.display())))?;
    f.commit()
}

/// Unpack an archive made by [`archive`] into the new dir `dst` (only the expected paths;
/// anything else is bad input). Files get etcd's modes. Returns (path, size, sha256) of every
/// file under `member/`, computed while unpacking.
pub fn unpack(src: &Path, dst: &Path) -> Result<Vec<(String, u64, String)>> {
    let mut hashed = Vec::new();
    let f = std::fs::File::open(src).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            Error::bad_input
        } else {
            Error::io
        };
        kind(format!("cannot open {}: {e}", src.display()))
    })?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let bad = |m: String| Error::bad_input(format!("{}: {m}", src.display()));
    let entries = ar.entries().map_err(|e| bad(e.to_string()))?;
    for ent in entries {
        let mut ent = ent.map_err(|e| bad(e.to_string()))?;
        if ent.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!(
                "unexpected entry type {:?}",
                ent.header().entry_type()
            )));
        }
        let rel: PathBuf = ent.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let rel_s = rel.to_string_lossy().to_string();
        if !allowed_path(&rel_s) {
            return Err(bad(format!("unexpected file {rel_s:?}")));
        }
        let out = dst.join(&rel);
        if let Some(parent) = out.parent() {
            crate::mkdir_0700(parent)?;
        }
        let mut o = etcd_common::atomic::create_new(&out, mode_for(&rel_s))?;
        let (sha, n) = copy_hashing(&mut ent, &mut o, &src.join(&rel), &out).map_err(|e| {
            if e.kind == etcd_common::ErrorKind::Io && e.message.starts_with("cannot read") {
                bad(format!("{rel_s}: {}", e.message))
            } else {
                e
            }
        })?;
        o.sync_all()
            .map_err(|e| Error::io(format!("cannot write {}: {e}", out.display())))?;
        if rel_s != NAME {
            hashed.push((rel_s, n, sha));
        }
    }
    Ok(hashed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn paths() {
        assert!(allowed_path("manifest.json"));
        assert!(allowed_path("member/snap/db"));
        assert!(allowed_path(
            "member/snap/0000000000000002-0000000000000010.snap"
        ));
        assert!(allowed_path(
            "member/wal/0000000000000000-0000000000000000.wal"
        ));
        assert!(!allowed_path("member/wal/../../etc/passwd.wal"));
        assert!(!allowed_path("/etc/passwd"));
        assert!(!allowed_path("member/snap/x"));
        assert!(!allowed_path("member/wal/a b.wal"));
    }
}
