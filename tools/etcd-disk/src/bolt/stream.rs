//! The last key of a top-level bucket, found while a bbolt image streams by in file order
//! (a snapshot being saved and gzipped on the way, never read back): etcd's revision is the
//! last key of bucket `key`.
//!
//! A tree is walked from the meta page down, but a child page may come before or after its
//! parent in the file. So every page is summarised as it passes, keeping only what a walk
//! could need from it: for a branch page, the child that covers the bucket's name (the walk
//! through the root bucket) and its last child (the walk down the bucket's right edge); for a
//! leaf page, the first 8 bytes of its last key, and the bucket's element if it holds it.
//! The walk happens at the end, over the summaries. Memory: about 10 bytes per page of the
//! image (a 2 GB db: 5 MB), plus the branch pages' two ids.
//!
//! Pages are taken at every page-size boundary, not by skipping overflow: a freed page keeps
//! its old header, whose overflow no longer says where the next page starts. Summaries of
//! free or stale pages are never reached, since the walk follows only pointers from the meta
//! and bbolt never overwrites a page reachable from a transaction being read. When a page the
//! walk needs was not summarised (a truncated stream, an oversized page), the answer is
//! "cannot tell", never a guess.

use std::collections::HashMap;

use super::{
    BucketRef, Meta, NodeView, PageHeader, BRANCH_PAGE, BUCKET_LEAF_FLAG, DEFAULT_PAGE_SIZE,
    LEAF_PAGE, MAX_DEPTH, META_SIZE, PAGE_HEADER_SIZE,
};
use std::path::Path;

/// Largest page (with its overflow pages) buffered to be summarised.
pub const MAX_PAGE_BYTES: usize = 64 << 20;
/// Most multi-page pages collected at once (overlaps come only from stale headers).
const MAX_OPEN: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
struct LeafSum {
    seen: bool,
    /// Length of the last key, capped at 8 (0: an empty leaf).
    len: u8,
    prefix: [u8; 8],
}

#[derive(Debug)]
struct Open {
    pgid: u64,
    need: usize,
    buf: Vec<u8>,
}

/// Feed the image with [`LastKeyScan::feed`] in any chunking, then [`LastKeyScan::finish`].
#[derive(Debug)]
pub struct LastKeyScan {
    bucket: Vec<u8>,
    /// Bytes of the current page-size block not yet complete (and of page 0 before the page
    /// size is known).
    block: Vec<u8>,
    page_size: usize,
    next_pgid: u64,
    metas: [Option<Meta>; 2],
    open: Vec<Open>,
    leaves: Vec<LeafSum>,
    branches: HashMap<u64, (u64, u64)>,
    /// Leaf pages holding the bucket's element: its value (bucket header, inline page).
    values: HashMap<u64, Vec<u8>>,
    bad: Option<String>,
}

impl LastKeyScan {
    /// Track the last key of top-level bucket `bucket`.
    pub fn new(bucket: &[u8]) -> LastKeyScan {
        LastKeyScan {
            bucket: bucket.to_vec(),
            block: Vec::new(),
            page_size: 0,
            next_pgid: 0,
            metas: [None, None],
            open: Vec::new(),
            leaves: Vec::new(),
            branches: HashMap::new(),
            values: HashMap::new(),
            bad: None,
        }
    }

    /// The next bytes of the image.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.bad.is_none() {
            let want = if self.page_size == 0 {
                PAGE_HEADER_SIZE + META_SIZE
            } else {
                self.page_size
            };
            let take = (want - self.block.len()).min(data.len());
            self.block.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.block.len() < want {
                return;
            }
            if self.page_size == 0 {
                self.learn_page_size();
                continue;
            }
            let block = std::mem::take(&mut self.block);
            self.block_done(&block);
            self.block = block;
            self.block.clear();
        }
    }

    /// Page 0's meta gives the page size (bbolt assumes 4096 when it is invalid).
    fn learn_page_size(&mut self) {
        let m = Meta::decode(&self.block[PAGE_HEADER_SIZE..]);
        let ps = if m.validate().is_ok() {
            m.page_size
        } else {
            DEFAULT_PAGE_SIZE
        };
        if !(1024..=(1 << 20)).contains(&ps) || !ps.is_power_of_two() {
            self.bad = Some(format!("unsupported page size {ps}"));
            return;
        }
        self.page_size = ps as usize;
        // Keep the bytes read so far: they start block 0.
    }

    fn block_done(&mut self, block: &[u8]) {
        let pgid = self.next_pgid;
        self.next_pgid += 1;
        // Continue the multi-page pages being collected.
        let mut done = Vec::new();
        self.open.retain_mut(|o| {
            let take = (o.need - o.buf.len()).min(block.len());
            o.buf.extend_from_slice(&block[..take]);
            if o.buf.len() == o.need {
                done.push((o.pgid, std::mem::take(&mut o.buf)));
                false
            } else {
                true
            }
        });
        for (id, buf) in done {
            self.summarise(id, &buf);
        }
        let hdr = PageHeader::decode(block);
        if pgid < 2 {
            let m = Meta::decode(block.get(PAGE_HEADER_SIZE..).unwrap_or(&[]));
            self.metas[pgid as usize] = m.validate().is_ok().then_some(m);
            return;
        }
        if hdr.id != pgid || hdr.flags & (BRANCH_PAGE | LEAF_PAGE) == 0 {
            return;
        }
        let need = (u64::from(hdr.overflow) + 1).saturating_mul(self.page_size as u64);
        if need == self.page_size as u64 {
            self.summarise(pgid, block);
        } else if need <= MAX_PAGE_BYTES as u64 && self.open.len() < MAX_OPEN {
            let mut buf = Vec::with_capacity(need as usize);
            buf.extend_from_slice(block);
            self.open.push(Open {
                pgid,
                need: need as usize,
                buf,
            });
        }
    }

    fn summarise(&mut self, pgid: u64, page: &[u8]) {
        let path = Path::new("");
        let Ok(node) = NodeView::new(path, page, 0) else {
            return;
        };
        let n = node.count();
        if node.is_branch() {
            if n == 0 {
                return;
            }
            // The last element whose key <= the bucket name (or the first): get_item's rule.
            let (mut lo, mut hi) = (0usize, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                match node.branch(path, mid) {
                    Ok((k, _)) if k <= self.bucket.as_slice() => lo = mid + 1,
                    Ok(_) => hi = mid,
                    Err(_) => return,
                }
            }
            let (Ok((_, cover)), Ok((_, last))) = (
                node.branch(path, lo.saturating_sub(1)),
                node.branch(path, n - 1),
            ) else {
                return;
            };
            self.branches.insert(pgid, (cover, last));
        } else if node.is_leaf() {
            let mut sum = LeafSum {
                seen: true,
                ..Default::default()
            };
            if let Some(i) = n.checked_sub(1) {
                let Ok((item, _)) = node.leaf(path, i) else {
                    return;
                };
                let k = &item.key[..item.key.len().min(8)];
                sum.len = k.len() as u8;
                sum.prefix[..k.len()].copy_from_slice(k);
            }
            let (mut lo, mut hi) = (0usize, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let Ok((item, _)) = node.leaf(path, mid) else {
                    return;
                };
                match item.key.cmp(self.bucket.as_slice()) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => {
                        if item.flags & BUCKET_LEAF_FLAG != 0 {
                            self.values.insert(pgid, item.value.to_vec());
                        }
                        break;
                    }
                }
            }
            let i = pgid as usize;
            if self.leaves.len() <= i {
                self.leaves.resize(i + 1, LeafSum::default());
            }
            self.leaves[i] = sum;
        }
    }

    /// The first (up to) 8 bytes of the bucket's last key; `Ok(None)` when the bucket is
    /// absent or empty; `Err` when the stream did not carry what the walk needs.
    pub fn finish(self) -> std::result::Result<Option<Vec<u8>>, String> {
        if let Some(b) = self.bad {
            return Err(b);
        }
        // bbolt: the valid meta with the higher txid.
        let meta = match self.metas {
            [Some(a), Some(b)] => {
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            [Some(m), None] | [None, Some(m)] => m,
            [None, None] => return Err("no valid meta page".into()),
        };
        let leaf = |pg: u64| self.leaves.get(pg as usize).filter(|l| l.seen);
        let missing = |pg: u64| format!("page {pg} was not in the stream");
        // 1. Down the root bucket to the bucket's element.
        let mut pg = meta.root;
        let mut value = None;
        for _ in 0..MAX_DEPTH {
            if let Some(&(cover, _)) = self.branches.get(&pg) {
                pg = cover;
                continue;
            }
            if leaf(pg).is_none() {
                return Err(missing(pg));
            }
            value = Some(self.values.get(&pg));
            break;
        }
        let Some(value) = value else {
            return Err(format!("tree deeper than {MAX_DEPTH} levels"));
        };
        let Some(value) = value else {
            return Ok(None);
        };
        let bucket = BucketRef::from_value(Path::new(""), value, 0).map_err(|e| e.to_string())?;
        // 2. Down the bucket's right edge.
        if let Some(img) = &bucket.inline {
            let node = NodeView::new(Path::new(""), img, 0).map_err(|e| e.to_string())?;
            let Some(i) = node.count().checked_sub(1) else {
                return Ok(None);
            };
            let (item, _) = node.leaf(Path::new(""), i).map_err(|e| e.to_string())?;
            return Ok(Some(item.key[..item.key.len().min(8)].to_vec()));
        }
        let mut pg = bucket.root;
        for _ in 0..MAX_DEPTH {
            if let Some(&(_, last)) = self.branches.get(&pg) {
                pg = last;
                continue;
            }
            let l = leaf(pg).ok_or_else(|| missing(pg))?;
            return Ok((l.len > 0).then(|| l.prefix[..usize::from(l.len)].to_vec()));
        }
        Err(format!("tree deeper than {MAX_DEPTH} levels"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{create, BoltDb, Edits};
    use super::*;

    fn scan(img: &[u8], chunk: usize) -> std::result::Result<Option<Vec<u8>>, String> {
        let mut s = LastKeyScan::new(b"key");
        for c in img.chunks(chunk) {
            s.feed(c);
        }
        s.finish()
    }

    fn rev_key(rev: u64, tomb: bool) -> Vec<u8> {
        let mut k = rev.to_be_bytes().to_vec();
        k.push(b'_');
        k.extend_from_slice(&0u64.to_be_bytes());
        if tomb {
            k.push(b't');
        }
        k
    }

    /// Every shape of tree (inline bucket, one leaf, several levels, big values on overflow
    /// pages, a tombstone last, an empty bucket, no bucket), in every chunking, agrees with
    /// the reader's `last` on the file.
    #[test]
    fn agrees_with_the_reader_in_any_chunking() {
        let d = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Edits)> = {
            let mut v = Vec::new();
            let mut e = Edits::new();
            e.put(b"key", &rev_key(2, false), b"v").unwrap();
            e.put(b"meta", b"consistent_index", &[0; 8]).unwrap();
            v.push(("inline", e));
            for (name, n, size) in [
                ("one leaf", 40u64, 50usize),
                ("levels", 20_000, 60),
                ("overflow", 300, 9000),
            ] {
                let mut e = Edits::new();
                for r in 2..2 + n {
                    e.put(b"key", &rev_key(r, r == 1 + n), &vec![b'x'; size])
                        .unwrap();
                }
                for b in ["alarm", "auth", "lease", "members", "meta", "zz"] {
                    e.create_bucket(b.as_bytes()).unwrap();
                }
                e.put(b"meta", b"consistent_index", &[0; 8]).unwrap();
                v.push((name, e));
            }
            let mut e = Edits::new();
            e.create_bucket(b"key").unwrap();
            e.create_bucket(b"meta").unwrap();
            v.push(("empty", e));
            let mut e = Edits::new();
            e.create_bucket(b"meta").unwrap();
            v.push(("absent", e));
            v
        };
        for (name, e) in cases {
            let p = d.path().join(name);
            create(4096, &e, &p).unwrap();
            let db = BoltDb::open(&p).unwrap();
            let want = match db.bucket(b"key").unwrap() {
                Some(b) => db
                    .last(&b)
                    .unwrap()
                    .map(|(k, _, _)| k[..k.len().min(8)].to_vec()),
                None => None,
            };
            if name == "levels" || name == "overflow" {
                assert!(want.is_some());
            }
            let img = std::fs::read(&p).unwrap();
            for chunk in [1usize, 7, 4096, 5000, 65536, img.len()] {
                assert_eq!(
                    scan(&img, chunk),
                    Ok(want.clone()),
                    "{name}, chunks of {chunk}"
                );
            }
            // With a sha256 trailer after the image (a snapshot stream), the same.
            let mut with_trailer = img.clone();
            with_trailer.extend_from_slice(&[7u8; 32]);
            assert_eq!(
                scan(&with_trailer, 4096),
                Ok(want.clone()),
                "{name} + trailer"
            );
            // Cut short: cannot tell (never a wrong answer).
            if img.len() > 3 * 4096 {
                let r = scan(&img[..img.len() / 2], 4096);
                assert!(r.is_err() || r == Ok(want.clone()), "{name}: {r:?}");
            }
        }
    }

    #[test]
    fn garbage_is_cannot_tell() {
        assert!(scan(&[0u8; 3 * 4096], 4096).is_err());
        assert!(scan(&[], 1).is_err());
    }
}
