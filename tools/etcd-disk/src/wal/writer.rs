//! WAL writer: builds a new WAL dir in `<dir>.tmp` and renames it into place on `finish`.

use super::{encode_frame_size, segment_name, SEGMENT_SIZE_BYTES};
use crate::proto::{encode, record_type as rt, Entry, HardState, Metadata, WalRecord, WalSnapshot};
use crate::{DiskError, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Preallocation size and cut threshold (etcd: 64,000,000). Smaller values are for tests.
    pub segment_size: u64,
    /// fsync files and directories (always on in production; tests may turn it off).
    pub fsync: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            segment_size: SEGMENT_SIZE_BYTES,
            fsync: true,
        }
    }
}

const FLUSH_AT: usize = 1 << 20;

/// Writes a new WAL exactly as etcd's `WAL.Create` + `Save` + `SaveSnapshot` + cut do.
/// Nothing appears at the final path until [`WalWriter::finish`]; dropping an unfinished
/// writer removes the temporary directory.
pub struct WalWriter {
    final_dir: PathBuf,
    tmp_dir: PathBuf,
    opts: WriterOptions,
    file: File,
    path: PathBuf,
    seq: u64,
    /// Encoded bytes not yet written, starting at file offset `pending_at`.
    pending: Vec<u8>,
    pending_at: u64,
    /// Logical end offset in the current segment.
    off: u64,
    crc: u32,
    metadata: Vec<u8>,
    state: HardState,
    enti: u64,
    finished: bool,
}

fn mkdir_0700(p: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| DiskError::io(p, e))
}

fn fsync_dir(p: &Path) -> Result<()> {
    File::open(p)
        .and_then(|d| d.sync_all())
        .map_err(|e| DiskError::io(p, e))
}

/// Extend `f` to `size` zero bytes, with `fallocate` when the filesystem supports it.
fn preallocate(f: &File, path: &Path, size: u64) -> Result<()> {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off_t::try_from(size) else {
        return Err(DiskError::Invalid(format!("segment size {size} too large")));
    };
    // SAFETY: fallocate on a valid, open file descriptor with plain integer arguments.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        // EOPNOTSUPP/ENOSYS (e.g. tmpfs on old kernels, some FUSE): extend by truncation like
        // etcd.
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {
            f.set_len(size).map_err(|e| DiskError::io(path, e))
        }
        // ENOSPC above all: a sparse segment would make the restore look fine and etcd fail
        // on its first writes.
        _ => Err(DiskError::io(path, err)),
    }
}

fn create_segment(dir: &Path, name: &str, size: u64) -> Result<(File, PathBuf)> {
    let path = dir.join(name);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| DiskError::io(&path, e))?;
    preallocate(&f, &path, size)?;
    Ok((f, path))
}

impl WalWriter {
    /// Create a WAL at `dir` (which must not exist) with etcd's first records: crc 0,
    /// metadata, snapshot {0, 0}.
    pub fn create(dir: &Path, metadata: &Metadata) -> Result<Self> {
        Self::create_with(dir, &encode(metadata), WriterOptions::default())
    }

    /// Like [`WalWriter::create`] with the metadata record's bytes given verbatim.
    pub fn create_with(dir: &Path, metadata_raw: &[u8], opts: WriterOptions) -> Result<Self> {
        if opts.segment_size < 64 {
            return Err(DiskError::Invalid("segment size too small".into()));
        }
        // Frames are 8-byte aligned; a preallocated tail that is not would end in a partial
        // length field, which a reader (etcd's too) must take for a torn write. etcd's own size,
        // 64,000,000, is a multiple of 8.
        if opts.segment_size % 8 != 0 {
            return Err(DiskError::Invalid(format!(
                "segment size {} is not a multiple of 8",
                opts.segment_size
            )));
        }
        if dir.exists() {
            return Err(DiskError::layout(dir, "wal dir exists"));
        }
        let mut tmp = dir.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp_dir = PathBuf::from(tmp);
        if tmp_dir.exists() {
            // A leftover of an interrupted create (etcd removes it too).
            std::fs::remove_dir_all(&tmp_dir).map_err(|e| DiskError::io(&tmp_dir, e))?;
        }
        mkdir_0700(&tmp_dir)?;
        let (file, path) = create_segment(&tmp_dir, &segment_name(0, 0), opts.segment_size)?;
        let mut w = WalWriter {
            final_dir: dir.to_path_buf(),
            tmp_dir,
            opts,
            file,
            path,
            seq: 0,
            pending: Vec::new(),
            pending_at: 0,
            off: 0,
            crc: 0,
            metadata: metadata_raw.to_vec(),
            state: HardState::default(),
            enti: 0,
            finished: false,
        };
        w.encode(rt::CRC, None)?;
        let md = w.metadata.clone();
        w.encode(rt::METADATA, Some(&md))?;
        w.save_snapshot(&WalSnapshot::default())?;
        Ok(w)
    }

    /// Append one record, maintaining the CRC chain and 8-byte framing.
    fn encode(&mut self, rtype: i64, data: Option<&[u8]>) -> Result<()> {
        if let Some(d) = data {
            self.crc = crc32c::crc32c_append(self.crc, d);
        }
        let rec = WalRecord {
            r#type: rtype,
            crc: self.crc,
            data: data.map(<[u8]>::to_vec),
        };
        let bytes = encode(&rec);
        let (field, pad) = encode_frame_size(bytes.len());
        self.pending.extend_from_slice(&field.to_le_bytes());
        self.pending.extend_from_slice(&bytes);
        self.pending.resize(self.pending.len() + pad, 0);
        self.off += (8 + bytes.len() + pad) as u64;
        if self.pending.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.file
                .write_all_at(&self.pending, self.pending_at)
                .map_err(|e| DiskError::io(&self.path, e))?;
            self.pending_at += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.flush()?;
        if self.opts.fsync {
            self.file
                .sync_data()
                .map_err(|e| DiskError::io(&self.path, e))?;
        }
        Ok(())
    }

    /// etcd's `Save`: the entries, then the HardState (if non-empty), then sync; cut to a new
    /// segment when the offset has reached the segment size.
    pub fn save(&mut self, hs: &HardState, entries: &[Entry]) -> Result<()> {
        if hs.is_empty() && entries.is_empty() {
            return Ok(());
        }
        for e in entries {
            self.encode(rt::ENTRY, Some(&encode(e)))?;
            self.enti = e.index;
        }
        if !hs.is_empty() {
            self.encode(rt::STATE, Some(&encode(hs)))?;
            self.state = *hs;
        }
        if self.off < self.opts.segment_size {
            return self.sync();
        }
        self.cut()
    }

    /// etcd's `SaveSnapshot`: a snapshot record, then sync.
    pub fn save_snapshot(&mut self, s: &WalSnapshot) -> Result<()> {
        self.encode(rt::SNAPSHOT, Some(&encode(s)))?;
        if self.enti < s.index {
            self.enti = s.index;
        }
        self.sync()
    }

    /// Close the current segment at its end and start `<seq+1>-<last index+1>.wal` with crc,
    /// metadata and the last HardState.
    fn cut(&mut self) -> Result<()> {
        self.flush()?;
        self.file
            .set_len(self.off)
            .map_err(|e| DiskError::io(&self.path, e))?;
        if self.opts.fsync {
            self.file
                .sync_all()
                .map_err(|e| DiskError::io(&self.path, e))?;
        }
        self.seq += 1;
        let name = segment_name(self.seq, self.enti + 1);
        let (file, path) = create_segment(&self.tmp_dir, &name, self.opts.segment_size)?;
        self.file = file;
        self.path = path;
        self.off = 0;
        self.pending_at = 0;
        self.encode(rt::CRC, None)?;
        let md = self.metadata.clone();
        self.encode(rt::METADATA, Some(&md))?;
        if !self.state.is_empty() {
            let st = encode(&self.state);
            self.encode(rt::STATE, Some(&st))?;
        }
        self.sync()?;
        if self.opts.fsync {
            fsync_dir(&self.tmp_dir)?;
        }
        Ok(())
    }

    /// Current segment's logical size (for tests and progress).
    pub fn offset(&self) -> u64 {
        self.off
    }

    /// Sync everything and rename the temporary dir into place; returns the WAL dir.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.flush()?;
        if self.opts.fsync {
            self.file
                .sync_all()
                .map_err(|e| DiskError::io(&self.path, e))?;
            fsync_dir(&self.tmp_dir)?;
        }
        if let Some(parent) = self
            .final_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            mkdir_0700(parent)?;
        }
        std::fs::rename(&self.tmp_dir, &self.final_dir)
            .map_err(|e| DiskError::io(&self.final_dir, e))?;
        self.finished = true;
        if self.opts.fsync {
            if let Some(parent) = self
                .final_dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                fsync_dir(parent)?;
            }
        }
        Ok(self.final_dir.clone())
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.tmp_dir);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::membership::bootstrap;
    use crate::proto::{conf_change_type, entry_type, ConfChange, ConfState};
    use sha2::{Digest, Sha256};

    /// The deterministic 3-member restore WAL of spec §7.3.
    fn restore_wal(dir: &Path, v35: bool) -> PathBuf {
        let c = bootstrap(
            "b",
            "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380",
            "http://10.0.0.2:2380",
            "tt",
        )
        .unwrap();
        let md = Metadata {
            node_id: c.local_id,
            cluster_id: c.cluster_id,
        };
        let mut w = WalWriter::create(&dir.join("wal"), &md).unwrap();
        let ents: Vec<Entry> = c
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| Entry {
                r#type: entry_type::CONF_CHANGE,
                term: 1,
                index: i as u64 + 1,
                data: Some(encode(&ConfChange {
                    id: 0,
                    r#type: conf_change_type::ADD_NODE,
                    node_id: m.id,
                    context: Some(m.to_json().into_bytes()),
                })),
            })
            .collect();
        let n = ents.len() as u64;
        w.save(
            &HardState {
                term: 1,
                vote: c.members[0].id,
                commit: n,
            },
            &ents,
        )
        .unwrap();
        let cs = v35.then(|| ConfState {
            voters: c.ids(),
            ..Default::default()
        });
        w.save_snapshot(&WalSnapshot {
            index: n,
            term: 1,
            conf_state: cs,
        })
        .unwrap();
        w.finish().unwrap()
    }

    fn sha_hex(p: &Path) -> String {
        let b = std::fs::read(p).unwrap();
        assert_eq!(b.len() as u64, SEGMENT_SIZE_BYTES);
        Sha256::digest(&b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    }

    #[test]
    fn restore_wal_34_bytes() {
        let t = tempfile::tempdir().unwrap();
        let wal = restore_wal(t.path(), false);
        let f = wal.join("0000000000000000-0000000000000000.wal");
        let head = std::fs::read(&f).unwrap();
        assert_eq!(&head[..8], &[4, 0, 0, 0, 0, 0, 0, 0x84]);
        assert_eq!(
            sha_hex(&f),
            "216ad4cee01e7aaf3332bea0519b8ba85388e6953330625477695f4e88fc7247"
        );
        assert!(!t.path().join("wal.tmp").exists());
        let names: Vec<_> = std::fs::read_dir(&wal)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn restore_wal_35_bytes() {
        let t = tempfile::tempdir().unwrap();
        let wal = restore_wal(t.path(), true);
        let f = wal.join("0000000000000000-0000000000000000.wal");
        assert_eq!(
            sha_hex(&f),
            "d1a43c7b165ae19b06e1d63516d1a76c0a7eca45b42d2675dd37dc6dc8896b07"
        );
        // and our reader agrees
        let c = crate::wal::read_at(&wal, 3, 1).unwrap();
        assert!(c.snapshot_found);
        assert_eq!(c.entries.len(), 0);
        assert_eq!(
            c.hard_state,
            HardState {
                term: 1,
                vote: 0x4229723f34757929,
                commit: 3
            }
        );
        let c0 = crate::wal::read_at(&wal, 0, 0).unwrap();
        assert_eq!(c0.entries.len(), 3);
        assert_eq!(c0.metadata.unwrap().node_id, 0xa000429f37de1964);
        assert_eq!(crate::wal::valid_snapshot_entries(&wal).unwrap().len(), 2);
    }

    #[test]
    fn refuses_existing_dir_and_cleans_up() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("wal");
        std::fs::create_dir(&d).unwrap();
        assert!(WalWriter::create(&d, &Metadata::default()).is_err());
        let d2 = t.path().join("wal2");
        {
            let _w = WalWriter::create(&d2, &Metadata::default()).unwrap();
            assert!(t.path().join("wal2.tmp").exists());
        }
        assert!(!t.path().join("wal2.tmp").exists());
        assert!(!d2.exists());
    }
}
