//! Diagnostics for humans, on stderr, one line each: `etcd-snap: error: cannot …`.

use std::io::Write;
use std::sync::atomic::{AtomicI8, Ordering};

static VERBOSITY: AtomicI8 = AtomicI8::new(0);
static TOOL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Set once by the runner: the tool name and `-v` count minus `-q` count.
pub fn init(tool: &'static str, verbosity: i8) {
    let _ = TOOL.set(tool);
    VERBOSITY.store(verbosity, Ordering::Relaxed);
}

pub fn verbosity() -> i8 {
    VERBOSITY.load(Ordering::Relaxed)
}

fn tool() -> &'static str {
    TOOL.get().copied().unwrap_or("etcd-rescue")
}

fn line(level: &str, msg: &str) {
    let msg = crate::error::one_line(msg);
    let mut err = std::io::stderr().lock();
    let _ = if level.is_empty() {
        writeln!(err, "{}: {msg}", tool())
    } else {
        writeln!(err, "{}: {level}: {msg}", tool())
    };
}

/// Always shown (even with `-q`): errors.
pub fn error(msg: &str) {
    line("error", msg);
}

/// Shown unless `-q`.
pub fn warn(msg: &str) {
    if verbosity() >= 0 {
        line("warning", msg);
    }
}

/// The closing summary line (`etcd-health: healthy: 3/3 members …`), silenced by `-q`.
pub fn summary(msg: &str) {
    if verbosity() >= 0 {
        line("", msg);
    }
}

/// Shown with `-v`.
pub fn info(msg: &str) {
    if verbosity() >= 1 {
        line("info", msg);
    }
}

/// Shown with `-vv`.
pub fn debug(msg: &str) {
    if verbosity() >= 2 {
        line("debug", msg);
    }
}
