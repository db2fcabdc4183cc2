//! The WAL (spec §2): segment names and selection, frame and record decoding, a streaming
//! CRC-verifying reader with etcd's `ReadAll` semantics, and an atomic writer.
//!
//! Memory use of the reader is bounded by one record (at most 10 MiB) plus a fixed read
//! buffer; entry payloads are located, not kept, and re-read on demand.

mod reader;
mod writer;

pub use reader::{
    read_at, scan, valid_snapshot_entries, EntryLoc, EntryReader, RecordReader, RecordRef,
    WalContents, WalScan, WalTail,
};
pub use writer::{WalWriter, WriterOptions};

use crate::proto::raw::{self, Value};
use crate::{DiskError, Result};
use std::path::{Path, PathBuf};

/// Size of a preallocated WAL segment: 64,000,000 bytes (decimal).
pub const SEGMENT_SIZE_BYTES: u64 = 64 * 1000 * 1000;
/// Records of this size or more (minus padding) are rejected by etcd's decoder.
pub const MAX_RECORD_SIZE: u64 = 10 * 1024 * 1024;
/// Torn-write detection granularity.
pub const SECTOR_SIZE: u64 = 512;

/// One `*.wal` file: `<seq>-<index>.wal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    pub seq: u64,
    /// First entry index expected in the file.
    pub index: u64,
}

/// `%016x-%016x.wal`.
pub fn segment_name(seq: u64, index: u64) -> String {
    format!("{seq:016x}-{index:016x}.wal")
}

/// Parse a segment name; `None` for anything that is not exactly `%016x-%016x.wal`
/// (so `.tmp`, `.broken` and other files are ignored).
pub fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (a, b) = stem.split_once('-')?;
    // Go's Sscanf("%016x-%016x.wal") accepts these names; etcd only ever writes 16 digits.
    let ok = |s: &str| !s.is_empty() && s.len() <= 16 && s.bytes().all(|c| c.is_ascii_hexdigit());
    if !ok(a) || !ok(b) {
        return None;
    }
    Some((
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    ))
}

/// List the segments of a WAL dir, sorted by name. Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<Segment>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DiskError::io(dir, e))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| DiskError::io(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((seq, index)) = parse_segment_name(name) {
            out.push((
                name.to_string(),
                Segment {
                    path: ent.path(),
                    seq,
                    index,
                },
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

/// Check that sequence numbers are consecutive.
pub fn check_contiguous(dir: &Path, segs: &[Segment]) -> Result<()> {
    for w in segs.windows(2) {
        if let [a, b] = w {
            if a.seq.checked_add(1) != Some(b.seq) {
                return Err(DiskError::layout(
                    dir,
                    format!(
                        "wal: file not found: segment sequence not contiguous ({} then {})",
                        a.path.display(),
                        b.path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Select the segments etcd reads for a snapshot at `snap_index` (§2.5 step 2): from the last
/// segment whose name index is ≤ `snap_index` to the end, with contiguous sequence numbers.
pub fn select_segments(dir: &Path, segs: &[Segment], snap_index: u64) -> Result<Vec<Segment>> {
    let Some(start) = segs.iter().rposition(|s| s.index <= snap_index) else {
        return Err(DiskError::layout(
            dir,
            format!("wal: file not found: no segment covers snapshot index {snap_index}"),
        ));
    };
    let sel = segs.get(start..).unwrap_or(&[]).to_vec();
    check_contiguous(dir, &sel)?;
    Ok(sel)
}

/// Frame length field for a record of `n` bytes: (field, padding).
pub fn encode_frame_size(n: usize) -> (u64, usize) {
    let pad = (8 - n % 8) % 8;
    let mut field = n as u64;
    if pad != 0 {
        field |= (0x80 | pad as u64) << 56;
    }
    (field, pad)
}

/// Decode a frame length field into (record bytes, padding bytes).
pub fn decode_frame_size(field: u64) -> (u64, u64) {
    let rec = field & 0x00ff_ffff_ffff_ffff;
    let pad = if (field as i64) < 0 {
        (field >> 56) & 0x7
    } else {
        0
    };
    (rec, pad)
}

/// A decoded `walpb.Record` borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub rtype: i64,
    pub crc: u32,
    /// `None` when the field is absent (crc records).
    pub data: Option<&'a [u8]>,
    /// Offset of `data` within the record bytes.
    pub data_pos: usize,
}

/// Decode `walpb.Record` bytes without copying.
pub fn decode_record(buf: &[u8]) -> std::result::Result<RawRecord<'_>, String> {
    let mut r = RawRecord {
        rtype: 0,
        crc: 0,
        data: None,
        data_pos: 0,
    };
    raw::scan(buf, |num, v| {
        match (num, v) {
            (1, Value::Varint(x)) => r.rtype = x as i64,
            (2, Value::Varint(x)) => r.crc = x as u32,
            (3, Value::Bytes(pos, s)) => {
                r.data = Some(s);
                r.data_pos = pos;
            }
            (1..=3, _) => return Err(raw::wrong_type("Record", num)),
            _ => {}
        }
        Ok(())
    })?;
    Ok(r)
}

/// The fields of a `raftpb.Entry` with its payload borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEntry<'a> {
    pub etype: i32,
    pub term: u64,
    pub index: u64,
    pub data: Option<&'a [u8]>,
    /// Offset of `data` within the entry bytes.
    pub data_pos: usize,
}

/// Decode `raftpb.Entry` bytes without copying the payload.
pub fn decode_entry(buf: &[u8]) -> std::result::Result<RawEntry<'_>, String> {
    let mut e = RawEntry {
        etype: 0,
        term: 0,
        index: 0,
        data: None,
        data_pos: 0,
    };
    raw::scan(buf, |num, v| {
        match (num, v) {
            (1, Value::Varint(x)) => e.etype = x as i32,
            (2, Value::Varint(x)) => e.term = x,
            (3, Value::Varint(x)) => e.index = x,
            (4, Value::Bytes(pos, s)) => {
                e.data = Some(s);
                e.data_pos = pos;
            }
            (1..=4, _) => return Err(raw::wrong_type("Entry", num)),
            _ => {}
        }
        Ok(())
    })?;
    Ok(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            segment_name(1, 0xba),
            "0000000000000001-00000000000000ba.wal"
        );
        assert_eq!(
            parse_segment_name("0000000000000001-00000000000000ba.wal"),
            Some((1, 0xba))
        );
        assert_eq!(parse_segment_name("0.tmp"), None);
        assert_eq!(
            parse_segment_name("0000000000000001-00000000000000ba.wal.broken"),
            None
        );
        assert_eq!(parse_segment_name("x-y.wal"), None);
    }

    #[test]
    fn frame_sizes() {
        assert_eq!(encode_frame_size(4), (0x8400000000000004, 4));
        assert_eq!(encode_frame_size(24), (0x18, 0));
        assert_eq!(encode_frame_size(1_000_051), (0x85000000000f4273, 5));
        assert_eq!(decode_frame_size(0x85000000000f4273), (1_000_051, 5));
        assert_eq!(decode_frame_size(0x18), (24, 0));
    }

    fn seg(seq: u64, index: u64) -> Segment {
        Segment {
            path: PathBuf::from(segment_name(seq, index)),
            seq,
            index,
        }
    }

    #[test]
    fn selection() {
        let d = Path::new("/w");
        let segs = vec![seg(0, 0), seg(1, 0xba), seg(2, 0x200)];
        assert_eq!(select_segments(d, &segs, 0).unwrap().len(), 3);
        assert_eq!(select_segments(d, &segs, 0xb9).unwrap().len(), 3);
        assert_eq!(select_segments(d, &segs, 0xba).unwrap().len(), 2);
        assert_eq!(select_segments(d, &segs, 0x1000).unwrap().len(), 1);
        let purged = vec![seg(3, 0x300), seg(4, 0x400)];
        assert!(select_segments(d, &purged, 0x10).is_err());
        let gap = vec![seg(0, 0), seg(2, 0x200)];
        assert!(select_segments(d, &gap, 0).is_err());
    }

    #[test]
    fn raw_record() {
        let b = crate::proto::encode(&crate::proto::WalRecord {
            r#type: 2,
            crc: 7,
            data: Some(vec![1, 2, 3]),
        });
        let r = decode_record(&b).unwrap();
        assert_eq!((r.rtype, r.crc, r.data), (2, 7, Some(&[1u8, 2, 3][..])));
        assert!(decode_record(&[0x0a, 0x01, 0x00]).is_err()); // field 1 as bytes
        assert!(decode_record(&[0x1a, 0x05, 0x00]).is_err()); // truncated
        assert!(decode_record(&[0x00]).is_err()); // field 0
    }
}
