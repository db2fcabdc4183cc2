//! Helpers for the CLI tests of every tool (`tools/*/tests/cli.rs`): the tool binary with a
//! scrubbed environment, and the contract every run must keep — exactly one JSON line on
//! stdout (the envelope), diagnostics on stderr, a documented exit code.
//!
//! Test code: a broken contract panics with what was printed.

use assert_cmd::Command;
use serde_json::Value;

/// The binary `name` built by cargo, with only `PATH=/usr/bin:/bin` in its environment (no
/// `ETCDCTL_*` from the developer's shell).
pub fn tool(name: &str) -> Command {
    let mut c = Command::cargo_bin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    c.env_clear().env("PATH", "/usr/bin:/bin");
    c
}

/// The envelope: stdout must be exactly one line of JSON.
pub fn envelope(stdout: &[u8]) -> Value {
    let s = String::from_utf8_lossy(stdout);
    assert_eq!(s.lines().count(), 1, "exactly one line on stdout: {s}");
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Run `c`: (exit code, envelope, stderr). A run killed by a signal has no exit code: it fails
/// the test.
pub fn run(c: &mut Command) -> (i32, Value, String) {
    let o = c.output().unwrap_or_else(|e| panic!("cannot run: {e}"));
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let code = o
        .status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}\nstderr: {stderr}", o.status));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one line on stdout: {stdout}\nstderr: {stderr}"
    );
    let v = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, v, stderr)
}
