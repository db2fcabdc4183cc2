//! stdin rules: read only when stdin is a pipe, a regular file or a socket, or when `--input`
//! names a source. A terminal, /dev/null or a closed stdin means "no upstream".

use crate::envelope::{parse_upstream, Envelope};
use crate::error::{Error, Result};
use std::io::Read;

/// Upstream envelopes are small; refuse anything absurd rather than allocate without bound.
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Where the upstream envelope comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// Default: stdin if it is a pipe, file or socket.
    Auto,
    /// `--input -`: stdin, whatever it is.
    Stdin,
    /// `--input none`: never read stdin (for ssh/Ansible, where stdin may be an idle pipe).
    None,
    /// `--input PATH`.
    File(std::path::PathBuf),
}

impl InputSource {
    pub fn from_flag(flag: Option<&str>) -> InputSource {
        match flag {
            None => InputSource::Auto,
            Some("-") => InputSource::Stdin,
            Some("none") => InputSource::None,
            Some(p) => InputSource::File(p.into()),
        }
    }
}

/// Is fd 0 a pipe, regular file or socket?
pub fn stdin_is_readable_source() -> bool {
    use nix::sys::stat::{fstat, SFlag};
    match fstat(std::io::stdin()) {
        Ok(st) => {
            let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            fmt == SFlag::S_IFIFO || fmt == SFlag::S_IFREG || fmt == SFlag::S_IFSOCK
        }
        Err(_) => false,
    }
}

fn read_bounded(mut r: impl Read, what: &str) -> Result<String> {
    let mut buf = Vec::new();
    r.by_ref()
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(format!("cannot read {what}: {e}")))?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::bad_input(format!(
            "{what}: more than {MAX_INPUT_BYTES} bytes, not an envelope"
        )));
    }
    String::from_utf8(buf).map_err(|_| Error::bad_input(format!("{what}: not UTF-8 text")))
}

/// Read the upstream envelope, if any.
pub fn read_upstream(src: &InputSource) -> Result<Option<Envelope>> {
    let text = match src {
        InputSource::None => return Ok(None),
        InputSource::Auto if !stdin_is_readable_source() => return Ok(None),
        InputSource::Auto | InputSource::Stdin => read_bounded(std::io::stdin().lock(), "stdin")?,
        InputSource::File(p) => {
            let f = std::fs::File::open(p).map_err(|e| {
                Error::bad_input(format!("cannot open --input {}: {e}", p.display()))
            })?;
            read_bounded(f, &p.display().to_string())?
        }
    };
    parse_upstream(&text)
}
