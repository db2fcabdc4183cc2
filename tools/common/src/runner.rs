//! The runner every `main.rs` calls: parse flags, read the upstream envelope, short-circuit on
//! an upstream failure, run the tool on a tokio runtime, handle SIGINT/SIGTERM (removing
//! partial files), emit exactly one envelope line, print the summary, exit with the code.

use crate::atomic;
use crate::diag;
use crate::envelope::{merge_facts, Envelope, Facts};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitCode;
use crate::input::{read_upstream, InputSource};
use serde_json::Value;
use std::ffi::OsString;
use std::future::Future;

/// The version every tool reports (the workspace has one version).
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Output and input flags shared by every tool.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
#[command(next_help_heading = "Output")]
pub struct CommonArgs {
    /// Print the JSON envelope indented (for reading; pipelines want the default one line)
    #[arg(long, global = true)]
    pub pretty: bool,
    /// Say less on stderr (no summary line); errors are always printed
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
    /// Say more on stderr (-vv for debug)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe,
    /// file or socket
    #[arg(long, value_name = "-|FILE|none", global = true)]
    pub input: Option<String>,
}

impl CommonArgs {
    pub fn verbosity(&self) -> i8 {
        (self.verbose.min(10) as i8) - (self.quiet.min(10) as i8)
    }
}

/// What a tool's run gives back.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Ansible's meaning: did this run change anything?
    pub changed: bool,
    /// Facts to add to (and override in) the upstream facts.
    pub facts: Facts,
    /// Tool-specific detail.
    pub data: Value,
    pub warnings: Vec<String>,
    /// The one plain line printed on stderr at the end (unless `-q`).
    pub summary: String,
    /// Set when the run completed but the answer is a failure (e.g. unhealthy: exit 5) and
    /// the facts and data are still worth printing.
    pub failure: Option<Error>,
}

/// The context a tool runs in.
#[derive(Debug, Default)]
pub struct Ctx {
    /// Facts from the upstream envelope (empty without one).
    pub upstream: Facts,
}

/// A tool: clap arguments plus an async `run`.
pub trait Tool: clap::Parser + Send + 'static {
    /// The binary name, used as the stderr prefix and the envelope's `tool`.
    const NAME: &'static str;
    fn common(&self) -> &CommonArgs;
    fn run(self, ctx: Ctx) -> impl Future<Output = Result<Outcome>> + Send;
}

/// Call from `main`: runs the tool and exits the process with its code.
pub fn main<T: Tool>() -> ! {
    let code = run::<T, _, _>(std::env::args_os());
    std::process::exit(code)
}

fn usage_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    // The first paragraph, on one line: clap puts what is missing ("<FILE>", "--name <NAME>")
    // on the indented lines after "the following required arguments were not provided:".
    let para: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let joined = para.join(" ");
    let first = if joined.is_empty() {
        "bad arguments"
    } else {
        joined.as_str()
    };
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first} (see --help)")
}

fn fail(tool: &str, facts: Facts, e: &Error, pretty: bool) -> i32 {
    let mut env = Envelope::new(tool, TOOL_VERSION);
    env.facts = facts;
    crate::envelope::scrub_secrets(&mut env.facts);
    env.set_error(e);
    diag::error(&e.message);
    env.emit(pretty);
    e.exit_code().code()
}

/// The exit code of the signal that arrived (0: none).
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// How long, after a signal, the runner waits for blocking writers to stop at a checkpoint.
const WRITER_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Run blocking, file-writing work off the async workers as a [`atomic::writer`]: on a signal
/// the runner waits for it to stop (at its next checkpoint) before partial files are removed.
/// The work starts at once (not when the returned future is first polled).
pub fn blocking<R, F>(what: &'static str, f: F) -> impl Future<Output = Result<R>> + Send
where
    F: FnOnce() -> Result<R> + Send + 'static,
    R: Send + 'static,
{
    let w = atomic::writer();
    let h = tokio::task::spawn_blocking(move || {
        let _w = w;
        f()
    });
    async move {
        match h.await {
            Ok(r) => r,
            Err(e) => Err(Error::internal(format!("{what}: worker failed: {e}"))),
        }
    }
}

enum Ended {
    Done(Result<Outcome>),
    Signal(ExitCode),
}

async fn wait_signal() -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers the default action (terminate) applies; never resolve.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => ExitCode::Interrupted,
        _ = term.recv() => ExitCode::Terminated,
    }
}

/// Run a tool on the given argv; returns the exit code. (Separate from `main` for tests.)
pub fn run<T: Tool, I, A>(args: I) -> i32
where
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    diag::init(T::NAME, 0);
    let parsed = match T::try_parse_from(args) {
        Ok(p) => p,
        Err(e) => {
            use clap::error::ErrorKind as K;
            return match e.kind() {
                K::DisplayHelp | K::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                _ => fail(
                    T::NAME,
                    Facts::new(),
                    &Error::usage(usage_message(&e)),
                    false,
                ),
            };
        }
    };
    let common = parsed.common().clone();
    diag::init(T::NAME, common.verbosity());

    let upstream = match read_upstream(&InputSource::from_flag(common.input.as_deref())) {
        Ok(u) => u,
        Err(e) => return fail(T::NAME, Facts::new(), &e, common.pretty),
    };
    if let Some(up) = &upstream {
        if !up.ok {
            let code = up.exit_code();
            let valid = up
                .error
                .as_ref()
                .is_some_and(|e| (1..=255).contains(&e.exit_code));
            if !valid {
                let said = up
                    .error
                    .as_ref()
                    .map_or("no error object".to_string(), |e| {
                        format!("exit_code {}", e.exit_code)
                    });
                return fail(
                    T::NAME,
                    up.facts.clone(),
                    &Error::bad_input(format!(
                        "stdin: upstream {} failed (ok:false) with {said}, not an exit status in 1..=255",
                        up.tool
                    )),
                    common.pretty,
                );
            }
            // Pass the first failure down the pipeline unchanged.
            up.emit(common.pretty);
            diag::summary(&format!(
                "skipped: upstream {} failed (exit {})",
                up.tool,
                code.code()
            ));
            return code.code();
        }
    }
    let upstream_facts = upstream.map(|u| u.facts).unwrap_or_default();

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                T::NAME,
                upstream_facts,
                &Error::internal(format!("cannot start runtime: {e}")),
                common.pretty,
            )
        }
    };
    let ctx = Ctx {
        upstream: upstream_facts.clone(),
    };
    // Signals are awaited on a runtime worker, so that the cancellation takes effect even while
    // the tool's own future is busy in a long synchronous step: its next checkpoint fails.
    let sig = rt.spawn(async {
        let code = wait_signal().await;
        SIGNAL.store(code.code(), std::sync::atomic::Ordering::SeqCst);
        atomic::cancel();
        code
    });
    let ended = rt.block_on(async move {
        let fut = parsed.run(ctx);
        tokio::pin!(fut);
        tokio::select! {
            biased;
            r = &mut fut => Ended::Done(r),
            s = sig => {
                // Blocking writers stop at their next checkpoint: wait for them before their
                // partial files are removed (the tool's future, dropped next, removes its own).
                let deadline = std::time::Instant::now() + WRITER_GRACE;
                while atomic::writers_busy() > 0 && std::time::Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                // A writer that finished its work before the signal took effect gave a result:
                // take it (polled once; not waited for) rather than call it interrupted.
                match tokio::time::timeout(std::time::Duration::ZERO, &mut fut).await {
                    Ok(r) => Ended::Done(r),
                    Err(_) => Ended::Signal(s.unwrap_or(ExitCode::Terminated)),
                }
            }
        }
    });
    let signalled = || match SIGNAL.load(std::sync::atomic::Ordering::SeqCst) {
        130 => Some(ExitCode::Interrupted),
        0 => None,
        _ => Some(ExitCode::Terminated),
    };
    let ended = match ended {
        // Stopped at a checkpoint by the signal: that is the interruption, not a failure.
        Ended::Done(Err(_)) if atomic::cancelled() => {
            Ended::Signal(signalled().unwrap_or(ExitCode::Terminated))
        }
        Ended::Done(Ok(mut out)) if atomic::cancelled() => {
            let name = match signalled() {
                Some(ExitCode::Interrupted) => "SIGINT",
                _ => "SIGTERM",
            };
            out.warnings.push(format!(
                "{name} arrived after the work was complete: the result is kept"
            ));
            Ended::Done(Ok(out))
        }
        e => e,
    };
    let code = match ended {
        Ended::Signal(code) => {
            atomic::remove_all_partials();
            let kind = if code == ExitCode::Interrupted {
                ErrorKind::Interrupted
            } else {
                ErrorKind::Terminated
            };
            let e = Error::new(kind, format!("{}; partial files removed", kind.as_str()));
            fail(T::NAME, upstream_facts, &e, common.pretty)
        }
        Ended::Done(Err(e)) => fail(T::NAME, upstream_facts, &e, common.pretty),
        Ended::Done(Ok(out)) => {
            let mut env = Envelope::new(T::NAME, TOOL_VERSION);
            let mut facts = upstream_facts;
            merge_facts(&mut facts, out.facts);
            crate::envelope::scrub_secrets(&mut facts);
            env.facts = facts;
            env.changed = out.changed;
            env.data = if out.data.is_null() {
                Value::Object(Default::default())
            } else {
                out.data
            };
            for w in &out.warnings {
                diag::warn(w);
            }
            env.warnings = out.warnings;
            if let Some(f) = &out.failure {
                env.set_error(f);
            }
            match (&out.failure, out.summary.is_empty()) {
                // A failure is always said, even with -q: as the summary, or as an error line.
                (Some(f), _) if diag::verbosity() < 0 || out.summary.is_empty() => {
                    diag::error(&f.message)
                }
                (_, false) => diag::summary(&out.summary),
                _ => {}
            }
            env.emit(common.pretty);
            env.exit_code().code()
        }
    };
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser, Debug)]
    struct WithSub {
        #[command(subcommand)]
        cmd: Sub,
        #[command(flatten)]
        common: CommonArgs,
    }

    #[derive(Subcommand, Debug)]
    enum Sub {
        Save { file: String },
    }

    #[test]
    fn common_flags_work_before_and_after_a_subcommand() {
        WithSub::command().debug_assert();
        for argv in [
            vec!["t", "-q", "--pretty", "save", "f"],
            vec!["t", "save", "f", "-q", "--pretty"],
            vec!["t", "save", "-q", "f", "--pretty"],
        ] {
            let a = WithSub::try_parse_from(&argv).unwrap();
            assert_eq!(a.common.quiet, 1, "{argv:?}");
            assert!(a.common.pretty, "{argv:?}");
            assert!(matches!(a.cmd, Sub::Save { .. }));
        }
        let a = WithSub::try_parse_from(["t", "save", "f", "--input", "none", "-vv"]).unwrap();
        assert_eq!(a.common.input.as_deref(), Some("none"));
        assert_eq!(a.common.verbosity(), 2);
    }

    #[derive(Parser, Debug)]
    struct WithConn {
        #[command(subcommand)]
        cmd: Sub,
        #[command(flatten)]
        conn: crate::conn::ConnArgs,
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn connection_flags_at_the_top_work_on_both_sides() {
        WithConn::command().debug_assert();
        for argv in [
            vec!["t", "--endpoints", "a:1", "-q", "save", "f"],
            vec!["t", "save", "--endpoints", "a:1", "f", "-q"],
            vec!["t", "save", "f", "--endpoints", "a:1", "-q"],
        ] {
            let a = WithConn::try_parse_from(&argv).unwrap();
            assert_eq!(a.conn.endpoints, Some(vec!["a:1".to_string()]), "{argv:?}");
            assert_eq!(a.common.quiet, 1, "{argv:?}");
        }
    }

    #[test]
    fn input_and_verbosity_after_the_subcommand() {
        let a = WithSub::try_parse_from(["t", "save", "f", "--input", "none", "-vv"]).unwrap();
        assert_eq!(a.common.input.as_deref(), Some("none"));
        assert_eq!(a.common.verbosity(), 2);
    }
}
