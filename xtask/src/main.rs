//! Project automation, cargo-xtask style: `cargo xtask <command>`.
//!
//! xtask builds on a bare machine: it depends on nothing that needs protoc. Commands that need
//! the tools or the end-to-end crate first run `deps`, then build and run them with cargo.

mod deps;

use anyhow::{bail, Result};
use std::path::PathBuf;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  deps            install what is missing (protoc, etcd 3.4.23, etcd 3.5.1, shellcheck); print where etcd is, as JSON
";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("deps") => {
            let bins = deps::ensure(&root)?;
            println!("{}", serde_json::to_string(&bins)?);
            Ok(())
        }
        Some("-h") | Some("--help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// The workspace root: the parent of this crate's manifest dir.
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
