//! The compacting bbolt writer: a **streaming rewrite**.
//!
//! # Design (and why)
//! The source db is read in key order with the bounded-memory [`Cursor`](super::Cursor); a
//! sorted set of [`Edits`] is merged in; the result is bulk-loaded bottom-up into a brand-new
//! file: a leaf page is written as soon as the next element would not fit, its first key and
//! page id go up to the branch level above, which is itself written when full, and so on. Page
//! ids are allocated in increasing order, so the output is written strictly sequentially
//! (1 MiB buffered `pwrite`s) except for the two meta pages, written last. Memory holds one
//! page per tree level plus the edits; nothing scales with the db.
//!
//! Two writers exist, for two jobs. This compacting rewrite reads and re-encodes every element
//! in user space (about 3× a `cp` of the file), but its output has no free pages and full
//! pages, like etcd's defragmentation; it is what [`create`] and compaction use, and it leaves
//! the source untouched. The copy-on-write [`patch`](mod@super::patch) writer (bbolt's own way: the
//! source's pages copied kernel-side, new pages appended for the changed leaves and their
//! ancestors) costs about a `cp` plus a few pages and keeps the source's layout and free pages,
//! as etcd's own restore does; it is what a restore uses. Both take the same [`Edits`] and give
//! the same content.
//!
//! # What bbolt 1.3.6 accepts, and what we write
//! - Leaves of small elements are filled up to the page size (bbolt's compaction fill); values
//!   larger than a page go in multi-page nodes (overflow pages) packed by `leaf_full` so that
//!   little of the last page is wasted (at most 8 pages per node); element count per page < 0xFFFF.
//! - A sub-bucket is written inline (in its parent's leaf element) exactly when bbolt would
//!   (`inlineable`): one leaf, no sub-buckets, size ≤ page size / 4. Otherwise it gets its own tree.
//! - Branch keys are the first key of each child; a branch node keeps at least two children even
//!   when their keys overflow a page (so keys near the 32 KiB limit still converge to one root);
//!   a branch level with one child collapses.
//! - Meta: the source's page size and root sequence, `freelist = 0xFFFF_FFFF_FFFF_FFFF` (no freelist
//!   stored: etcd itself runs with `NoFreelistSync`; bbolt rebuilds the free list by scanning,
//!   and a bbolt opened without that option writes one on open), `pgid` = pages written,
//!   `txid` = source txid + 1 in meta page `txid % 2`, `txid − 1` in the other, both checksummed.
//!   The file length is exactly `pgid × pageSize`.
//!
//! # Files
//! [`rewrite`] writes `DST.part` (mode 0600), fsyncs, renames onto `DST`, fsyncs the directory,
//! and removes the `.part` on error. [`rewrite_into`] writes into a caller-provided file (from
//! offset 0, truncating/extending it to the exact size) and fsyncs it; the caller does the rename.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{
    BoltDb, BucketRef, Meta, PageHeader, BRANCH_PAGE, BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG,
    ELEMENT_SIZE, LEAF_PAGE, MAGIC, MAX_DEPTH, MAX_KEY_SIZE, MAX_VALUE_SIZE, META_PAGE,
    NO_FREELIST, PAGE_HEADER_SIZE, VERSION,
};
use crate::error::{DiskError, Result};

/// Edits of one top-level bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketEdit {
    /// Ignore the source bucket's content (set by clear/delete of the bucket).
    pub drop_source: bool,
    /// The bucket must not exist in the output.
    pub delete: bool,
    /// The bucket must exist in the output (created if the source lacks it).
    pub create: bool,
    /// Key → new value, or `None` to delete the key.
    pub keys: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

/// A sorted set of edits to top-level buckets, applied by [`rewrite`]. Later calls override
/// earlier ones for the same key; a put into a bucket the source lacks creates it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    pub buckets: BTreeMap<Vec<u8>, BucketEdit>,
}

fn check_key(what: &str, k: &[u8]) -> Result<()> {
    if k.is_empty() {
        Err(DiskError::Invalid(format!("{what} must not be empty")))
    } else if k.len() > MAX_KEY_SIZE {
        Err(DiskError::Invalid(format!(
            "{what} is {} bytes, bbolt allows {MAX_KEY_SIZE}",
            k.len()
        )))
    } else {
        Ok(())
    }
}

impl Edits {
    pub fn new() -> Edits {
        Edits::default()
    }
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
    fn entry(&mut self, bucket: &[u8]) -> Result<&mut BucketEdit> {
        check_key("bucket name", bucket)?;
        Ok(self.buckets.entry(bucket.to_vec()).or_default())
    }
    /// Put `key` = `value` into `bucket` (created if missing).
    pub fn put(&mut self, bucket: &[u8], key: &[u8], value: &[u8]) -> Result<()> {
        check_key("key", key)?;
        if value.len() > MAX_VALUE_SIZE {
            return Err(DiskError::Invalid(format!(
                "value is {} bytes, bbolt allows {MAX_VALUE_SIZE}",
                value.len()
            )));
        }
        let e = self.entry(bucket)?;
        e.delete = false;
        e.create = true;
        e.keys.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }
    /// Delete `key` from `bucket` (no-op if absent).
    pub fn delete(&mut self, bucket: &[u8], key: &[u8]) -> Result<()> {
        check_key("key", key)?;
        self.entry(bucket)?.keys.insert(key.to_vec(), None);
        Ok(())
    }
    /// Make sure `bucket` exists.
    pub fn create_bucket(&mut self, bucket: &[u8]) -> Result<()> {
        let e = self.entry(bucket)?;
        e.delete = false;
        e.create = true;
        Ok(())
    }
    /// Remove `bucket` and everything in it (earlier edits of it are dropped).
    pub fn delete_bucket(&mut self, bucket: &[u8]) -> Result<()> {
        let e = self.entry(bucket)?;
        *e = BucketEdit {
            drop_source: true,
            delete: true,
            create: false,
            keys: BTreeMap::new(),
        };
        Ok(())
    }
    /// Delete every key of `bucket` but keep (or create) the bucket.
    pub fn clear_bucket(&mut self, bucket: &[u8]) -> Result<()> {
        let e = self.entry(bucket)?;
        *e = BucketEdit {
            drop_source: true,
            delete: false,
            create: true,
            keys: BTreeMap::new(),
        };
        Ok(())
    }
}

/// What a rewrite or a patch produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteStats {
    /// High-water mark of the new file (pages).
    pub pages: u64,
    /// Size of the new file in bytes (= pages × page size).
    pub bytes: u64,
    pub page_size: u32,
    pub txid: u64,
    /// Elements written, all buckets (sub-bucket elements included). For a
    /// [`patch`](mod@super::patch), only those of the pages it wrote (copied pages are not
    /// counted).
    pub elements: u64,
    /// Top-level buckets in the output.
    pub buckets: u64,
}

const FLUSH_AT: usize = 1 << 20;
/// Largest leaf node (in pages) the packing rule builds from large values.
const MAX_NODE_PAGES: usize = 8;

/// Appends pages: `next` is the page id the next node gets, `off` the file offset of the first
/// byte not yet written (`buf` holds what is waiting, flushed in 1 MiB `pwrite`s).
pub(super) struct Sink<'f> {
    pub(super) file: &'f File,
    pub(super) path: &'f Path,
    pub(super) ps: usize,
    pub(super) next: u64,
    pub(super) buf: Vec<u8>,
    pub(super) off: u64,
}

#[derive(Default)]
pub(super) struct NodeBuf {
    /// (flags, ksize, vsize) for leaves; (0, ksize, pgid) for branches.
    pub(super) elems: Vec<(u32, u32, u64)>,
    data: Vec<u8>,
    size: usize,
}

impl NodeBuf {
    pub(super) fn new() -> NodeBuf {
        let mut n = NodeBuf::default();
        n.clear();
        n
    }
    pub(super) fn clear(&mut self) {
        self.elems.clear();
        self.data.clear();
        self.size = PAGE_HEADER_SIZE;
    }
    pub(super) fn first_key(&self) -> &[u8] {
        match self.elems.first() {
            Some(&(_, k, _)) => self.data.get(..k as usize).unwrap_or(&[]),
            None => &[],
        }
    }
    /// Append the page image (header with `id`, elements, data) to `out`.
    fn encode(&self, leaf: bool, id: u64, overflow: u32, out: &mut Vec<u8>) {
        let n = self.elems.len();
        let hdr = PageHeader {
            id,
            flags: if leaf { LEAF_PAGE } else { BRANCH_PAGE },
            count: n as u16,
            overflow,
        };
        out.extend_from_slice(&hdr.encode());
        let mut data_off = PAGE_HEADER_SIZE + n * ELEMENT_SIZE;
        for (i, &(flags, ksize, v)) in self.elems.iter().enumerate() {
            let pos = (data_off - (PAGE_HEADER_SIZE + i * ELEMENT_SIZE)) as u32;
            if leaf {
                out.extend_from_slice(&flags.to_le_bytes());
                out.extend_from_slice(&pos.to_le_bytes());
                out.extend_from_slice(&ksize.to_le_bytes());
                out.extend_from_slice(&(v as u32).to_le_bytes());
                data_off += ksize as usize + v as usize;
            } else {
                out.extend_from_slice(&pos.to_le_bytes());
                out.extend_from_slice(&ksize.to_le_bytes());
                out.extend_from_slice(&v.to_le_bytes());
                data_off += ksize as usize;
            }
        }
        out.extend_from_slice(&self.data);
    }
}

impl Sink<'_> {
    pub(super) fn write_node(&mut self, leaf: bool, node: &NodeBuf) -> Result<u64> {
        let pages = node.size.div_ceil(self.ps).max(1);
        let overflow = u32::try_from(pages - 1).map_err(|_| {
            DiskError::Invalid(format!(
                "node of {} bytes is too large for bbolt",
                node.size
            ))
        })?;
        if node.elems.len() >= 0xFFFF {
            return Err(DiskError::Invalid(
                "more than 65534 elements in one page".into(),
            ));
        }
        let id = self.next;
        self.next += pages as u64;
        let start = self.buf.len();
        node.encode(leaf, id, overflow, &mut self.buf);
        self.buf.resize(start + pages * self.ps, 0);
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(id)
    }
    pub(super) fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.file
                .write_all_at(&self.buf, self.off)
                .map_err(|e| DiskError::io(self.path, e))?;
            self.off += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

struct Level {
    node: NodeBuf,
}

/// Branch fill rule (shared with the patch writer): a branch node is full when the next element
/// would not fit in one page, but it keeps at least two children, so every level has fewer nodes
/// than the one below it and the tree converges to one root even with keys near bbolt's 32 KiB
/// limit (bbolt itself never splits a node of four or fewer elements); and it stays below
/// bbolt's 16-bit element count.
pub(super) fn branch_full(node: &NodeBuf, esize: usize, ps: usize) -> bool {
    node.elems.len() >= 0xFFFE || (node.elems.len() >= 2 && node.size + esize > ps)
}

/// Append a branch element (`key` → child `pgid`) to `node`.
pub(super) fn branch_push(node: &mut NodeBuf, key: &[u8], pgid: u64) {
    node.elems.push((0, key.len() as u32, pgid));
    node.data.extend_from_slice(key);
    node.size += ELEMENT_SIZE + key.len();
}

/// Bulk-loads one bucket's B+tree from elements given in increasing key order.
pub(super) struct TreeBuilder {
    ps: usize,
    leaf: NodeBuf,
    leaf_pages: u64,
    has_sub: bool,
    levels: Vec<Level>,
    last_key: Vec<u8>,
    pub(super) count: u64,
    /// Leaves-only mode ([`TreeBuilder::leaves`]): the (first key, page id) of each leaf
    /// written, instead of branch levels above them.
    collected: Option<Vec<(Vec<u8>, u64)>>,
}

pub(super) enum Built {
    Root(u64),
    Inline(Vec<u8>),
}

impl TreeBuilder {
    pub(super) fn new(ps: usize) -> TreeBuilder {
        TreeBuilder {
            ps,
            leaf: NodeBuf::new(),
            leaf_pages: 0,
            has_sub: false,
            levels: Vec::new(),
            last_key: Vec::new(),
            count: 0,
            collected: None,
        }
    }

    /// A builder that only packs leaves (same fill rule); [`TreeBuilder::finish_leaves`]
    /// returns them for the caller to link into an existing tree.
    pub(super) fn leaves(ps: usize) -> TreeBuilder {
        let mut tb = TreeBuilder::new(ps);
        tb.collected = Some(Vec::new());
        tb
    }

    pub(super) fn add(
        &mut self,
        sink: &mut Sink<'_>,
        key: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<()> {
        if self.count > 0 && key <= self.last_key.as_slice() {
            return Err(DiskError::corrupt(
                sink.path,
                0,
                format!(
                    "keys out of order while writing: {:?} after {:?}",
                    Esc(key),
                    Esc(&self.last_key)
                ),
            ));
        }
        check_key("key", key)?;
        let esize = ELEMENT_SIZE + key.len() + value.len();
        if !self.leaf.elems.is_empty() && self.leaf_full(esize) {
            self.flush_leaf(sink)?;
        }
        self.leaf
            .elems
            .push((flags, key.len() as u32, value.len() as u64));
        self.leaf.data.extend_from_slice(key);
        self.leaf.data.extend_from_slice(value);
        self.leaf.size += esize;
        if flags & BUCKET_LEAF_FLAG != 0 {
            self.has_sub = true;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.count += 1;
        Ok(())
    }

    /// Packing rule for leaves. Small elements: fill one page. Large values (overflow pages):
    /// keep adding while the element fits in the pages the node already needs; when it would need
    /// another page, stop if the last page is nearly full (< 1/8 page unused) or the node reached
    /// [`MAX_NODE_PAGES`], else take it (a multi-page node wastes at most the tail of its last
    /// page, where one value per node would waste up to a page per value).
    fn leaf_full(&self, esize: usize) -> bool {
        let s = self.leaf.size;
        let ps = self.ps;
        if self.leaf.elems.len() >= 0xFFFE {
            return true;
        }
        let allocated = s.div_ceil(ps) * ps;
        if s + esize <= allocated {
            return false;
        }
        if s <= ps && esize < ps {
            return true; // the ordinary small-element case: one page per leaf
        }
        s + esize > MAX_NODE_PAGES * ps || allocated - s < ps / 8
    }

    fn flush_leaf(&mut self, sink: &mut Sink<'_>) -> Result<()> {
        let pgid = sink.write_node(true, &self.leaf)?;
        let first = self.leaf.first_key().to_vec();
        self.leaf.clear();
        self.leaf_pages += 1;
        if let Some(c) = self.collected.as_mut() {
            c.push((first, pgid));
            return Ok(());
        }
        self.push_branch(sink, 0, &first, pgid)
    }

    /// Leaves-only mode: write the last leaf and return every leaf's (first key, page id), in
    /// order; at least one leaf (possibly empty) is written.
    pub(super) fn finish_leaves(mut self, sink: &mut Sink<'_>) -> Result<Vec<(Vec<u8>, u64)>> {
        if self.collected.is_none() {
            return Err(DiskError::Invalid(
                "internal: finish_leaves on a tree builder".into(),
            ));
        }
        if !self.leaf.elems.is_empty() || self.leaf_pages == 0 {
            self.flush_leaf(sink)?;
        }
        Ok(self.collected.take().unwrap_or_default())
    }

    fn push_branch(
        &mut self,
        sink: &mut Sink<'_>,
        level: usize,
        key: &[u8],
        pgid: u64,
    ) -> Result<()> {
        if level >= MAX_DEPTH {
            return Err(DiskError::Invalid("tree too deep".into()));
        }
        while self.levels.len() <= level {
            self.levels.push(Level {
                node: NodeBuf::new(),
            });
        }
        let esize = ELEMENT_SIZE + key.len();
        let full = match self.levels.get(level) {
            Some(l) => branch_full(&l.node, esize, self.ps),
            None => false,
        };
        if full {
            self.flush_level(sink, level)?;
        }
        if let Some(l) = self.levels.get_mut(level) {
            branch_push(&mut l.node, key, pgid);
        }
        Ok(())
    }

    fn flush_level(&mut self, sink: &mut Sink<'_>, level: usize) -> Result<()> {
        let Some(l) = self.levels.get_mut(level) else {
            return Ok(());
        };
        let pgid = sink.write_node(false, &l.node)?;
        let first = l.node.first_key().to_vec();
        l.node.clear();
        self.push_branch(sink, level + 1, &first, pgid)
    }

    pub(super) fn finish(mut self, sink: &mut Sink<'_>, inline_ok: bool) -> Result<Built> {
        if inline_ok && self.leaf_pages == 0 && !self.has_sub && self.leaf.size <= self.ps / 4 {
            let mut img = Vec::with_capacity(self.leaf.size);
            self.leaf.encode(true, 0, 0, &mut img);
            return Ok(Built::Inline(img));
        }
        if !self.leaf.elems.is_empty() || self.leaf_pages == 0 {
            self.flush_leaf(sink)?;
        }
        let mut level = 0;
        loop {
            let top = level + 1 >= self.levels.len();
            let Some(l) = self.levels.get(level) else {
                return Err(DiskError::Invalid("internal: empty tree".into()));
            };
            if top && l.node.elems.len() == 1 {
                return Ok(Built::Root(l.node.elems.first().map(|e| e.2).unwrap_or(0)));
            }
            if !l.node.elems.is_empty() {
                self.flush_level(sink, level)?;
            }
            level += 1;
        }
    }
}

pub(super) struct Esc<'a>(pub(super) &'a [u8]);
impl std::fmt::Debug for Esc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

pub(super) struct Ctx<'a, 'f> {
    pub(super) src: Option<&'a BoltDb>,
    pub(super) sink: Sink<'f>,
    pub(super) stats: RewriteStats,
    /// Patch mode ([`super::patch`]): the output starts as a copy of the source's pages, so
    /// unedited buckets and nested sub-buckets are referenced, not rebuilt.
    pub(super) patch: bool,
}

impl Ctx<'_, '_> {
    /// Build one bucket: source content (unless dropped) merged with `keys`; returns the
    /// bucket element value (header, plus inline page if inlined).
    pub(super) fn build_bucket(
        &mut self,
        source: Option<&BucketRef>,
        keys: Option<&BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
        depth: usize,
    ) -> Result<Vec<u8>> {
        let ps = self.sink.ps;
        if depth >= MAX_DEPTH {
            return Err(DiskError::corrupt(
                self.sink.path,
                0,
                "buckets nested too deeply",
            ));
        }
        let mut tb = TreeBuilder::new(ps);
        let empty = BTreeMap::new();
        let mut edits = keys.unwrap_or(&empty).iter().peekable();
        if let (Some(src), Some(b)) = (self.src, source) {
            let mut cur = src.cursor(b);
            while let Some((item, voff)) = cur.next_with_offset()? {
                while let Some((k, v)) = edits.next_if(|(k, _)| k.as_slice() < item.key) {
                    if let Some(v) = v {
                        tb.add(&mut self.sink, k, v, 0)?;
                    }
                }
                if let Some((_, v)) = edits.next_if(|(k, _)| k.as_slice() == item.key) {
                    if let Some(v) = v {
                        tb.add(&mut self.sink, item.key, v, 0)?;
                    }
                    continue;
                }
                if item.is_bucket() && self.patch {
                    // its pages (if any) are in the copied image: keep the value as it is
                    tb.add(&mut self.sink, item.key, item.value, item.flags)?;
                } else if item.is_bucket() {
                    let key = item.key.to_vec();
                    let sub = BucketRef::from_value(src.path(), item.value, voff)?;
                    let val = self.build_bucket(Some(&sub), None, depth + 1)?;
                    tb.add(&mut self.sink, &key, &val, BUCKET_LEAF_FLAG)?;
                } else {
                    tb.add(&mut self.sink, item.key, item.value, item.flags)?;
                }
            }
        }
        for (k, v) in edits {
            if let Some(v) = v {
                tb.add(&mut self.sink, k, v, 0)?;
            }
        }
        self.stats.elements += tb.count;
        let seq = source.map(|b| b.sequence).unwrap_or(0);
        let built = tb.finish(&mut self.sink, depth > 0)?;
        let mut val = Vec::with_capacity(BUCKET_HEADER_SIZE);
        match built {
            Built::Root(pgid) => {
                val.extend_from_slice(&pgid.to_le_bytes());
                val.extend_from_slice(&seq.to_le_bytes());
            }
            Built::Inline(img) => {
                val.extend_from_slice(&0u64.to_le_bytes());
                val.extend_from_slice(&seq.to_le_bytes());
                val.extend_from_slice(&img);
            }
        }
        Ok(val)
    }

    /// Build the root bucket: top-level buckets from the source merged with bucket edits.
    /// In patch mode an unedited bucket keeps its value byte for byte and an edited one is
    /// patched ([`Ctx::patch_bucket`]).
    pub(super) fn build_root(&mut self, edits: &Edits) -> Result<u64> {
        let ps = self.sink.ps;
        let mut root = TreeBuilder::new(ps);
        let mut eb = edits.buckets.iter().peekable();
        if let Some(src) = self.src {
            let mut cur = src.buckets();
            while let Some((item, voff)) = cur.next_with_offset()? {
                let name = item.key.to_vec();
                if !item.is_bucket() {
                    return Err(DiskError::corrupt(
                        src.path(),
                        voff,
                        format!("plain key {:?} in the root bucket", Esc(&name)),
                    ));
                }
                let sub = BucketRef::from_value(src.path(), item.value, voff)?;
                while let Some((n, e)) = eb.next_if(|(n, _)| n.as_slice() < name.as_slice()) {
                    if e.create && !e.delete {
                        let v = self.build_bucket(None, Some(&e.keys), 1)?;
                        root.add(&mut self.sink, n, &v, BUCKET_LEAF_FLAG)?;
                        self.stats.buckets += 1;
                    }
                }
                let edit = eb
                    .next_if(|(n, _)| n.as_slice() == name.as_slice())
                    .map(|x| x.1);
                let v = match edit {
                    Some(e) if e.delete => continue,
                    Some(e) if self.patch && !e.drop_source => self.patch_bucket(&sub, e)?,
                    None if self.patch => item.value.to_vec(),
                    Some(e) => {
                        let source = if e.drop_source { None } else { Some(&sub) };
                        let mut v = self.build_bucket(source, Some(&e.keys), 1)?;
                        if e.drop_source {
                            // keep the source bucket's sequence on clear
                            if let Some(s) = v.get_mut(8..16) {
                                s.copy_from_slice(&sub.sequence.to_le_bytes());
                            }
                        }
                        v
                    }
                    None => self.build_bucket(Some(&sub), None, 1)?,
                };
                root.add(&mut self.sink, &name, &v, BUCKET_LEAF_FLAG)?;
                self.stats.buckets += 1;
            }
        }
        for (n, e) in eb {
            if e.create && !e.delete {
                let v = self.build_bucket(None, Some(&e.keys), 1)?;
                root.add(&mut self.sink, n, &v, BUCKET_LEAF_FLAG)?;
                self.stats.buckets += 1;
            }
        }
        match root.finish(&mut self.sink, false)? {
            Built::Root(p) => Ok(p),
            Built::Inline(_) => Err(DiskError::Invalid("internal: root bucket inlined".into())),
        }
    }
}

fn write_all(
    src: Option<&BoltDb>,
    page_size: u32,
    edits: &Edits,
    out: &File,
    out_path: &Path,
) -> Result<RewriteStats> {
    let mut ctx = Ctx {
        src,
        sink: Sink::new(out, out_path, page_size as usize, 2),
        stats: RewriteStats::default(),
        patch: false,
    };
    let root = ctx.build_root(edits)?;
    ctx.finish_file(root, page_size)
}

impl<'f> Sink<'f> {
    /// A sink whose first node gets page id `next` (written at `next × ps`).
    pub(super) fn new(file: &'f File, path: &'f Path, ps: usize, next: u64) -> Sink<'f> {
        Sink {
            file,
            path,
            ps,
            next,
            buf: Vec::with_capacity(FLUSH_AT + 2 * ps),
            off: next.saturating_mul(ps as u64),
        }
    }
}

impl Ctx<'_, '_> {
    /// Flush the pages, set the file length to exactly `pgid × pageSize`, write both meta pages
    /// (root bucket at `root`, no freelist; txid = source txid + 1 in slot `txid % 2`,
    /// txid − 1 in the other, so neither can point at an older root), fsync.
    pub(super) fn finish_file(mut self, root: u64, page_size: u32) -> Result<RewriteStats> {
        let (out, out_path) = (self.sink.file, self.sink.path);
        let ps = page_size as usize;
        self.sink.flush()?;
        let pages = self.sink.next;
        let bytes = pages * ps as u64;
        out.set_len(bytes).map_err(|e| DiskError::io(out_path, e))?;
        let (sequence, txid) = match self.src {
            Some(s) => (s.meta().sequence, s.meta().txid.saturating_add(1).max(1)),
            None => (0, 1),
        };
        for t in [txid - 1, txid] {
            let slot = t % 2;
            let meta = Meta {
                magic: MAGIC,
                version: VERSION,
                page_size,
                flags: 0,
                root,
                sequence,
                freelist: NO_FREELIST,
                pgid: pages,
                txid: t,
                checksum: 0,
            }
            .with_checksum();
            let mut page = vec![0u8; ps];
            let hdr = PageHeader {
                id: slot,
                flags: META_PAGE,
                count: 0,
                overflow: 0,
            };
            page[..PAGE_HEADER_SIZE].copy_from_slice(&hdr.encode());
            page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + 64].copy_from_slice(&meta.encode());
            out.write_all_at(&page, slot * ps as u64)
                .map_err(|e| DiskError::io(out_path, e))?;
        }
        out.sync_all().map_err(|e| DiskError::io(out_path, e))?;
        let mut stats = self.stats;
        stats.pages = pages;
        stats.bytes = bytes;
        stats.page_size = page_size;
        stats.txid = txid;
        Ok(stats)
    }
}

/// Rewrite `src` with `edits` into the caller's file `out` (written from offset 0, resized to
/// the exact image size, fsynced). The caller owns naming and the atomic rename.
pub fn rewrite_into(
    src: &BoltDb,
    edits: &Edits,
    out: &File,
    out_path: &Path,
) -> Result<RewriteStats> {
    write_all(Some(src), src.page_size(), edits, out, out_path)
}

/// Write a new db holding only `edits` (puts into buckets) with the given page size, into
/// the caller's file.
pub fn create_into(
    page_size: u32,
    edits: &Edits,
    out: &File,
    out_path: &Path,
) -> Result<RewriteStats> {
    if !(4096..=(1 << 16)).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(DiskError::Invalid(format!(
            "unsupported page size {page_size}"
        )));
    }
    write_all(None, page_size, edits, out, out_path)
}

/// Rewrite `src` with `edits` to `dst` atomically: `DST.part` (0600) → fsync → rename →
/// fsync the directory. `dst` may be the source's own path (the source stays readable until
/// the rename). The `.part` file is removed on error.
pub fn rewrite(src: &BoltDb, edits: &Edits, dst: &Path) -> Result<RewriteStats> {
    atomic_write(dst, |f, p| rewrite_into(src, edits, f, p))
}

/// [`create_into`] with the same atomic file handling as [`rewrite`].
pub fn create(page_size: u32, edits: &Edits, dst: &Path) -> Result<RewriteStats> {
    atomic_write(dst, |f, p| create_into(page_size, edits, f, p))
}

fn part_path(dst: &Path) -> PathBuf {
    let mut s = dst.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

pub(super) fn atomic_write(
    dst: &Path,
    f: impl FnOnce(&File, &Path) -> Result<RewriteStats>,
) -> Result<RewriteStats> {
    let part = part_path(dst);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&part)
        .map_err(|e| DiskError::io(&part, e))?;
    let r = f(&file, &part).and_then(|stats| {
        std::fs::rename(&part, dst).map_err(|e| DiskError::io(dst, e))?;
        let dir = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| DiskError::io(&dir, e))?;
        Ok(stats)
    });
    if r.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nested buckets (not needed by etcd, but bbolt allows them): a source db with a
    /// sub-bucket (inline and not) is read and copied by the rewrite.
    #[test]
    fn nested_buckets_read_and_copied() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("nested");
        let f = File::create(&p).unwrap_or_else(|e| panic!("{e}"));
        let ps = 4096usize;
        let sink = Sink {
            file: &f,
            path: &p,
            ps,
            next: 2,
            buf: Vec::new(),
            off: 2 * ps as u64,
        };
        let mut ctx = Ctx {
            src: None,
            sink,
            stats: RewriteStats::default(),
            patch: false,
        };
        let small: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
            BTreeMap::from([(b"a".to_vec(), Some(b"1".to_vec()))]);
        let big: BTreeMap<Vec<u8>, Option<Vec<u8>>> = (0..500u32)
            .map(|i| (format!("k{i:04}").into_bytes(), Some(vec![1u8; 50])))
            .collect();
        let inline_sub = ctx
            .build_bucket(None, Some(&small), 2)
            .unwrap_or_else(|e| panic!("{e}"));
        let tree_sub = ctx
            .build_bucket(None, Some(&big), 2)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&inline_sub[..8], &[0u8; 8]);
        assert_ne!(&tree_sub[..8], &[0u8; 8]);
        let mut top = TreeBuilder::new(ps);
        top.add(&mut ctx.sink, b"plain", b"v", 0)
            .unwrap_or_else(|e| panic!("{e}"));
        top.add(&mut ctx.sink, b"sub1", &inline_sub, BUCKET_LEAF_FLAG)
            .unwrap_or_else(|e| panic!("{e}"));
        top.add(&mut ctx.sink, b"sub2", &tree_sub, BUCKET_LEAF_FLAG)
            .unwrap_or_else(|e| panic!("{e}"));
        let Ok(Built::Root(top_root)) = top.finish(&mut ctx.sink, false) else {
            panic!("top")
        };
        let mut root = TreeBuilder::new(ps);
        let mut tv = top_root.to_le_bytes().to_vec();
        tv.extend_from_slice(&0u64.to_le_bytes());
        root.add(&mut ctx.sink, b"top", &tv, BUCKET_LEAF_FLAG)
            .unwrap_or_else(|e| panic!("{e}"));
        let Ok(Built::Root(r)) = root.finish(&mut ctx.sink, false) else {
            panic!("root")
        };
        ctx.sink.flush().unwrap_or_else(|e| panic!("{e}"));
        let pages = ctx.sink.next;
        f.set_len(pages * ps as u64)
            .unwrap_or_else(|e| panic!("{e}"));
        for t in [0u64, 1] {
            let m = Meta {
                magic: MAGIC,
                version: VERSION,
                page_size: ps as u32,
                flags: 0,
                root: r,
                sequence: 0,
                freelist: NO_FREELIST,
                pgid: pages,
                txid: t,
                checksum: 0,
            }
            .with_checksum();
            let mut page = vec![0u8; 80];
            page[..16].copy_from_slice(
                &PageHeader {
                    id: t,
                    flags: META_PAGE,
                    count: 0,
                    overflow: 0,
                }
                .encode(),
            );
            page[16..].copy_from_slice(&m.encode());
            f.write_all_at(&page, t * ps as u64)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        drop(f);
        let check_db = |path: &Path| {
            let db = BoltDb::open(path).unwrap_or_else(|e| panic!("{e}"));
            assert!(super::super::check(&db).map(|r| r.is_ok()).unwrap_or(false));
            let top = db
                .bucket(b"top")
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("top"));
            assert_eq!(db.get(&top, b"plain").ok().flatten(), Some(b"v".to_vec()));
            let s1 = db
                .bucket_in(&top, b"sub1")
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("sub1"));
            assert!(s1.inline.is_some());
            assert_eq!(db.get(&s1, b"a").ok().flatten(), Some(b"1".to_vec()));
            let s2 = db
                .bucket_in(&top, b"sub2")
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("sub2"));
            assert!(s2.inline.is_none());
            let mut n = 0;
            db.for_each(&s2, |_| {
                n += 1;
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(n, 500);
            // the status scan gives nested buckets' elements with empty values
            let mut seen = Vec::new();
            super::super::scan(&db, &mut |ev| {
                if let super::super::ScanEvent::Kv {
                    key,
                    value,
                    is_bucket,
                } = ev
                {
                    seen.push((key.to_vec(), value.len(), is_bucket));
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                seen,
                vec![
                    (b"plain".to_vec(), 1, false),
                    (b"sub1".to_vec(), 0, true),
                    (b"sub2".to_vec(), 0, true)
                ]
            );
        };
        check_db(&p);
        let src = BoltDb::open(&p).unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join("copy");
        rewrite(&src, &Edits::new(), &out).unwrap_or_else(|e| panic!("{e}"));
        check_db(&out);
    }
}
