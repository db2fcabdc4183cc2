//! The copy-on-write patch writer: a new db image = the source's pages copied as they are, plus
//! new pages appended for what the edits change, as a bbolt write transaction would do it.
//!
//! # Method
//! 1. The source pages `[2, pgid)` are copied into the output with [`copy_range`]
//!    (`copy_file_range`: the bytes never come to user space, and writeback starts chunk by
//!    chunk). The two meta pages are not copied: they are written last, new, so the output never
//!    holds a valid meta naming the old root (old membership must not come back).
//! 2. New pages are appended after the source's high-water mark; old pages they replace simply
//!    become unreachable (free: the meta stores no freelist, bbolt rebuilds it by scanning).
//! 3. Per top-level bucket:
//!    - unedited: its bucket value is kept byte for byte (header with the old root page id, or the
//!      inline page image);
//!    - deleted: left out;
//!    - cleared (`drop_source`), created, inline in the source (root 0), or edited with deletes:
//!      rebuilt with the compacting writer's bucket builder; a clear costs only the new keys,
//!      and nested sub-buckets that are not edited keep their values (their pages are in the
//!      copy), so the cost is the bucket's own elements;
//!    - puts only, on a bucket with its own root page: **path copy**. From the root, each put
//!      goes down to the leaf bbolt's search would use (the last child whose key ≤ the put's key,
//!      else the first child); each affected leaf is rewritten with its puts merged (split into
//!      several leaves with the compacting writer's fill rule when it overflows), and every branch
//!      on the way up is rewritten with the new child page ids and keys (each child's first key),
//!      split when full, with a new root level when the root splits. Untouched subtrees keep their
//!      page ids. A put on a key that holds a sub-bucket replaces it with the plain value, as the
//!      compacting writer does. Cost: the affected pages and their ancestors, `O(depth)` for a
//!      single put (etcd's `key` bucket holds millions of entries; `--bump-revision` adds one
//!      key after the last).
//! 4. The root bucket (a handful of elements) is rebuilt pointing at the old or new bucket roots.
//! 5. Meta: as the compacting writer writes it (both pages, `txid` = source + 1 in slot
//!    `txid % 2`, `txid − 1` in the other, no freelist), `pgid` = the new high-water mark; the
//!    file length is exactly `pgid × pageSize`; fsync.
//!
//! The pages the patch reads (each edited bucket's root-to-leaf paths) are checked as they are
//! read: page type, element bounds, keys strictly increasing and inside the range the parent
//! branch gives them (the rules of [`check`](fn@super::check)), so a corrupt page gives a
//! [`DiskError::Corrupt`] naming the file and offset and never an out-of-order output. Pages the
//! patch does not read are copied unexamined, like `cp` would; the restore path covers them with
//! the snapshot's sha256 trailer.
//!
//! # Patch or rewrite
//! The patch is what a restore wants: its cost is the copy (kernel-side, near `cp`) plus a few
//! pages, and its output is the source plus edits with the same page layout, as etcd's own
//! restore (a bbolt transaction on the copied file) leaves it. The compacting
//! [`rewrite_into`](super::rewrite_into) reads and re-encodes every element in user space (about
//! 3× a `cp`) but drops free pages and refills every page; it remains the tool for compaction
//! and for building new files.

use std::fs::File;
use std::path::Path;

use super::write::{
    atomic_write, branch_full, branch_push, BucketEdit, Ctx, Edits, NodeBuf, RewriteStats, Sink,
    TreeBuilder,
};
use super::{
    BoltDb, BucketRef, NodeView, BUCKET_HEADER_SIZE, ELEMENT_SIZE, MAX_DEPTH, PAGE_HEADER_SIZE,
};
use crate::copy::copy_range;
use crate::error::{DiskError, Result};

/// Apply `edits` to `src` by copy-on-write into the caller's file `out`: the image is written
/// from offset 0, the file set to the exact image size and fsynced; the caller owns naming and
/// the atomic rename. Same contract and same resulting content as
/// [`rewrite_into`](super::rewrite_into); see the module doc for the method.
pub fn patch_into(
    src: &BoltDb,
    edits: &Edits,
    out: &File,
    out_path: &Path,
) -> Result<RewriteStats> {
    let ps = u64::from(src.page_size());
    let hwm = src.meta().pgid;
    // Pages 0 and 1 (the metas) are written at the end, new.
    copy_range(
        src.file(),
        src.path(),
        src.base().saturating_add(2 * ps),
        out,
        out_path,
        2 * ps,
        hwm.saturating_sub(2).saturating_mul(ps),
    )?;
    let mut ctx = Ctx {
        src: Some(src),
        sink: Sink::new(out, out_path, ps as usize, hwm),
        stats: RewriteStats::default(),
        patch: true,
    };
    let root = ctx.build_root(edits)?;
    ctx.finish_file(root, src.page_size())
}

/// [`patch_into`] with the atomic file handling of [`rewrite`](super::rewrite): `DST.part`
/// (0600) → fsync → rename → fsync the directory; the `.part` is removed on error.
pub fn patch(src: &BoltDb, edits: &Edits, dst: &Path) -> Result<RewriteStats> {
    atomic_write(dst, |f, p| patch_into(src, edits, f, p))
}

/// A put: key and new value.
type Put<'e> = (&'e [u8], &'e [u8]);
/// A node of the new tree as its parent sees it: first key, page id.
type Child = (Vec<u8>, u64);

impl Ctx<'_, '_> {
    /// Patch mode, an edited top-level bucket that is neither deleted nor cleared: path copy
    /// when it is puts only on a bucket with a root page, else rebuild. Returns the new
    /// bucket element value.
    pub(super) fn patch_bucket(&mut self, sub: &BucketRef, e: &BucketEdit) -> Result<Vec<u8>> {
        let puts_only = e.keys.values().all(Option::is_some);
        let src = match self.src {
            Some(s) if sub.inline.is_none() && puts_only => s,
            _ => return self.build_bucket(Some(sub), Some(&e.keys), 1),
        };
        let puts: Vec<Put<'_>> = e
            .keys
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k.as_slice(), v)))
            .collect();
        let root = if puts.is_empty() {
            sub.root
        } else {
            self.path_copy(src, sub.root, &puts)?
        };
        let mut val = Vec::with_capacity(BUCKET_HEADER_SIZE);
        val.extend_from_slice(&root.to_le_bytes());
        val.extend_from_slice(&sub.sequence.to_le_bytes());
        Ok(val)
    }

    /// Apply sorted `puts` to the tree rooted at page `root`; returns the new root page id.
    fn path_copy(&mut self, src: &BoltDb, root: u64, puts: &[Put<'_>]) -> Result<u64> {
        let mut level = self.patch_node(src, root, puts, None, None, 0)?;
        for _ in 0..MAX_DEPTH {
            match level.as_slice() {
                [(_, pgid)] => return Ok(*pgid),
                [] => break,
                _ => level = pack_branches(&mut self.sink, &level)?,
            }
        }
        Err(DiskError::Invalid(
            "internal: patched tree has no single root".into(),
        ))
    }

    /// Rewrite page `pgid` (reached with key range `[lo, hi)`) with `puts` (non-empty, sorted,
    /// all routed to it); returns the node(s) replacing it, in order.
    fn patch_node(
        &mut self,
        src: &BoltDb,
        pgid: u64,
        puts: &[Put<'_>],
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        depth: usize,
    ) -> Result<Vec<Child>> {
        let path = src.path();
        let off = src.page_offset(pgid);
        if depth >= MAX_DEPTH {
            return Err(DiskError::corrupt(
                path,
                off,
                format!("page {pgid}: tree deeper than {MAX_DEPTH} levels (cycle?)"),
            ));
        }
        let mut buf = Vec::new();
        src.read_page(pgid, &mut buf)?;
        let node = NodeView::new(path, &buf, off)?;
        if node.is_leaf() {
            let mut tb = TreeBuilder::leaves(self.sink.ps);
            let mut puts = puts.iter().peekable();
            let mut prev = None;
            for i in 0..node.count() {
                let (item, _) = node.leaf(path, i)?;
                check_order(path, pgid, &node, i, item.key, prev, (lo, hi))?;
                prev = Some(item.key);
                while let Some(&(k, v)) = puts.next_if(|(k, _)| *k < item.key) {
                    tb.add(&mut self.sink, k, v, 0)?;
                }
                if let Some(&(k, v)) = puts.next_if(|(k, _)| *k == item.key) {
                    tb.add(&mut self.sink, k, v, 0)?;
                    continue;
                }
                tb.add(&mut self.sink, item.key, item.value, item.flags)?;
            }
            for &(k, v) in puts {
                tb.add(&mut self.sink, k, v, 0)?;
            }
            self.stats.elements += tb.count;
            return tb.finish_leaves(&mut self.sink);
        }
        if !node.is_branch() {
            return Err(DiskError::corrupt(
                path,
                off,
                format!(
                    "page {pgid}: expected a branch or leaf page, found {}",
                    node.hdr.type_name()
                ),
            ));
        }
        if node.count() == 0 {
            return Err(DiskError::corrupt(
                path,
                off,
                format!("page {pgid}: branch page with no elements"),
            ));
        }
        let mut children = Vec::with_capacity(node.count());
        let mut prev = None;
        for i in 0..node.count() {
            let (key, child) = node.branch(path, i)?;
            check_order(path, pgid, &node, i, key, prev, (lo, hi))?;
            prev = Some(key);
            children.push((key, child));
        }
        let mut out: Vec<Child> = Vec::with_capacity(children.len() + 1);
        let mut rest = puts;
        for (i, &(key, child)) in children.iter().enumerate() {
            let next = children.get(i + 1).map(|c| c.0);
            // bbolt's search: the last child whose key <= the put's key, else the first child.
            let take = match next {
                Some(nk) => rest.partition_point(|(k, _)| *k < nk),
                None => rest.len(),
            };
            let (mine, r) = rest.split_at(take);
            rest = r;
            if mine.is_empty() {
                out.push((key.to_vec(), child));
            } else {
                let new = self.patch_node(src, child, mine, Some(key), next.or(hi), depth + 1)?;
                out.extend(new);
            }
        }
        pack_branches(&mut self.sink, &out)
    }
}

/// Element `i` of a page being patched must be strictly after the previous one and inside the
/// range `[lo, hi)` its parent branch gives it (what [`super::check`] requires).
fn check_order(
    path: &Path,
    pgid: u64,
    node: &NodeView<'_>,
    i: usize,
    key: &[u8],
    prev: Option<&[u8]>,
    (lo, hi): (Option<&[u8]>, Option<&[u8]>),
) -> Result<()> {
    let what = if prev.is_some_and(|p| key <= p) {
        "key not greater than the previous key"
    } else if lo.is_some_and(|lo| key < lo) {
        "key below its parent branch key"
    } else if hi.is_some_and(|hi| key >= hi) {
        "key not below the next parent branch key"
    } else {
        return Ok(());
    };
    Err(DiskError::corrupt(
        path,
        node.offset + (PAGE_HEADER_SIZE + i * ELEMENT_SIZE) as u64,
        format!("page {pgid}: element {i}: {what}"),
    ))
}

/// Pack branch elements (child first key, page id) into branch pages with the compacting
/// writer's fill rule; returns the pages written, in order.
fn pack_branches(sink: &mut Sink<'_>, entries: &[Child]) -> Result<Vec<Child>> {
    let mut out = Vec::new();
    let mut node = NodeBuf::new();
    for (key, pgid) in entries {
        if branch_full(&node, ELEMENT_SIZE + key.len(), sink.ps) {
            let id = sink.write_node(false, &node)?;
            out.push((node.first_key().to_vec(), id));
            node.clear();
        }
        branch_push(&mut node, key, *pgid);
    }
    if !node.elems.is_empty() {
        let id = sink.write_node(false, &node)?;
        out.push((node.first_key().to_vec(), id));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
