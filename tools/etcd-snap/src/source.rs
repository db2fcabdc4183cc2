//! Opening a snapshot file for reading: a plain snapshot (bbolt image ‖ sha256), a raw
//! `member/snap/db` (no trailer), or either gzip-compressed (recognised by its magic bytes, not
//! its name).
//!
//! bbolt must be read at random offsets, so a `.gz` is decompressed once into an anonymous
//! temporary file (`O_TMPFILE`: nothing is left behind, whatever happens), hashing the image and
//! holding back the trailer while it streams ([`etcd_disk::snapshot::copy_image`]), bounded by
//! the image's own bbolt meta (a bomb is refused after at most its high-water mark plus
//! bbolt's allocation slack; a temp dir without room for the high-water mark is refused before
//! anything past the meta pages is written). A plain file is read in place. Memory stays
//! bounded either way.

use etcd_common::{Error, Result};
use etcd_disk::bolt::BoltDb;
use etcd_disk::snapshot::{self, Layout, TrailerCheck};
use flate2::read::GzDecoder;
use std::cell::Cell;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// gzip's magic bytes.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An opened snapshot.
#[derive(Debug)]
pub struct Opened {
    /// The bbolt image (trailer excluded).
    pub db: BoltDb,
    /// The file as given.
    pub path: PathBuf,
    /// Size of the file on disk (compressed size for a `.gz`).
    pub file_size: u64,
    pub compressed: bool,
    /// Bytes of bbolt image.
    pub image_len: u64,
    /// Whether the (decompressed) stream follows the trailer rule (`size % 512 == 32`).
    pub has_trailer: bool,
    /// For a `.gz`: the trailer check done while decompressing (`None` without trailer).
    pub gz_check: Option<TrailerCheck>,
}

/// Is `path` gzip data? (Reads its first two bytes.)
pub fn is_gzip(path: &Path) -> Result<bool> {
    let mut f = File::open(path).map_err(|e| open_error(path, e))?;
    let mut b = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match f.read(&mut b[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("cannot read {}: {e}", path.display()))),
        }
    }
    Ok(got == 2 && b == GZIP_MAGIC)
}

/// A missing file is the caller's mistake about the input (3); other errors are I/O (6).
pub fn open_error(path: &Path, e: std::io::Error) -> Error {
    let msg = format!("cannot open {}: {e}", path.display());
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::bad_input(msg)
    } else {
        Error::io(msg)
    }
}

/// Counts compressed bytes consumed, for error offsets.
struct Counter<R> {
    inner: R,
    n: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

/// A gzip decoder that remembers whether a read failed because of the data (truncated or
/// corrupt stream: bad input) rather than the disk.
pub struct GzReader<R: Read> {
    inner: GzDecoder<Counter<R>>,
    consumed: Rc<Cell<u64>>,
    /// `(compressed offset, message)` of a data error.
    pub bad: Option<(u64, String)>,
}

impl<R: Read> GzReader<R> {
    pub fn new(r: R) -> Self {
        let consumed = Rc::new(Cell::new(0));
        GzReader {
            inner: GzDecoder::new(Counter {
                inner: r,
                n: consumed.clone(),
            }),
            consumed,
            bad: None,
        }
    }

    /// The tool error for a failed read: bad input naming the compressed offset if the data
    /// was at fault.
    pub fn error_for(&self, path: &Path, e: etcd_disk::DiskError) -> Error {
        match &self.bad {
            Some((off, msg)) => Error::bad_input(format!(
                "{}: offset {off} (compressed): gzip stream corrupt or cut short: {msg}",
                path.display()
            )),
            None => Error::from(e),
        }
    }
}

impl<R: Read> Read for GzReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                use std::io::ErrorKind as K;
                if matches!(
                    e.kind(),
                    K::InvalidData | K::InvalidInput | K::UnexpectedEof
                ) {
                    self.bad = Some((self.consumed.get(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

/// Open `path` (plain or gzip). A `.gz` is decompressed into an anonymous file in `tmp_dir`
/// (default: the system temp dir).
pub fn open(path: &Path, tmp_dir: Option<&Path>) -> Result<Opened> {
    let md = std::fs::metadata(path).map_err(|e| open_error(path, e))?;
    if !md.is_file() {
        return Err(Error::bad_input(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    if !is_gzip(path)? {
        let (db, layout) = snapshot::open_db(path)?;
        return Ok(Opened {
            db,
            path: path.to_path_buf(),
            file_size: layout.file_size,
            compressed: false,
            image_len: layout.image_len,
            has_trailer: layout.has_trailer,
            gz_check: None,
        });
    }
    let dir = tmp_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let (db, out) = gunzip(path, &dir)?;
    let layout = Layout {
        file_size: out.bytes_in,
        has_trailer: out.trailer.is_some(),
        image_len: out.image_len,
    };
    Ok(Opened {
        db,
        path: path.to_path_buf(),
        file_size: md.len(),
        compressed: true,
        image_len: layout.image_len,
        has_trailer: layout.has_trailer,
        gz_check: out.trailer_check(),
    })
}

/// Decompress the `.gz` at `path` into an unnamed file in `dir` (`O_TMPFILE`: nothing is left
/// behind, whatever happens), stripping and checking the trailer on the way, and open the
/// image. Bounded by the image's own bbolt meta ([`MetaBound`]): the decompressed stream may
/// not exceed its high-water mark (pages × page size) by more than bbolt's allocation slack,
/// and `dir` must have room for the high-water mark before anything is written past the first
/// two pages.
pub fn gunzip(path: &Path, dir: &Path) -> Result<(BoltDb, snapshot::CopyOutcome)> {
    let src = File::open(path).map_err(|e| open_error(path, e))?;
    let tmp = tempfile::tempfile_in(dir).map_err(|e| {
        Error::io(format!(
            "cannot create a temporary file in {} to decompress {}: {e}",
            dir.display(),
            path.display()
        ))
    })?;
    let free = nix::sys::statvfs::fstatvfs(&tmp)
        .ok()
        .map(|v| v.blocks_available().saturating_mul(v.fragment_size()));
    let label = gunzipped_label(path);
    let mut r = MetaBound::new(
        GzReader::new(std::io::BufReader::with_capacity(1 << 20, src)),
        path,
        dir,
        free,
    );
    let out =
        snapshot::copy_image(&mut r, std::io::BufWriter::new(&tmp), path, &label).map_err(|e| {
            match r.bad.take() {
                Some(b) => b,
                None => r.inner.error_for(path, e),
            }
        })?;
    let db = BoltDb::from_file(tmp, &label, 0, out.image_len)?;
    Ok((db, out))
}

/// bbolt grows a db file in steps of up to this much past its high-water mark (its
/// `AllocSize`): a gzipped raw `member/snap/db` may carry that much slack.
const BOLT_ALLOC_SLACK: u64 = 16 << 20;

/// A reader that learns the bbolt image's size from its meta pages as they stream by and
/// refuses a stream that decompresses to more than that (a gzip bomb), or that `dir` has no
/// room for (exit 6 before the disk fills).
pub struct MetaBound<R: Read> {
    pub inner: R,
    path: PathBuf,
    dir: PathBuf,
    free: Option<u64>,
    head: Vec<u8>,
    seen: u64,
    limit: Option<u64>,
    /// The tool error when the bound stopped the stream.
    pub bad: Option<Error>,
}

impl<R: Read> MetaBound<R> {
    pub fn new(inner: R, path: &Path, dir: &Path, free: Option<u64>) -> Self {
        MetaBound {
            inner,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            free,
            head: Vec::new(),
            seen: 0,
            limit: None,
            bad: None,
        }
    }

    fn refuse(&mut self, e: Error) -> std::io::Error {
        let msg = e.message.clone();
        self.bad = Some(e);
        std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
    }

    /// Decide the limit once both meta pages (or the end of the stream) have been seen.
    fn decide(&mut self, eof: bool) -> std::io::Result<()> {
        use etcd_disk::bolt::{Meta, META_SIZE};
        const HDR: usize = 16;
        if self.limit.is_some() || self.head.len() < HDR + META_SIZE {
            return Ok(());
        }
        let m0 = Meta::decode(self.head.get(HDR..HDR + META_SIZE).unwrap_or_default());
        let ps = if m0.validate().is_ok() && m0.page_size >= 512 {
            m0.page_size as usize
        } else {
            4096
        };
        if self.head.len() < ps + HDR + META_SIZE && !eof {
            return Ok(());
        }
        let m1 = Meta::decode(
            self.head
                .get(ps + HDR..ps + HDR + META_SIZE)
                .unwrap_or_default(),
        );
        let hw = [m0, m1]
            .iter()
            .filter(|m| m.validate().is_ok())
            .map(|m| m.pgid.saturating_mul(u64::from(m.page_size)))
            .max();
        let Some(hw) = hw else {
            let label = gunzipped_label(&self.path);
            return Err(self.refuse(Error::bad_input(format!(
                "{}: offset 0: not a bbolt image (neither meta page is valid)",
                label.display()
            ))));
        };
        if let Some(free) = self.free.filter(|f| *f < hw) {
            return Err(self.refuse(Error::io(format!(
                "{}: decompresses to {hw} bytes (its bbolt high-water mark) and {} has {free} bytes free: set --tmp-dir to a filesystem with room",
                self.path.display(),
                self.dir.display()
            ))));
        }
        self.limit = Some(hw + BOLT_ALLOC_SLACK + snapshot::TRAILER_LEN);
        Ok(())
    }
}

impl<R: Read> Read for MetaBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = buf.get(..n).unwrap_or_default();
        if self.limit.is_none() {
            let want = (64 << 10) + 16 + 64 - self.head.len().min((64 << 10) + 16 + 64);
            self.head
                .extend_from_slice(got.get(..want.min(n)).unwrap_or_default());
            self.decide(n == 0)?;
        }
        self.seen += n as u64;
        if let Some(limit) = self.limit.filter(|l| self.seen > *l) {
            let label = gunzipped_label(&self.path);
            return Err(self.refuse(Error::bad_input(format!(
                "{}: decompresses to more than {limit} bytes, more than its bbolt meta says the image holds: refused (a gzip bomb?)",
                label.display()
            ))));
        }
        Ok(n)
    }
}

/// How errors name the decompressed image of a `.gz` (offsets are in the decompressed data).
pub fn gunzipped_label(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(" (gunzipped)");
    PathBuf::from(s)
}

/// The snapshot path: the argument, else `facts.snapshot.path` of the upstream envelope.
pub fn path_from(arg: Option<&Path>, upstream: &etcd_common::envelope::Facts) -> Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p.to_path_buf());
    }
    upstream
        .get("snapshot")
        .and_then(|s| s.get("path"))
        .and_then(|p| p.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::usage("no snapshot FILE given and no facts.snapshot.path on stdin (see --help)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_precedence() {
        let mut f = etcd_common::envelope::Facts::new();
        assert_eq!(path_from(None, &f).unwrap_err().exit_code().code(), 2);
        f.insert("snapshot".into(), json!({"path": "/b/s.db"}));
        assert_eq!(path_from(None, &f).unwrap(), PathBuf::from("/b/s.db"));
        assert_eq!(
            path_from(Some(Path::new("x.db")), &f).unwrap(),
            PathBuf::from("x.db")
        );
    }
}
