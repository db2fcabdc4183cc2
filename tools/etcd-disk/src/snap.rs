//! `.snap` files (spec §4): `snappb.Snapshot{crc, data = raftpb.Snapshot}` named
//! `%016x-%016x.snap` (term-index). Reading never renames or modifies source files (unlike
//! etcd, which renames undecodable files to `.broken`).

use crate::proto::{RaftSnapshot, SnapFile, WalSnapshot};
use crate::{DiskError, Result};
use prost::Message;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `%016x-%016x.snap` of (term, index).
pub fn snap_name(term: u64, index: u64) -> String {
    format!("{term:016x}-{index:016x}.snap")
}

/// Parse a `.snap` name into (term, index).
pub fn parse_snap_name(name: &str) -> Option<(u64, u64)> {
    let (a, b) = name.strip_suffix(".snap")?.split_once('-')?;
    let ok = |s: &str| s.len() == 16 && s.bytes().all(|c| c.is_ascii_hexdigit());
    if !ok(a) || !ok(b) {
        return None;
    }
    Some((
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    ))
}

/// One `.snap` file in a snap dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFileInfo {
    pub path: PathBuf,
    /// From the name (etcd itself uses the decoded metadata).
    pub term: u64,
    pub index: u64,
}

/// `.snap` files of `dir`, newest (lexicographically largest name) first, like etcd's
/// `snapNames`. Names that end in `.snap` but do not parse are kept with term/index 0 (etcd
/// tries to load them too).
pub fn list_snaps(dir: &Path) -> Result<Vec<SnapFileInfo>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DiskError::io(dir, e))?;
    let mut v = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| DiskError::io(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(".snap") {
            continue;
        }
        let (term, index) = parse_snap_name(name).unwrap_or((0, 0));
        v.push((
            name.to_string(),
            SnapFileInfo {
                path: ent.path(),
                term,
                index,
            },
        ));
    }
    v.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(v.into_iter().map(|(_, s)| s).collect())
}

/// Decode the bytes of a `.snap` file with etcd's checks: not empty, `crc != 0`, data not
/// empty, CRC-32C of data equal to `crc`, data a valid `raftpb.Snapshot`.
pub fn decode_snap(path: &Path, b: &[u8]) -> Result<RaftSnapshot> {
    if b.is_empty() {
        return Err(DiskError::corrupt(
            path,
            0,
            "snap: empty snapshot (empty file)",
        ));
    }
    let f = SnapFile::decode(b).map_err(|e| DiskError::corrupt(path, 0, format!("snap: {e}")))?;
    let data = f.data.unwrap_or_default();
    if data.is_empty() || f.crc == 0 {
        return Err(DiskError::corrupt(path, 0, "snap: empty snapshot"));
    }
    let c = crc32c::crc32c(&data);
    if c != f.crc {
        return Err(DiskError::corrupt(
            path,
            0,
            format!(
                "snap: crc mismatch: file has {:08x}, data has {c:08x}",
                f.crc
            ),
        ));
    }
    // data starts after the crc varint and the field 2 key and length
    RaftSnapshot::decode(data.as_slice())
        .map_err(|e| DiskError::corrupt(path, 0, format!("snap: bad raftpb.Snapshot: {e}")))
}

/// Read and verify one `.snap` file.
pub fn read_snap(path: &Path) -> Result<RaftSnapshot> {
    use std::io::Read;
    let mut b = Vec::new();
    crate::error::open_regular(path)?
        .read_to_end(&mut b)
        .map_err(|e| DiskError::io(path, e))?;
    decode_snap(path, &b)
}

/// Encode a snapshot as a `.snap` file's bytes.
pub fn encode_snap(s: &RaftSnapshot) -> Vec<u8> {
    let data = s.encode_to_vec();
    SnapFile {
        crc: crc32c::crc32c(&data),
        data: Some(data),
    }
    .encode_to_vec()
}

/// A loaded `.snap`: where it was and what it holds.
pub type LoadedSnap = (SnapFileInfo, RaftSnapshot);
/// A `.snap` that failed to load: its path and why.
pub type SkippedSnap = (PathBuf, DiskError);

/// The newest `.snap` that loads and satisfies `accept`; files that fail to load are
/// reported in the second value (path, error) and skipped, as etcd does.
pub fn load_newest_matching(
    dir: &Path,
    mut accept: impl FnMut(&RaftSnapshot) -> bool,
) -> Result<(Option<LoadedSnap>, Vec<SkippedSnap>)> {
    let mut skipped = Vec::new();
    for info in list_snaps(dir)? {
        match read_snap(&info.path) {
            Ok(s) if accept(&s) => return Ok((Some((info, s)), skipped)),
            Ok(_) => {}
            Err(e) => skipped.push((info.path.clone(), e)),
        }
    }
    Ok((None, skipped))
}

/// etcd's `LoadNewestAvailable`: the newest `.snap` that loads and whose (term, index)
/// equals one of `wal_snaps` (from [`crate::wal::valid_snapshot_entries`]).
pub fn load_newest_available(dir: &Path, wal_snaps: &[WalSnapshot]) -> Result<Option<LoadedSnap>> {
    let (found, _) = load_newest_matching(dir, |s| {
        wal_snaps
            .iter()
            .any(|w| w.index == s.metadata.index && w.term == s.metadata.term)
    })?;
    Ok(found)
}

/// The newest `.snap` that loads, not matched against the WAL (what `backup` does).
pub fn load_newest(dir: &Path) -> Result<Option<LoadedSnap>> {
    Ok(load_newest_matching(dir, |_| true)?.0)
}

/// Write `s` as `<dir>/<term>-<index>.snap` atomically (`<name>.part`, fsync, rename, fsync
/// dir), mode 0666 & ~umask like etcd. Refuses to overwrite an existing file.
pub fn write_snap(dir: &Path, s: &RaftSnapshot) -> Result<PathBuf> {
    let name = snap_name(s.metadata.term, s.metadata.index);
    let path = dir.join(&name);
    if path.exists() {
        return Err(DiskError::layout(&path, "snap file exists"));
    }
    let part = dir.join(format!("{name}.part"));
    let bytes = encode_snap(s);
    let res = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o666)
            .open(&part)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&part, &path)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&part);
        return Err(DiskError::io(&path, e));
    }
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::{ConfState, SnapshotMetadata};

    fn snap(term: u64, index: u64) -> RaftSnapshot {
        RaftSnapshot {
            data: Some(format!("{{\"i\":{index}}}").into_bytes()),
            metadata: SnapshotMetadata {
                conf_state: ConfState {
                    voters: vec![1],
                    ..Default::default()
                },
                index,
                term,
            },
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            snap_name(2, 0x24c),
            "0000000000000002-000000000000024c.snap"
        );
        assert_eq!(
            parse_snap_name("0000000000000002-000000000000024c.snap"),
            Some((2, 0x24c))
        );
        assert_eq!(
            parse_snap_name("0000000000000002-000000000000024c.snap.broken"),
            None
        );
    }

    #[test]
    fn header_bytes_like_etcd() {
        // spec §4: `08 <crc varint> 12 <len> 0a <len> {"Root...`
        let b = encode_snap(&snap(1, 3));
        assert_eq!(b[0], 0x08);
        assert!(decode_snap(Path::new("x"), &b).is_ok());
    }

    #[test]
    fn write_list_load() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for (t_, i) in [(1, 100), (1, 200), (2, 300)] {
            write_snap(d, &snap(t_, i)).unwrap();
        }
        assert!(write_snap(d, &snap(1, 100)).is_err());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(d.join(snap_name(1, 100)))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o600, 0o600);
        // a corrupt newest file is skipped, and left untouched
        let bad = d.join(snap_name(3, 400));
        std::fs::write(&bad, b"\x08\x01\x12\x01x").unwrap();
        std::fs::write(d.join("db"), b"").unwrap();
        let l = list_snaps(d).unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!(l[0].index, 400);
        let (s, skipped) = load_newest_matching(d, |_| true).unwrap();
        assert_eq!(s.unwrap().1.metadata.index, 300);
        assert_eq!(skipped.len(), 1);
        assert!(bad.exists());
        let w = |index, term| WalSnapshot {
            index,
            term,
            conf_state: None,
        };
        let got = load_newest_available(d, &[w(0, 0), w(200, 1), w(300, 9)]).unwrap();
        assert_eq!(got.unwrap().1.metadata.index, 200);
        assert!(load_newest_available(d, &[w(5, 1)]).unwrap().is_none());
    }

    #[test]
    fn corrupt_inputs_are_errors() {
        let p = Path::new("f.snap");
        let good = encode_snap(&snap(1, 1));
        assert!(decode_snap(p, &[]).is_err());
        assert!(decode_snap(p, &good[..good.len() - 1]).is_err());
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(decode_snap(p, &flipped).is_err());
        assert!(decode_snap(p, &encode_snap(&RaftSnapshot::default())[..2]).is_err());
        for n in 0..good.len() {
            let _ = decode_snap(p, &good[..n]);
        }
    }
}
