//! bbolt v1.3.6 files (`member/snap/db`, the image part of a v3 snapshot file): a bounded-memory
//! reader, the consistency check `tx.Check` does, and a compacting writer.
//!
//! Spec: `etcd-on-disk.md` §5. Layout of this module:
//! - this file: constants, meta pages, page/element decoding, [`BoltDb`] (open, page reads,
//!   [`Cursor`], [`BoltDb::get`], [`BoltDb::bucket`]);
//! - [`check`]: the consistency check (every page reachable once, bounds, types, order,
//!   freelist), also the single-pass scan used by `snapshot status`;
//! - [`write`]: the compacting writer (streaming rewrite with edits; new files);
//! - [`patch`](mod@patch): the copy-on-write writer (copy of the source's pages + new pages for the edits,
//!   what a restore uses).
//!
//! # Reading model
//! The file is never mapped nor loaded whole. Every page is read with a positioned read
//! (`pread`) into a reusable buffer; a page plus its overflow pages is read at once after its
//! `overflow` count has been checked against the high-water mark and the file (or byte range)
//! length, so no length read from disk can make us allocate more than the file holds. A cursor
//! holds one buffer per tree level (bounded by [`MAX_DEPTH`]). Nothing here panics on any input:
//! every offset and length is checked, and every failure is a [`DiskError::Corrupt`] naming the
//! file, the page and its byte offset.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{DiskError, Result};

pub mod check;
pub mod patch;
pub mod stream;
pub mod write;

pub use check::{check, scan, CheckProblem, CheckReport, ScanEvent};
pub use patch::{patch, patch_into};
pub use write::{create, create_into, rewrite, rewrite_into, BucketEdit, Edits, RewriteStats};

/// bbolt's magic number (meta offset 0).
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only data format version bbolt 1.3.x reads and writes.
pub const VERSION: u32 = 2;
/// Size of a page header: id u64, flags u16, count u16, overflow u32.
pub const PAGE_HEADER_SIZE: usize = 16;
/// Size of a branch or leaf element.
pub const ELEMENT_SIZE: usize = 16;
/// Size of the bucket header stored as the value of a bucket element.
pub const BUCKET_HEADER_SIZE: usize = 16;
/// Size of the meta struct (including its checksum).
pub const META_SIZE: usize = 64;
/// Page flag: branch page.
pub const BRANCH_PAGE: u16 = 0x01;
/// Page flag: leaf page.
pub const LEAF_PAGE: u16 = 0x02;
/// Page flag: meta page.
pub const META_PAGE: u16 = 0x04;
/// Page flag: freelist page.
pub const FREELIST_PAGE: u16 = 0x10;
/// Leaf element flag: the value is a sub-bucket header.
pub const BUCKET_LEAF_FLAG: u32 = 0x01;
/// Meta freelist value meaning "no freelist stored" (etcd runs with `NoFreelistSync`).
pub const NO_FREELIST: u64 = u64::MAX;
/// bbolt's maximum key length.
pub const MAX_KEY_SIZE: usize = 32768;
/// bbolt's maximum value length.
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;
/// Deepest tree (bucket nesting levels × tree height) we follow before calling the file
/// corrupt. Real bbolt trees are a handful of levels deep; this bounds memory and stops cycles.
pub const MAX_DEPTH: usize = 64;
/// The page size bbolt assumes when meta page 0 is unreadable (the OS page size here).
pub const DEFAULT_PAGE_SIZE: u32 = 4096;

#[inline]
pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}
#[inline]
pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}
#[inline]
pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// FNV-1a 64-bit hash (bbolt's meta checksum).
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The meta struct stored at offset 16 of pages 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    pub magic: u32,
    pub version: u32,
    pub page_size: u32,
    pub flags: u32,
    /// Root bucket: page id of its root page.
    pub root: u64,
    /// Root bucket: sequence.
    pub sequence: u64,
    /// Freelist page id, or [`NO_FREELIST`].
    pub freelist: u64,
    /// High-water mark: number of pages in use.
    pub pgid: u64,
    pub txid: u64,
    pub checksum: u64,
}

impl Meta {
    /// Decode the 64 meta bytes (short input decodes as zeros, which then fails validation).
    pub fn decode(b: &[u8]) -> Meta {
        Meta {
            magic: le_u32(b, 0),
            version: le_u32(b, 4),
            page_size: le_u32(b, 8),
            flags: le_u32(b, 12),
            root: le_u64(b, 16),
            sequence: le_u64(b, 24),
            freelist: le_u64(b, 32),
            pgid: le_u64(b, 40),
            txid: le_u64(b, 48),
            checksum: le_u64(b, 56),
        }
    }

    /// Encode; the checksum field is written as stored in `self` (see [`Meta::with_checksum`]).
    pub fn encode(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        b[0..4].copy_from_slice(&self.magic.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.page_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.root.to_le_bytes());
        b[24..32].copy_from_slice(&self.sequence.to_le_bytes());
        b[32..40].copy_from_slice(&self.freelist.to_le_bytes());
        b[40..48].copy_from_slice(&self.pgid.to_le_bytes());
        b[48..56].copy_from_slice(&self.txid.to_le_bytes());
        b[56..64].copy_from_slice(&self.checksum.to_le_bytes());
        b
    }

    /// FNV-1a 64 over the first 56 bytes of the encoded meta.
    pub fn sum64(&self) -> u64 {
        fnv1a64(&self.encode()[..56])
    }

    /// The same meta with its checksum recomputed.
    pub fn with_checksum(mut self) -> Meta {
        self.checksum = self.sum64();
        self
    }

    /// bbolt's `meta.validate`: magic, version, checksum (a stored 0 is accepted).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.magic != MAGIC {
            Err(format!("invalid magic {:#010x}", self.magic))
        } else if self.version != VERSION {
            Err(format!(
                "version mismatch: {} (want {VERSION})",
                self.version
            ))
        } else if self.checksum != 0 && self.checksum != self.sum64() {
            Err(format!(
                "checksum mismatch: stored {:#018x}, computed {:#018x}",
                self.checksum,
                self.sum64()
            ))
        } else {
            Ok(())
        }
    }
}

/// One of the two meta pages as found in the file.
#[derive(Debug, Clone)]
pub struct MetaSlot {
    pub meta: Meta,
    /// Page header flags of the meta page.
    pub page_flags: u16,
    /// Why bbolt would reject it, if it would.
    pub error: Option<String>,
}

/// A decoded page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    pub id: u64,
    pub flags: u16,
    pub count: u16,
    pub overflow: u32,
}

impl PageHeader {
    pub fn decode(b: &[u8]) -> PageHeader {
        PageHeader {
            id: le_u64(b, 0),
            flags: le_u16(b, 8),
            count: le_u16(b, 10),
            overflow: le_u32(b, 12),
        }
    }
    pub fn encode(&self) -> [u8; PAGE_HEADER_SIZE] {
        let mut b = [0u8; PAGE_HEADER_SIZE];
        b[0..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..10].copy_from_slice(&self.flags.to_le_bytes());
        b[10..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..16].copy_from_slice(&self.overflow.to_le_bytes());
        b
    }
    /// bbolt's name for the page type.
    pub fn type_name(&self) -> String {
        match self.flags {
            f if f & BRANCH_PAGE != 0 => "branch".into(),
            f if f & LEAF_PAGE != 0 => "leaf".into(),
            f if f & META_PAGE != 0 => "meta".into(),
            f if f & FREELIST_PAGE != 0 => "freelist".into(),
            f => format!("unknown<{f:02x}>"),
        }
    }
}

/// An element copied out of a page: key, value, element flags.
pub type OwnedItem = (Vec<u8>, Vec<u8>, u32);

/// One element of a leaf page, borrowed from a page buffer.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub key: &'a [u8],
    /// The value; for a sub-bucket the bucket header (plus the inline page, if inline).
    pub value: &'a [u8],
    /// Element flags ([`BUCKET_LEAF_FLAG`]).
    pub flags: u32,
}

impl Item<'_> {
    pub fn is_bucket(&self) -> bool {
        self.flags & BUCKET_LEAF_FLAG != 0
    }
}

/// A bucket: its root page, or the inline leaf page stored in its parent's element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRef {
    /// Root page id; 0 for an inline bucket.
    pub root: u64,
    pub sequence: u64,
    /// For an inline bucket: the page image (header + elements + data).
    pub inline: Option<Vec<u8>>,
    /// Byte offset in the file of the inline page (for error messages); the root page's
    /// offset otherwise.
    pub offset: u64,
}

impl BucketRef {
    /// Parse a bucket element's value. `value_offset` is its byte offset in the file.
    pub fn from_value(path: &Path, value: &[u8], value_offset: u64) -> Result<BucketRef> {
        if value.len() < BUCKET_HEADER_SIZE {
            return Err(DiskError::corrupt(
                path,
                value_offset,
                format!(
                    "bucket header is {} bytes, want at least {BUCKET_HEADER_SIZE}",
                    value.len()
                ),
            ));
        }
        let root = le_u64(value, 0);
        let sequence = le_u64(value, 8);
        if root == 0 {
            let img = value.get(BUCKET_HEADER_SIZE..).unwrap_or(&[]);
            if img.len() < PAGE_HEADER_SIZE {
                return Err(DiskError::corrupt(
                    path,
                    value_offset,
                    format!(
                        "inline bucket page is {} bytes, shorter than a page header",
                        img.len()
                    ),
                ));
            }
            Ok(BucketRef {
                root,
                sequence,
                inline: Some(img.to_vec()),
                offset: value_offset + BUCKET_HEADER_SIZE as u64,
            })
        } else {
            Ok(BucketRef {
                root,
                sequence,
                inline: None,
                offset: 0,
            })
        }
    }
}

/// A page image held in a buffer, with checked element access.
#[derive(Debug)]
pub(crate) struct NodeView<'a> {
    pub buf: &'a [u8],
    pub hdr: PageHeader,
    /// File offset of `buf[0]`.
    pub offset: u64,
}

impl<'a> NodeView<'a> {
    /// Wrap a page image; checks the element array fits.
    pub fn new(path: &Path, buf: &'a [u8], offset: u64) -> Result<NodeView<'a>> {
        if buf.len() < PAGE_HEADER_SIZE {
            return Err(DiskError::corrupt(
                path,
                offset,
                "page shorter than its header",
            ));
        }
        let hdr = PageHeader::decode(buf);
        let need = PAGE_HEADER_SIZE + usize::from(hdr.count) * ELEMENT_SIZE;
        if need > buf.len() {
            return Err(DiskError::corrupt(
                path,
                offset,
                format!(
                    "page {}: {} elements need {need} bytes, page has {}",
                    hdr.id,
                    hdr.count,
                    buf.len()
                ),
            ));
        }
        Ok(NodeView { buf, hdr, offset })
    }

    pub fn count(&self) -> usize {
        usize::from(self.hdr.count)
    }
    pub fn is_leaf(&self) -> bool {
        self.hdr.flags & LEAF_PAGE != 0
    }
    pub fn is_branch(&self) -> bool {
        self.hdr.flags & BRANCH_PAGE != 0
    }

    fn slice(
        &self,
        path: &Path,
        e: usize,
        pos: u32,
        len: usize,
        what: &str,
    ) -> Result<(usize, &'a [u8])> {
        let start = e + pos as usize;
        let end = start.checked_add(len);
        match end.and_then(|end| self.buf.get(start..end)) {
            Some(s) => Ok((start, s)),
            None => Err(DiskError::corrupt(
                path,
                self.offset + e as u64,
                format!(
                    "page {}: element at +{e}: {what} [{start}, +{len}) outside the {}-byte page",
                    self.hdr.id,
                    self.buf.len()
                ),
            )),
        }
    }

    /// Leaf element `i` (caller guarantees `i < count`): key, value, flags, value's offset.
    #[inline]
    pub fn leaf(&self, path: &Path, i: usize) -> Result<(Item<'a>, u64)> {
        let e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
        let flags = le_u32(self.buf, e);
        let pos = le_u32(self.buf, e + 4);
        let ksize = le_u32(self.buf, e + 8) as usize;
        let vsize = le_u32(self.buf, e + 12) as usize;
        let (kstart, kv) = self.slice(path, e, pos, ksize + vsize, "key/value")?;
        let (key, value) = kv.split_at(ksize);
        Ok((
            Item { key, value, flags },
            self.offset + (kstart + ksize) as u64,
        ))
    }

    /// Branch element `i`: key and child page id.
    #[inline]
    pub fn branch(&self, path: &Path, i: usize) -> Result<(&'a [u8], u64)> {
        let e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
        let pos = le_u32(self.buf, e);
        let ksize = le_u32(self.buf, e + 4) as usize;
        let pgid = le_u64(self.buf, e + 8);
        let (_, key) = self.slice(path, e, pos, ksize, "key")?;
        Ok((key, pgid))
    }
}

/// An open bbolt file (or a byte range of one), read with positioned reads.
#[derive(Debug)]
pub struct BoltDb {
    file: File,
    path: PathBuf,
    base: u64,
    len: u64,
    page_size: u32,
    meta: Meta,
    metas: [MetaSlot; 2],
    meta_index: usize,
}

impl BoltDb {
    /// Open a whole file as a bbolt db.
    pub fn open(path: impl AsRef<Path>) -> Result<BoltDb> {
        let path = path.as_ref();
        let file = crate::error::open_regular(path)?;
        let len = file.metadata().map_err(|e| DiskError::io(path, e))?.len();
        BoltDb::from_file(file, path, 0, len)
    }

    /// Open `len` bytes of a file starting at `base` (e.g. a v3 snapshot file without its
    /// 32-byte trailer). Offsets in errors are file offsets.
    pub fn open_range(path: impl AsRef<Path>, base: u64, len: u64) -> Result<BoltDb> {
        let path = path.as_ref();
        let file = crate::error::open_regular(path)?;
        BoltDb::from_file(file, path, base, len)
    }

    /// Use an already open file (read access is enough).
    pub fn from_file(file: File, path: &Path, base: u64, len: u64) -> Result<BoltDb> {
        let path = path.to_path_buf();
        let mut first = [0u8; 0x1000];
        if len < first.len() as u64 {
            return Err(DiskError::corrupt(
                &path,
                base,
                format!(
                    "file is {len} bytes, too short for a bbolt db (at least one 4096-byte page)"
                ),
            ));
        }
        file.read_exact_at(&mut first, base)
            .map_err(|e| DiskError::io(&path, e))?;
        let slot0 = meta_slot(&first);
        let page_size = if slot0.error.is_none() {
            slot0.meta.page_size
        } else {
            DEFAULT_PAGE_SIZE
        };
        if !(1024..=(1 << 20)).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(DiskError::corrupt(
                &path,
                base + 16 + 8,
                format!("unsupported page size {page_size}"),
            ));
        }
        let slot1 = if len >= 2 * u64::from(page_size) {
            let mut p1 = [0u8; PAGE_HEADER_SIZE + META_SIZE];
            file.read_exact_at(&mut p1, base + u64::from(page_size))
                .map_err(|e| DiskError::io(&path, e))?;
            meta_slot(&p1)
        } else {
            MetaSlot {
                meta: Meta::default(),
                page_flags: 0,
                error: Some("file too short for meta page 1".into()),
            }
        };
        // bbolt: prefer the higher txid; fall back to the other if invalid.
        let (a, b) = if slot1.meta.txid > slot0.meta.txid {
            (1, 0)
        } else {
            (0, 1)
        };
        let slots = [slot0, slot1];
        let meta_index = if slots[a].error.is_none() {
            a
        } else if slots[b].error.is_none() {
            b
        } else {
            return Err(DiskError::corrupt(
                &path,
                base + 16,
                format!(
                    "both meta pages invalid: meta 0: {}; meta 1: {}",
                    slots[0].error.as_deref().unwrap_or(""),
                    slots[1].error.as_deref().unwrap_or("")
                ),
            ));
        };
        let meta = slots[meta_index].meta;
        let meta_off = base + meta_index as u64 * u64::from(page_size) + 16;
        let ps = u64::from(page_size);
        let need = meta.pgid.checked_mul(ps);
        match need {
            Some(n) if n <= len => {}
            _ => {
                return Err(DiskError::corrupt(
                    &path,
                    meta_off + 40,
                    format!(
                        "meta {meta_index}: high-water mark {} pages x {page_size} bytes exceeds the {len}-byte file (truncated?)",
                        meta.pgid
                    ),
                ))
            }
        }
        if meta.root < 2 || meta.root >= meta.pgid {
            return Err(DiskError::corrupt(
                &path,
                meta_off + 16,
                format!(
                    "meta {meta_index}: root page {} outside [2, {})",
                    meta.root, meta.pgid
                ),
            ));
        }
        Ok(BoltDb {
            file,
            path,
            base,
            len,
            page_size,
            meta,
            metas: slots,
            meta_index,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn page_size(&self) -> u32 {
        self.page_size
    }
    /// The meta bbolt would use.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }
    /// Which meta page (0 or 1) was chosen.
    pub fn meta_index(&self) -> usize {
        self.meta_index
    }
    /// Both meta pages as found.
    pub fn metas(&self) -> &[MetaSlot; 2] {
        &self.metas
    }
    /// Bytes of the db image: high-water mark × page size (what `snapshot status` calls size).
    pub fn image_size(&self) -> u64 {
        self.meta.pgid.saturating_mul(u64::from(self.page_size))
    }
    /// Length of the byte range opened.
    pub fn range_len(&self) -> u64 {
        self.len
    }
    /// The underlying file (for kernel-side copies of page ranges, e.g. [`patch_into`]).
    pub fn file(&self) -> &File {
        &self.file
    }
    /// File offset of page 0 (0 for a whole file; the image may be a range of a larger file).
    pub fn base(&self) -> u64 {
        self.base
    }
    /// File offset of page `pgid`.
    pub fn page_offset(&self, pgid: u64) -> u64 {
        self.base
            .saturating_add(pgid.saturating_mul(u64::from(self.page_size)))
    }
    /// The root bucket (whose elements are the top-level buckets).
    pub fn root(&self) -> BucketRef {
        BucketRef {
            root: self.meta.root,
            sequence: self.meta.sequence,
            inline: None,
            offset: 0,
        }
    }

    /// Read page `pgid` and its overflow pages into `buf` (resized; capacity reused).
    /// Checks the page id is below the high-water mark and the overflow fits before reading it.
    pub fn read_page(&self, pgid: u64, buf: &mut Vec<u8>) -> Result<PageHeader> {
        let ps = self.page_size as usize;
        let off = self.page_offset(pgid);
        if pgid >= self.meta.pgid {
            return Err(DiskError::corrupt(
                &self.path,
                off,
                format!("page {pgid}: beyond the high-water mark {}", self.meta.pgid),
            ));
        }
        if buf.len() < ps {
            buf.resize(ps, 0);
        }
        let first = buf.get_mut(..ps).unwrap_or_default();
        self.file
            .read_exact_at(first, off)
            .map_err(|e| DiskError::io(&self.path, e))?;
        let hdr = PageHeader::decode(first);
        let total_pages = u64::from(hdr.overflow) + 1;
        if pgid.saturating_add(u64::from(hdr.overflow)) >= self.meta.pgid {
            return Err(DiskError::corrupt(
                &self.path,
                off + 12,
                format!(
                    "page {pgid}: overflow {} runs past the high-water mark {}",
                    hdr.overflow, self.meta.pgid
                ),
            ));
        }
        // pgid + overflow < meta.pgid and meta.pgid * ps <= len: the read stays in the file.
        let total = (total_pages as usize).saturating_mul(ps);
        if buf.len() != total {
            buf.resize(total, 0);
        }
        if total > ps {
            let rest = buf.get_mut(ps..).unwrap_or_default();
            self.file
                .read_exact_at(rest, off + ps as u64)
                .map_err(|e| DiskError::io(&self.path, e))?;
        }
        Ok(hdr)
    }

    /// A cursor over the elements of `bucket` in key order (sub-bucket elements included,
    /// flagged).
    pub fn cursor(&self, bucket: &BucketRef) -> Cursor<'_> {
        Cursor {
            db: self,
            bucket: bucket.clone(),
            stack: Vec::new(),
            pool: Vec::new(),
            started: false,
        }
    }

    /// A cursor over the top-level buckets (the root bucket's elements).
    pub fn buckets(&self) -> Cursor<'_> {
        self.cursor(&self.root())
    }

    /// Find the element `key` in `bucket`: `(value, flags)`.
    pub fn get_item(&self, bucket: &BucketRef, key: &[u8]) -> Result<Option<(Vec<u8>, u32, u64)>> {
        let mut buf = Vec::new();
        let (mut offset, inline) = match &bucket.inline {
            Some(img) => (bucket.offset, Some(img.as_slice())),
            None => (self.page_offset(bucket.root), None),
        };
        let mut pgid = bucket.root;
        for _ in 0..MAX_DEPTH {
            let page: &[u8] = match inline {
                Some(img) => img,
                None => {
                    self.read_page(pgid, &mut buf)?;
                    offset = self.page_offset(pgid);
                    &buf
                }
            };
            let node = NodeView::new(&self.path, page, offset)?;
            if node.is_leaf() {
                let (mut lo, mut hi) = (0usize, node.count());
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    let (item, voff) = node.leaf(&self.path, mid)?;
                    match item.key.cmp(key) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => {
                            return Ok(Some((item.value.to_vec(), item.flags, voff)))
                        }
                    }
                }
                return Ok(None);
            }
            if !node.is_branch() || inline.is_some() || node.count() == 0 {
                return Err(DiskError::corrupt(
                    &self.path,
                    offset,
                    format!(
                        "page {pgid}: expected a branch or leaf page, found {}",
                        node.hdr.type_name()
                    ),
                ));
            }
            // Last element whose key <= key (or the first).
            let (mut lo, mut hi) = (0usize, node.count());
            while lo < hi {
                let mid = (lo + hi) / 2;
                let (k, _) = node.branch(&self.path, mid)?;
                if k <= key {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let (_, child) = node.branch(&self.path, lo.saturating_sub(1))?;
            pgid = child;
        }
        Err(DiskError::corrupt(
            &self.path,
            offset,
            format!("tree deeper than {MAX_DEPTH} levels (cycle?)"),
        ))
    }

    /// The last element of `bucket` (largest key): `(key, value, flags)`. Reads one page per
    /// tree level (the rightmost path).
    pub fn last(&self, bucket: &BucketRef) -> Result<Option<OwnedItem>> {
        let mut buf = Vec::new();
        let mut pgid = bucket.root;
        for _ in 0..MAX_DEPTH {
            let (page, offset): (&[u8], u64) = match &bucket.inline {
                Some(img) => (img, bucket.offset),
                None => {
                    self.read_page(pgid, &mut buf)?;
                    (&buf, self.page_offset(pgid))
                }
            };
            let node = NodeView::new(&self.path, page, offset)?;
            let Some(i) = node.count().checked_sub(1) else {
                return Ok(None);
            };
            if node.is_leaf() {
                let (item, _) = node.leaf(&self.path, i)?;
                return Ok(Some((item.key.to_vec(), item.value.to_vec(), item.flags)));
            }
            if !node.is_branch() || bucket.inline.is_some() {
                return Err(DiskError::corrupt(
                    &self.path,
                    offset,
                    format!(
                        "page {pgid}: expected a branch or leaf page, found {}",
                        node.hdr.type_name()
                    ),
                ));
            }
            pgid = node.branch(&self.path, i)?.1;
        }
        Err(DiskError::corrupt(
            &self.path,
            self.page_offset(pgid),
            format!("tree deeper than {MAX_DEPTH} levels (cycle?)"),
        ))
    }

    /// Value of plain key `key` in `bucket` (`None` if absent or if it is a sub-bucket).
    pub fn get(&self, bucket: &BucketRef, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(match self.get_item(bucket, key)? {
            Some((v, flags, _)) if flags & BUCKET_LEAF_FLAG == 0 => Some(v),
            _ => None,
        })
    }

    /// Sub-bucket `name` of `parent` (`None` if absent or a plain key).
    pub fn bucket_in(&self, parent: &BucketRef, name: &[u8]) -> Result<Option<BucketRef>> {
        match self.get_item(parent, name)? {
            Some((v, flags, voff)) if flags & BUCKET_LEAF_FLAG != 0 => {
                Ok(Some(BucketRef::from_value(&self.path, &v, voff)?))
            }
            _ => Ok(None),
        }
    }

    /// Top-level bucket `name`.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<BucketRef>> {
        self.bucket_in(&self.root(), name)
    }

    /// Call `f` for every element of `bucket` in order.
    pub fn for_each(
        &self,
        bucket: &BucketRef,
        mut f: impl FnMut(Item<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut c = self.cursor(bucket);
        while let Some(item) = c.next()? {
            f(item)?;
        }
        Ok(())
    }
}

fn meta_slot(page: &[u8]) -> MetaSlot {
    let hdr = PageHeader::decode(page);
    let meta = Meta::decode(page.get(PAGE_HEADER_SIZE..).unwrap_or(&[]));
    MetaSlot {
        meta,
        page_flags: hdr.flags,
        error: meta.validate().err(),
    }
}

#[derive(Debug)]
struct Frame {
    buf: Vec<u8>,
    pgid: u64,
    offset: u64,
    leaf: bool,
    count: usize,
    index: usize,
}

/// Streaming in-order cursor over one bucket's elements. Memory: one page buffer per tree
/// level, reused.
#[derive(Debug)]
pub struct Cursor<'db> {
    db: &'db BoltDb,
    bucket: BucketRef,
    stack: Vec<Frame>,
    pool: Vec<Vec<u8>>,
    started: bool,
}

impl<'db> Cursor<'db> {
    fn push(&mut self, pgid: u64) -> Result<()> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(DiskError::corrupt(
                &self.db.path,
                self.db.page_offset(pgid),
                format!("page {pgid}: tree deeper than {MAX_DEPTH} levels (cycle?)"),
            ));
        }
        let mut buf = self.pool.pop().unwrap_or_default();
        let (offset, hdr) = match (&self.bucket.inline, self.stack.is_empty()) {
            (Some(img), true) => {
                buf.clear();
                buf.extend_from_slice(img);
                (self.bucket.offset, PageHeader::decode(img))
            }
            _ => {
                let hdr = self.db.read_page(pgid, &mut buf)?;
                (self.db.page_offset(pgid), hdr)
            }
        };
        let node = NodeView::new(&self.db.path, &buf, offset)?;
        let leaf = node.is_leaf();
        if !leaf && !node.is_branch() {
            return Err(DiskError::corrupt(
                &self.db.path,
                offset,
                format!(
                    "page {pgid}: expected a branch or leaf page, found {}",
                    hdr.type_name()
                ),
            ));
        }
        if !leaf && self.bucket.inline.is_some() {
            return Err(DiskError::corrupt(
                &self.db.path,
                offset,
                "inline bucket page is not a leaf",
            ));
        }
        let count = node.count();
        self.stack.push(Frame {
            buf,
            pgid,
            offset,
            leaf,
            count,
            index: 0,
        });
        Ok(())
    }

    /// The next element, or `None` at the end. The borrow lasts until the next call.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item<'_>>> {
        if !self.started {
            self.started = true;
            let root = self.bucket.root;
            self.push(root)?;
        }
        let i = loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            if top.index >= top.count {
                if let Some(f) = self.stack.pop() {
                    self.pool.push(f.buf);
                }
                continue;
            }
            let i = top.index;
            top.index += 1;
            if top.leaf {
                break i;
            }
            let node = NodeView {
                buf: &top.buf,
                hdr: PageHeader::decode(&top.buf),
                offset: top.offset,
            };
            let (_, child) = node.branch(&self.db.path, i)?;
            self.push(child)?;
        };
        let Some(top) = self.stack.last() else {
            return Ok(None);
        };
        let node = NodeView {
            buf: &top.buf,
            hdr: PageHeader::decode(&top.buf),
            offset: top.offset,
        };
        let (item, _) = node.leaf(&self.db.path, i)?;
        Ok(Some(item))
    }

    /// Like [`Cursor::next`] but also returns the file offset of the value.
    pub fn next_with_offset(&mut self) -> Result<Option<(Item<'_>, u64)>> {
        if self.next()?.is_none() {
            return Ok(None);
        }
        let Some(top) = self.stack.last() else {
            return Ok(None);
        };
        let node = NodeView {
            buf: &top.buf,
            hdr: PageHeader::decode(&top.buf),
            offset: top.offset,
        };
        let r = node.leaf(&self.db.path, top.index.saturating_sub(1))?;
        Ok(Some(r))
    }

    /// Page id of the leaf the last element came from (0 for inline buckets).
    pub fn current_page(&self) -> u64 {
        self.stack.last().map(|f| f.pgid).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn meta_roundtrip_and_validate() {
        // The spec's example meta: root 3, no freelist, pgid 5, txid 12, page size 4096.
        let m = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: 4096,
            flags: 0,
            root: 3,
            sequence: 0,
            freelist: NO_FREELIST,
            pgid: 5,
            txid: 12,
            checksum: 0,
        }
        .with_checksum();
        let b = m.encode();
        assert_eq!(
            &b[..12],
            &[0xed, 0xda, 0x0c, 0xed, 2, 0, 0, 0, 0, 0x10, 0, 0]
        );
        assert_eq!(Meta::decode(&b), m);
        assert!(m.validate().is_ok());
        let mut bad = m;
        bad.txid = 13;
        assert!(bad.validate().unwrap_err().contains("checksum"));
        bad.checksum = 0; // a stored zero checksum is accepted
        assert!(bad.validate().is_ok());
        bad.version = 1;
        assert!(bad.validate().is_err());
        assert!(Meta::decode(&[]).validate().is_err());
    }

    #[test]
    fn node_view_bounds() {
        let p = Path::new("x");
        // leaf with one element whose key runs past the page
        let mut page = vec![0u8; 64];
        page[..16].copy_from_slice(
            &PageHeader {
                id: 2,
                flags: LEAF_PAGE,
                count: 1,
                overflow: 0,
            }
            .encode(),
        );
        page[16..20].copy_from_slice(&0u32.to_le_bytes());
        page[20..24].copy_from_slice(&16u32.to_le_bytes());
        page[24..28].copy_from_slice(&100u32.to_le_bytes());
        let n = NodeView::new(p, &page, 8192).unwrap_or_else(|e| panic!("{e}"));
        let e = n.leaf(p, 0).unwrap_err().to_string();
        assert!(e.contains("offset 8208"), "{e}");
        // count larger than the page
        page[10..12].copy_from_slice(&100u16.to_le_bytes());
        assert!(NodeView::new(p, &page, 0).is_err());
    }

    #[test]
    fn bucket_ref_parsing() {
        let p = Path::new("x");
        assert!(BucketRef::from_value(p, &[0u8; 8], 0).is_err());
        assert!(BucketRef::from_value(p, &[0u8; 20], 0).is_err()); // inline without a page header
        let mut v = vec![0u8; 32];
        v[8] = 7;
        let b = BucketRef::from_value(p, &v, 100).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((b.root, b.sequence, b.offset), (0, 7, 116));
        v[0] = 9;
        assert_eq!(
            BucketRef::from_value(p, &v, 100).map(|b| b.root).ok(),
            Some(9)
        );
    }
}
