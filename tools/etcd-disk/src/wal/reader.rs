//! Streaming WAL reader: frames, CRC chain, torn-tail classification, `ReadAll` assembly.

use super::{
    check_contiguous, decode_entry, decode_frame_size, decode_record, list_segments,
    select_segments, Segment, MAX_RECORD_SIZE, SECTOR_SIZE,
};
use crate::proto::{record_type as rt, Entry, HardState, Metadata, WalSnapshot};
use crate::{DiskError, Result};
use prost::Message;
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const READ_BUF: usize = 1 << 20;

/// How the log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalTail {
    /// End of file or zeroed preallocated space in the last segment (etcd: `io.EOF`).
    Clean,
    /// The last segment ends with a partial record (etcd: `io.ErrUnexpectedEOF`): a torn
    /// write that etcd's read-write open would repair by truncating at `offset`.
    Torn {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// One record as read from the log, borrowing the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub rtype: i64,
    pub crc: u32,
    pub data: Option<&'a [u8]>,
    /// Index into [`RecordReader::segments`].
    pub segment: usize,
    /// File offset of the frame (its length field).
    pub offset: u64,
    /// File offset of `data`.
    pub data_offset: u64,
}

/// Reads the records of consecutive segments as one log, verifying the CRC chain. Memory:
/// one read buffer plus one record.
pub struct RecordReader {
    segs: Vec<Segment>,
    cur: usize,
    file: Option<BufReader<File>>,
    off: u64,
    crc: u32,
    buf: Vec<u8>,
    tail: Option<WalTail>,
}

impl RecordReader {
    /// A reader over `segs` (in order). The running CRC starts at 0, so the first crc record
    /// seeds the chain (reading may start at any segment).
    pub fn new(segs: Vec<Segment>) -> Self {
        RecordReader {
            segs,
            cur: 0,
            file: None,
            off: 0,
            crc: 0,
            buf: Vec::new(),
            tail: None,
        }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segs
    }

    /// The running CRC value (after the records read so far).
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// Set once `next_record` has returned `Ok(None)`.
    pub fn tail(&self) -> Option<&WalTail> {
        self.tail.as_ref()
    }

    /// Offset of the next frame in the current segment (etcd's `lastValidOff`).
    pub fn last_valid_offset(&self) -> u64 {
        self.off
    }

    fn path(&self) -> PathBuf {
        self.segs
            .get(self.cur)
            .map(|s| s.path.clone())
            .unwrap_or_default()
    }

    fn is_last(&self) -> bool {
        self.cur + 1 >= self.segs.len()
    }

    /// etcd's `io.ErrUnexpectedEOF`: a normal (torn) end in the last segment; we treat it as
    /// corruption elsewhere, since every record after it would be silently lost.
    fn unexpected_eof(&mut self, reason: String) -> Result<()> {
        if self.is_last() {
            self.tail = Some(WalTail::Torn {
                path: self.path(),
                offset: self.off,
                reason,
            });
            self.file = None;
            Ok(())
        } else {
            Err(DiskError::corrupt(
                self.path(),
                self.off,
                format!("{reason} (not the last segment)"),
            ))
        }
    }

    /// etcd's `isTornEntry`: in the last segment, a record whose bytes, split at 512-byte
    /// sector boundaries of the file, contain an all-zero chunk.
    fn is_torn(&self, data: &[u8]) -> bool {
        if !self.is_last() {
            return false;
        }
        let mut file_off = self.off + 8;
        let mut rest = data;
        while !rest.is_empty() {
            let chunk_len = (SECTOR_SIZE - file_off % SECTOR_SIZE) as usize;
            let (chunk, r) = rest.split_at(chunk_len.min(rest.len()));
            if chunk.iter().all(|&b| b == 0) {
                return true;
            }
            file_off += chunk.len() as u64;
            rest = r;
        }
        false
    }

    /// The next record, or `None` at the end of the log (see [`RecordReader::tail`]).
    pub fn next_record(&mut self) -> Result<Option<RecordRef<'_>>> {
        loop {
            if self.tail.is_some() {
                return Ok(None);
            }
            if self.file.is_none() {
                let Some(seg) = self.segs.get(self.cur) else {
                    self.tail = Some(WalTail::Clean);
                    return Ok(None);
                };
                let f = crate::error::open_regular(&seg.path)?;
                self.file = Some(BufReader::with_capacity(READ_BUF, f));
                self.off = 0;
            }
            let path = self
                .segs
                .get(self.cur)
                .map(|s| s.path.clone())
                .unwrap_or_default();
            let Some(file) = self.file.as_mut() else {
                continue;
            };
            let mut lenb = [0u8; 8];
            let n = read_full(file, &mut lenb).map_err(|e| DiskError::io(&path, e))?;
            let field = u64::from_le_bytes(lenb);
            if n == 0 || (n == 8 && field == 0) {
                // End of file or zeroed preallocated space: next segment.
                self.file = None;
                if self.cur + 1 >= self.segs.len() {
                    self.tail = Some(WalTail::Clean);
                    return Ok(None);
                }
                self.cur += 1;
                continue;
            }
            if n < 8 {
                self.unexpected_eof(format!("partial frame length ({n} of 8 bytes)"))?;
                return Ok(None);
            }
            let (rec_len, pad) = decode_frame_size(field);
            if rec_len >= MAX_RECORD_SIZE.saturating_sub(pad) {
                return Err(DiskError::corrupt(
                    path,
                    self.off,
                    format!("wal: max entry size limit exceeded (record of {rec_len} bytes)"),
                ));
            }
            let total = (rec_len + pad) as usize;
            self.buf.resize(total, 0);
            let got = read_full(file, &mut self.buf).map_err(|e| DiskError::io(&path, e))?;
            if got < total {
                self.unexpected_eof(format!("record cut short ({got} of {total} bytes)"))?;
                return Ok(None);
            }
            let rec_bytes = self.buf.get(..rec_len as usize).unwrap_or(&[]);
            let decoded = decode_record(rec_bytes).map(|r| {
                let range = r.data.map(|d| (r.data_pos, r.data_pos + d.len()));
                let c = r.data.map_or(crc32c::crc32c_append(self.crc, &[]), |d| {
                    crc32c::crc32c_append(self.crc, d)
                });
                (r.rtype, r.crc, range, c)
            });
            let (rtype, rcrc, range, computed) = match decoded {
                Ok(x) => x,
                Err(e) => {
                    if self.is_torn(&self.buf) {
                        self.unexpected_eof(format!("torn write ({e})"))?;
                        return Ok(None);
                    }
                    return Err(DiskError::corrupt(path, self.off, format!("wal: {e}")));
                }
            };
            if rtype == rt::CRC {
                if self.crc != 0 && rcrc != self.crc {
                    return Err(DiskError::corrupt(
                        path,
                        self.off,
                        format!(
                            "wal: crc mismatch: crc record holds {rcrc:08x}, running crc is {:08x}",
                            self.crc
                        ),
                    ));
                }
                self.crc = rcrc;
            } else {
                if computed != rcrc {
                    if self.is_torn(&self.buf) {
                        self.unexpected_eof(
                            "torn write (crc mismatch over a zeroed sector)".into(),
                        )?;
                        return Ok(None);
                    }
                    return Err(DiskError::corrupt(
                        path,
                        self.off,
                        format!(
                            "wal: crc mismatch: record has {rcrc:08x}, computed {computed:08x}"
                        ),
                    ));
                }
                self.crc = computed;
                if !(rt::METADATA..=rt::SNAPSHOT).contains(&rtype) {
                    return Err(DiskError::corrupt(
                        path,
                        self.off,
                        format!("wal: unexpected block type {rtype}"),
                    ));
                }
            }
            let offset = self.off;
            self.off += 8 + rec_len + pad;
            let data = match range {
                Some((a, b)) => Some(self.buf.get(a..b).ok_or_else(|| {
                    DiskError::corrupt(self.path(), offset, "record data out of range")
                })?),
                None => None,
            };
            let data_offset = offset + 8 + range.map_or(0, |r| r.0 as u64);
            return Ok(Some(RecordRef {
                rtype,
                crc: rcrc,
                data,
                segment: self.cur,
                offset,
                data_offset,
            }));
        }
    }
}

/// Like `read_exact` but returns how many bytes were read before EOF.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Where an entry lives, so that its payload can be re-read without holding it in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLoc {
    pub index: u64,
    pub term: u64,
    /// `raftpb.EntryType`.
    pub etype: i32,
    /// Index into the segments of the [`WalContents`].
    pub segment: u32,
    /// File offset of the entry's `Data` payload.
    pub data_offset: u64,
    pub data_len: u32,
    /// False when `Data` is absent (nil), as in leader no-ops.
    pub has_data: bool,
    /// File offset of the record frame (for error messages).
    pub record_offset: u64,
}

/// What etcd's `ReadAll` returns for a snapshot (index, term), with entries located lazily.
#[derive(Debug, Clone)]
pub struct WalContents {
    pub dir: PathBuf,
    pub segments: Vec<Segment>,
    pub metadata: Option<Metadata>,
    /// The metadata record's data, byte for byte (3.5 backup re-uses it).
    pub metadata_raw: Vec<u8>,
    pub hard_state: HardState,
    /// Entries after the snapshot index, in index order (raft truncation applied).
    pub entries: Vec<EntryLoc>,
    /// The start snapshot (index, term).
    pub start: (u64, u64),
    /// Whether a snapshot record matching `start` was seen (etcd: `ErrSnapshotNotFound`).
    pub snapshot_found: bool,
    /// Every snapshot record read (in order).
    pub snapshots: Vec<WalSnapshot>,
    pub tail: WalTail,
    pub records: u64,
    pub last_crc: u32,
}

impl WalContents {
    /// etcd's `ErrSnapshotNotFound` as an error.
    pub fn require_snapshot(&self) -> Result<()> {
        if self.snapshot_found {
            Ok(())
        } else {
            Err(DiskError::layout(
                &self.dir,
                format!(
                    "wal: snapshot not found: no snapshot record for index {} term {}",
                    self.start.0, self.start.1
                ),
            ))
        }
    }

    /// A reader for entry payloads (opens each segment at most once).
    pub fn entry_reader(&self) -> EntryReader<'_> {
        EntryReader {
            contents: self,
            files: Vec::new(),
        }
    }
}

/// Re-reads entries located by [`WalContents`].
pub struct EntryReader<'a> {
    contents: &'a WalContents,
    files: Vec<Option<File>>,
}

impl EntryReader<'_> {
    /// Read the payload of `loc` into `buf` (cleared first); returns false if `Data` is nil.
    pub fn read_data(&mut self, loc: &EntryLoc, buf: &mut Vec<u8>) -> Result<bool> {
        buf.clear();
        if !loc.has_data {
            return Ok(false);
        }
        let i = loc.segment as usize;
        let seg = self.contents.segments.get(i).ok_or_else(|| {
            DiskError::Invalid(format!("entry {} refers to unknown segment {i}", loc.index))
        })?;
        if self.files.len() <= i {
            self.files.resize_with(i + 1, || None);
        }
        let slot = self
            .files
            .get_mut(i)
            .ok_or_else(|| DiskError::Invalid("segment slot".into()))?;
        if slot.is_none() {
            *slot = Some(crate::error::open_regular(&seg.path)?);
        }
        let Some(f) = slot.as_ref() else {
            return Ok(false);
        };
        buf.resize(loc.data_len as usize, 0);
        f.read_exact_at(buf, loc.data_offset).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                DiskError::corrupt(
                    &seg.path,
                    loc.data_offset,
                    "entry payload beyond end of file",
                )
            } else {
                DiskError::io(&seg.path, e)
            }
        })?;
        Ok(true)
    }

    /// Read a whole entry.
    pub fn read(&mut self, loc: &EntryLoc) -> Result<Entry> {
        let mut buf = Vec::new();
        let has = self.read_data(loc, &mut buf)?;
        Ok(Entry {
            r#type: loc.etype,
            term: loc.term,
            index: loc.index,
            data: has.then_some(buf),
        })
    }
}

/// Read the log for the snapshot (index, term) with etcd's `ReadAll` semantics (§2.5): only
/// the selected segments; entries above the snapshot placed by index (a repeated index
/// truncates the suffix); last HardState wins; metadata must be identical everywhere.
pub fn read_at(dir: &Path, snap_index: u64, snap_term: u64) -> Result<WalContents> {
    let all = list_segments(dir)?;
    let segs = select_segments(dir, &all, snap_index)?;
    let mut r = RecordReader::new(segs.clone());
    let mut c = WalContents {
        dir: dir.to_path_buf(),
        segments: segs,
        metadata: None,
        metadata_raw: Vec::new(),
        hard_state: HardState::default(),
        entries: Vec::new(),
        start: (snap_index, snap_term),
        snapshot_found: false,
        snapshots: Vec::new(),
        tail: WalTail::Clean,
        records: 0,
        last_crc: 0,
    };
    let mut have_md = false;
    while let Some(rec) = r.next_record()? {
        c.records += 1;
        let data = rec.data.unwrap_or(&[]);
        let (seg, off) = (rec.segment, rec.offset);
        match rec.rtype {
            rt::ENTRY => {
                let e = decode_entry(data).map_err(|m| {
                    DiskError::corrupt(path_of(&c, seg), off, format!("entry: {m}"))
                })?;
                if e.index > snap_index {
                    let up = e.index - snap_index - 1;
                    if up > c.entries.len() as u64 {
                        return Err(DiskError::corrupt(
                            path_of(&c, seg),
                            off,
                            format!(
                                "wal: slice bounds out of range: entry {} after {} entries above snapshot {snap_index}",
                                e.index,
                                c.entries.len()
                            ),
                        ));
                    }
                    c.entries.truncate(up as usize);
                    c.entries.push(EntryLoc {
                        index: e.index,
                        term: e.term,
                        etype: e.etype,
                        segment: seg as u32,
                        data_offset: rec.data_offset + e.data_pos as u64,
                        data_len: e.data.map_or(0, |d| d.len() as u32),
                        has_data: e.data.is_some(),
                        record_offset: off,
                    });
                }
            }
            rt::STATE => {
                c.hard_state = HardState::decode(data).map_err(|e| {
                    DiskError::corrupt(path_of(&c, seg), off, format!("state: {e}"))
                })?;
            }
            rt::METADATA => {
                if have_md && c.metadata_raw != data {
                    return Err(DiskError::corrupt(
                        path_of(&c, seg),
                        off,
                        "wal: conflicting metadata found",
                    ));
                }
                if !have_md {
                    c.metadata_raw = data.to_vec();
                    c.metadata = Some(Metadata::decode(data).map_err(|e| {
                        DiskError::corrupt(path_of(&c, seg), off, format!("metadata: {e}"))
                    })?);
                    have_md = true;
                }
            }
            rt::SNAPSHOT => {
                let s = WalSnapshot::decode(data).map_err(|e| {
                    DiskError::corrupt(path_of(&c, seg), off, format!("snapshot record: {e}"))
                })?;
                if s.index == snap_index {
                    if s.term != snap_term {
                        return Err(DiskError::corrupt(
                            path_of(&c, seg),
                            off,
                            format!("wal: snapshot mismatch: record has term {} for index {}, want term {snap_term}", s.term, s.index),
                        ));
                    }
                    c.snapshot_found = true;
                }
                c.snapshots.push(s);
            }
            _ => {}
        }
    }
    c.tail = r.tail().cloned().unwrap_or(WalTail::Clean);
    c.last_crc = r.crc();
    Ok(c)
}

fn path_of(c: &WalContents, seg: usize) -> PathBuf {
    c.segments
        .get(seg)
        .map(|s| s.path.clone())
        .unwrap_or_else(|| c.dir.clone())
}

/// A full verification pass over every segment (what etcd's `ValidSnapshotEntries` reads).
#[derive(Debug, Clone)]
pub struct WalScan {
    pub segments: Vec<Segment>,
    pub metadata: Option<Metadata>,
    pub hard_state: HardState,
    /// Every snapshot record, in order.
    pub snapshots: Vec<WalSnapshot>,
    pub records: u64,
    pub entries: u64,
    pub first_entry_index: Option<u64>,
    pub last_entry_index: Option<u64>,
    pub tail: WalTail,
    pub last_crc: u32,
}

impl WalScan {
    /// Snapshot records with `index <= HardState.commit` (etcd's `ValidSnapshotEntries`).
    pub fn valid_snapshots(&self) -> Vec<WalSnapshot> {
        self.snapshots
            .iter()
            .filter(|s| s.index <= self.hard_state.commit)
            .cloned()
            .collect()
    }
}

/// Read every segment from the first, verifying framing and the CRC chain; collect the
/// snapshot records, the last HardState and the metadata.
pub fn scan(dir: &Path) -> Result<WalScan> {
    let segs = list_segments(dir)?;
    if segs.is_empty() {
        return Err(DiskError::layout(dir, "wal: no .wal files"));
    }
    check_contiguous(dir, &segs)?;
    let mut r = RecordReader::new(segs.clone());
    let mut s = WalScan {
        segments: segs,
        metadata: None,
        hard_state: HardState::default(),
        snapshots: Vec::new(),
        records: 0,
        entries: 0,
        first_entry_index: None,
        last_entry_index: None,
        tail: WalTail::Clean,
        last_crc: 0,
    };
    let mut md_raw: Option<Vec<u8>> = None;
    while let Some(rec) = r.next_record()? {
        s.records += 1;
        let data = rec.data.unwrap_or(&[]);
        let (seg, off) = (rec.segment, rec.offset);
        let p = || {
            s.segments
                .get(seg)
                .map(|x| x.path.clone())
                .unwrap_or_default()
        };
        match rec.rtype {
            rt::ENTRY => {
                let e = decode_entry(data)
                    .map_err(|m| DiskError::corrupt(p(), off, format!("entry: {m}")))?;
                s.entries += 1;
                s.first_entry_index.get_or_insert(e.index);
                s.last_entry_index = Some(e.index);
            }
            rt::STATE => {
                s.hard_state = HardState::decode(data)
                    .map_err(|e| DiskError::corrupt(p(), off, format!("state: {e}")))?;
            }
            rt::METADATA => match &md_raw {
                Some(m) if m.as_slice() != data => {
                    return Err(DiskError::corrupt(
                        p(),
                        off,
                        "wal: conflicting metadata found",
                    ))
                }
                Some(_) => {}
                None => {
                    s.metadata = Some(
                        Metadata::decode(data)
                            .map_err(|e| DiskError::corrupt(p(), off, format!("metadata: {e}")))?,
                    );
                    md_raw = Some(data.to_vec());
                }
            },
            rt::SNAPSHOT => {
                s.snapshots.push(
                    WalSnapshot::decode(data).map_err(|e| {
                        DiskError::corrupt(p(), off, format!("snapshot record: {e}"))
                    })?,
                );
            }
            _ => {}
        }
    }
    s.tail = r.tail().cloned().unwrap_or(WalTail::Clean);
    s.last_crc = r.crc();
    Ok(s)
}

/// etcd's `ValidSnapshotEntries`: every snapshot record with index ≤ the last commit.
pub fn valid_snapshot_entries(dir: &Path) -> Result<Vec<WalSnapshot>> {
    Ok(scan(dir)?.valid_snapshots())
}
