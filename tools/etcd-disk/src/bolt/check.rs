//! The consistency check bbolt's `tx.Check` does (what `snapshot status` runs first), plus a
//! few stricter structural checks, in one depth-first pass that can also feed the top-level
//! buckets' contents, in order, to a visitor (so `snapshot status` reads the file once).
//!
//! bbolt's checks (same messages): `page N: multiple references`, `page N: out of bounds: HWM`,
//! `page N: invalid type: T`, `page N: reachable freed`, `page N: already freed`,
//! `page N: unreachable unfreed` (only possible when a freelist is stored). Ours in addition:
//! page header id different from the id it was reached by, element bounds, keys not strictly
//! increasing within a page or outside the range their parent branch assigns, empty branch
//! pages, bad bucket headers, non-bucket elements in the root bucket (etcd's `snapshot status`
//! fails on those too), freelist ids beyond the high-water mark.
//!
//! Memory: two bitmaps of one bit per page below the high-water mark (bounded by the file size
//! checked at open), one page buffer per tree level, and at most [`MAX_PROBLEMS`] messages.

use super::{
    BoltDb, BucketRef, NodeView, PageHeader, BRANCH_PAGE, BUCKET_LEAF_FLAG, FREELIST_PAGE,
    LEAF_PAGE, MAX_DEPTH, NO_FREELIST, PAGE_HEADER_SIZE,
};
use crate::error::{DiskError, Result};

/// Problems kept in a report (the count goes on).
pub const MAX_PROBLEMS: usize = 1000;

/// One inconsistency, with the page it concerns and a byte offset in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckProblem {
    pub pgid: u64,
    pub offset: u64,
    pub msg: String,
}

impl std::fmt::Display for CheckProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (offset {})", self.msg, self.offset)
    }
}

/// The result of [`check`] / [`scan`].
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The first [`MAX_PROBLEMS`] problems.
    pub problems: Vec<CheckProblem>,
    /// All problems found (may exceed `problems.len()`).
    pub total_problems: u64,
    /// High-water mark.
    pub pages: u64,
    /// Pages reachable (meta, freelist, bucket pages incl. overflow).
    pub pages_reachable: u64,
    /// Pages free (listed in the stored freelist, or unreachable when none is stored).
    pub pages_free: u64,
    /// Whether the meta names a stored freelist page.
    pub freelist_stored: bool,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.total_problems == 0
    }
    /// etcdctl's wording: `snapshot file integrity check failed. N errors found.` + lines.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "snapshot file integrity check failed. {} errors found.",
            self.total_problems
        );
        for p in self.problems.iter().take(10) {
            s.push('\n');
            s.push_str(&p.to_string());
        }
        s
    }
    /// The first problem as a [`DiskError::Corrupt`] (for callers that stop at the first).
    pub fn to_error(&self, db: &BoltDb) -> Option<DiskError> {
        let first = self.problems.first()?;
        Some(DiskError::corrupt(
            db.path(),
            first.offset,
            format!(
                "integrity check failed ({} problems), first: {}",
                self.total_problems, first.msg
            ),
        ))
    }
}

/// What the scan feeds its visitor, in file order: each top-level bucket's name, then each
/// element of that bucket (a nested bucket's element comes with an empty value, as bbolt's
/// `ForEach` gives nil).
#[derive(Debug, Clone, Copy)]
pub enum ScanEvent<'a> {
    Bucket(&'a [u8]),
    Kv {
        key: &'a [u8],
        value: &'a [u8],
        is_bucket: bool,
    },
}

/// Check the whole file; `Err` only for I/O errors, inconsistencies go in the report.
pub fn check(db: &BoltDb) -> Result<CheckReport> {
    scan(db, &mut |_| Ok(()))
}

/// Check the whole file and feed top-level bucket contents to `visit` in order.
pub fn scan(
    db: &BoltDb,
    visit: &mut dyn FnMut(ScanEvent<'_>) -> Result<()>,
) -> Result<CheckReport> {
    let hwm = db.meta().pgid;
    let words = usize::try_from(hwm.div_ceil(64)).unwrap_or(usize::MAX);
    let mut w = Walker {
        db,
        hwm,
        reachable: vec![0u64; words],
        freed: vec![0u64; words],
        report: CheckReport {
            pages: hwm,
            ..Default::default()
        },
        pool: Vec::new(),
    };
    w.mark(0, 0, 0);
    w.mark(1, 1, 0);
    let freelist = db.meta().freelist;
    w.report.freelist_stored = freelist != NO_FREELIST;
    if freelist != NO_FREELIST {
        w.load_freelist(freelist)?;
    }
    let root = db.root();
    w.walk_bucket(&root, 0, 0, visit)?;
    let mut reachable = 0u64;
    let mut free = 0u64;
    for i in 0..hwm {
        let r = bit(&w.reachable, i);
        let f = bit(&w.freed, i);
        reachable += u64::from(r);
        if w.report.freelist_stored {
            free += u64::from(f);
            if !r && !f {
                let off = db.page_offset(i);
                w.problem(i, off, format!("page {i}: unreachable unfreed"));
            }
        } else if !r {
            free += 1;
        }
    }
    w.report.pages_reachable = reachable;
    w.report.pages_free = free;
    Ok(w.report)
}

fn bit(v: &[u64], i: u64) -> bool {
    v.get((i / 64) as usize)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}
fn set_bit(v: &mut [u64], i: u64) -> bool {
    match v.get_mut((i / 64) as usize) {
        Some(w) => {
            let was = *w & (1 << (i % 64)) != 0;
            *w |= 1 << (i % 64);
            was
        }
        None => false,
    }
}

struct Walker<'a> {
    db: &'a BoltDb,
    hwm: u64,
    reachable: Vec<u64>,
    freed: Vec<u64>,
    report: CheckReport,
    pool: Vec<Vec<u8>>,
}

impl Walker<'_> {
    fn problem(&mut self, pgid: u64, offset: u64, msg: String) {
        self.report.total_problems += 1;
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report
                .problems
                .push(CheckProblem { pgid, offset, msg });
        }
    }

    /// Mark pages [first, last] reachable; returns false if any was already.
    fn mark(&mut self, first: u64, last: u64, via: u64) -> bool {
        let mut fresh = true;
        for id in first..=last {
            if id >= self.hwm {
                break;
            }
            if set_bit(&mut self.reachable, id) {
                let off = self.db.page_offset(id);
                self.problem(via, off, format!("page {id}: multiple references"));
                fresh = false;
            }
        }
        fresh
    }

    /// Read a page, turning format errors into problems (None) and keeping I/O errors.
    fn read(&mut self, pgid: u64, buf: &mut Vec<u8>) -> Result<Option<PageHeader>> {
        match self.db.read_page(pgid, buf) {
            Ok(h) => Ok(Some(h)),
            Err(DiskError::Corrupt { offset, msg, .. }) => {
                self.problem(pgid, offset, msg);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn load_freelist(&mut self, pgid: u64) -> Result<()> {
        let off = self.db.page_offset(pgid);
        if pgid < 2 || pgid >= self.hwm {
            self.problem(
                pgid,
                off,
                format!("page {pgid}: freelist page out of bounds: {}", self.hwm),
            );
            return Ok(());
        }
        let mut buf = Vec::new();
        let Some(hdr) = self.read(pgid, &mut buf)? else {
            return Ok(());
        };
        self.mark(pgid, pgid + u64::from(hdr.overflow), pgid);
        if hdr.flags & FREELIST_PAGE == 0 {
            self.problem(
                pgid,
                off,
                format!(
                    "page {pgid}: invalid freelist page, page type is {}",
                    hdr.type_name()
                ),
            );
            return Ok(());
        }
        let (mut idx, mut count) = (0usize, usize::from(hdr.count));
        if hdr.count == 0xFFFF {
            idx = 1;
            count = usize::try_from(super::le_u64(&buf, PAGE_HEADER_SIZE)).unwrap_or(usize::MAX);
        }
        let avail = (buf.len() - PAGE_HEADER_SIZE) / 8;
        if idx.saturating_add(count) > avail {
            self.problem(
                pgid,
                off + 10,
                format!("page {pgid}: freelist count {count} exceeds the page ({avail} ids fit)"),
            );
            return Ok(());
        }
        for i in idx..idx + count {
            let id = super::le_u64(&buf, PAGE_HEADER_SIZE + i * 8);
            let eoff = off + (PAGE_HEADER_SIZE + i * 8) as u64;
            if id >= self.hwm {
                self.problem(
                    pgid,
                    eoff,
                    format!(
                        "page {id}: freed page beyond the high-water mark {}",
                        self.hwm
                    ),
                );
            } else if set_bit(&mut self.freed, id) {
                self.problem(id, eoff, format!("page {id}: already freed"));
            }
        }
        Ok(())
    }

    /// `nest`: 0 for the root bucket, 1 for top-level buckets, ...
    fn walk_bucket(
        &mut self,
        b: &BucketRef,
        nest: usize,
        depth: usize,
        visit: &mut dyn FnMut(ScanEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        match &b.inline {
            Some(img) => {
                let img = img.clone();
                let node = match NodeView::new(self.db.path(), &img, b.offset) {
                    Ok(n) => n,
                    Err(e) => {
                        self.problem(0, b.offset, format!("inline bucket: {e}"));
                        return Ok(());
                    }
                };
                if !node.is_leaf() {
                    self.problem(
                        0,
                        b.offset,
                        format!("inline bucket page is {}, not a leaf", node.hdr.type_name()),
                    );
                    return Ok(());
                }
                self.walk_leaf(&node, 0, None, None, nest, depth, visit)
            }
            None => self.walk_page(b.root, None, None, nest, depth, visit),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_page(
        &mut self,
        pgid: u64,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        nest: usize,
        depth: usize,
        visit: &mut dyn FnMut(ScanEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        let off = self.db.page_offset(pgid);
        if depth >= MAX_DEPTH {
            self.problem(
                pgid,
                off,
                format!("page {pgid}: tree deeper than {MAX_DEPTH} levels"),
            );
            return Ok(());
        }
        if pgid >= self.hwm {
            self.problem(
                pgid,
                off,
                format!("page {pgid}: out of bounds: {}", self.hwm),
            );
            return Ok(());
        }
        let mut buf = self.pool.pop().unwrap_or_default();
        let r = self.walk_page_in(pgid, &mut buf, lo, hi, nest, depth, visit);
        self.pool.push(buf);
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_page_in(
        &mut self,
        pgid: u64,
        buf: &mut Vec<u8>,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        nest: usize,
        depth: usize,
        visit: &mut dyn FnMut(ScanEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        let off = self.db.page_offset(pgid);
        let Some(hdr) = self.read(pgid, buf)? else {
            return Ok(());
        };
        if hdr.id != pgid {
            self.problem(
                pgid,
                off,
                format!("page {pgid}: page header says id {}", hdr.id),
            );
        }
        if !self.mark(pgid, pgid + u64::from(hdr.overflow), pgid) {
            return Ok(()); // already seen: do not descend twice (and never loop)
        }
        if bit(&self.freed, pgid) {
            self.problem(pgid, off, format!("page {pgid}: reachable freed"));
        }
        if hdr.flags & (BRANCH_PAGE | LEAF_PAGE) == 0 {
            self.problem(
                pgid,
                off,
                format!("page {pgid}: invalid type: {}", hdr.type_name()),
            );
            return Ok(());
        }
        let node = match NodeView::new(self.db.path(), buf, off) {
            Ok(n) => n,
            Err(e) => {
                self.problem(pgid, off, format!("page {pgid}: {}", strip(&e)));
                return Ok(());
            }
        };
        if node.is_leaf() {
            return self.walk_leaf(&node, pgid, lo, hi, nest, depth, visit);
        }
        let n = node.count();
        if n == 0 {
            self.problem(
                pgid,
                off,
                format!("page {pgid}: branch page with no elements"),
            );
            return Ok(());
        }
        let path = self.db.path().to_path_buf();
        let mut prev: Option<&[u8]> = None;
        for i in 0..n {
            let (key, child) = match node.branch(&path, i) {
                Ok(x) => x,
                Err(e) => {
                    self.problem(pgid, off, strip(&e));
                    return Ok(());
                }
            };
            let eoff = off + (PAGE_HEADER_SIZE + i * 16) as u64;
            self.order(pgid, eoff, i, key, prev, lo, hi);
            let next_key = if i + 1 < n {
                node.branch(&path, i + 1).ok().map(|x| x.0)
            } else {
                hi
            };
            self.walk_page(child, Some(key), next_key, nest, depth + 1, visit)?;
            prev = Some(key);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn order(
        &mut self,
        pgid: u64,
        eoff: u64,
        i: usize,
        key: &[u8],
        prev: Option<&[u8]>,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
    ) {
        if let Some(p) = prev {
            if key <= p {
                self.problem(
                    pgid,
                    eoff,
                    format!("page {pgid}: element {i}: key not greater than the previous key"),
                );
                return;
            }
        }
        if let Some(lo) = lo {
            if key < lo {
                self.problem(
                    pgid,
                    eoff,
                    format!("page {pgid}: element {i}: key below its parent branch key"),
                );
                return;
            }
        }
        if let Some(hi) = hi {
            if key >= hi {
                self.problem(
                    pgid,
                    eoff,
                    format!("page {pgid}: element {i}: key not below the next parent branch key"),
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_leaf(
        &mut self,
        node: &NodeView<'_>,
        pgid: u64,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        nest: usize,
        depth: usize,
        visit: &mut dyn FnMut(ScanEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        let path = self.db.path().to_path_buf();
        let mut prev: Option<&[u8]> = None;
        for i in 0..node.count() {
            let eoff = node.offset + (PAGE_HEADER_SIZE + i * 16) as u64;
            let (item, voff) = match node.leaf(&path, i) {
                Ok(x) => x,
                Err(e) => {
                    self.problem(pgid, eoff, strip(&e));
                    return Ok(());
                }
            };
            self.order(pgid, eoff, i, item.key, prev, lo, hi);
            prev = Some(item.key);
            let is_bucket = item.flags & BUCKET_LEAF_FLAG != 0;
            match nest {
                0 if is_bucket => visit(ScanEvent::Bucket(item.key))?,
                0 => self.problem(
                    pgid,
                    eoff,
                    format!("page {pgid}: element {i}: plain key in the root bucket"),
                ),
                1 => visit(ScanEvent::Kv {
                    key: item.key,
                    value: if is_bucket { &[] } else { item.value },
                    is_bucket,
                })?,
                _ => {}
            }
            if is_bucket {
                match BucketRef::from_value(&path, item.value, voff) {
                    Ok(b) => self.walk_bucket(&b, nest + 1, depth + 1, visit)?,
                    Err(e) => self.problem(pgid, voff, strip(&e)),
                }
            }
        }
        Ok(())
    }
}

/// The message of a Corrupt error without the path/offset prefix (the problem carries them).
fn strip(e: &DiskError) -> String {
    match e {
        DiskError::Corrupt { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}
