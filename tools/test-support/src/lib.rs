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

/// `args` (a subcommand and its own arguments) with the tool's global flags `globals` put
/// before the subcommand, right after it, and at the end: the three argvs a tool with
/// subcommands must treat alike.
pub fn global_positions(globals: &[&str], args: &[&str]) -> [Vec<String>; 3] {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (sub, rest) = args.split_first().expect("a subcommand");
    let mut before = s(globals);
    before.push(sub.to_string());
    before.extend(s(rest));
    let mut right_after = vec![sub.to_string()];
    right_after.extend(s(globals));
    right_after.extend(s(rest));
    let mut at_end = s(args);
    at_end.extend(s(globals));
    [before, right_after, at_end]
}

/// Run `c` with `--pretty` among its flags: (exit code, envelope, stderr). stdout must be one
/// indented JSON document (more than one line), so the flag took effect.
pub fn run_pretty(c: &mut Command) -> (i32, Value, String) {
    let o = c.output().unwrap_or_else(|e| panic!("cannot run: {e}"));
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let code = o
        .status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}\nstderr: {stderr}", o.status));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.lines().count() > 1,
        "--pretty: an indented envelope on stdout, got: {stdout}\nstderr: {stderr}"
    );
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, v, stderr)
}
