//! Renders `man/<tool>.1` for every tool from its clap definition (clap_mangen) plus the
//! sections clap does not know: INPUT, OUTPUT, EXIT STATUS, ENVIRONMENT, EXAMPLES, SEE ALSO.
//!
//! `etcd-rescue-mangen DIR` writes the pages; `--check DIR` exits 1 when a page is stale.
//! `--completions DIR` does the same for the shell completions (clap_complete): bash, zsh, fish.
//! The date is pinned so that pages are reproducible.

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use etcd_common::man::{ManExtra, CONN_ENV};
use std::path::{Path, PathBuf};

const DATE: &str = "2026-11-26";
const MANUAL: &str = "etcd-rescue";

fn tools() -> Vec<(clap::Command, ManExtra)> {
    let mut v = vec![
        (etcd_health::Args::command(), etcd_health::man()),
        (etcd_snap::Args::command(), etcd_snap::man()),
        (etcd_purge::Args::command(), etcd_purge::man()),
        (etcd_member_fix::Args::command(), etcd_member_fix::man()),
        (etcd_rejoin::Args::command(), etcd_rejoin::man()),
        (
            etcd_detect_version::Args::command(),
            etcd_detect_version::man(),
        ),
        (etcd_wal_backup::Args::command(), etcd_wal_backup::man()),
    ];
    let mut wal_backup = etcd_wal_backup::Args::command();
    // Built, so that the global flags (-q, --pretty, ...) reach the subcommand pages.
    wal_backup.build();
    for sub in wal_backup
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
    {
        let name = format!("etcd-wal-backup-{}", sub.get_name());
        let name: &'static str = Box::leak(name.into_boxed_str());
        let sub = sub.clone().name(name).version(env!("CARGO_PKG_VERSION"));
        v.push((sub, etcd_wal_backup::man()));
    }
    let mut rejoin = etcd_rejoin::Args::command();
    // Built, so that the global flags (-q, --pretty, ...) reach the subcommand pages.
    rejoin.build();
    for sub in rejoin.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("etcd-rejoin-{}", sub.get_name());
        let name: &'static str = Box::leak(name.into_boxed_str());
        let sub = sub.clone().name(name).version(env!("CARGO_PKG_VERSION"));
        v.push((sub, etcd_rejoin::man()));
    }
    // One page per subcommand (the parent page refers to them as etcd-snap-<sub>(1)).
    let mut snap = etcd_snap::Args::command();
    // Built, so that the global flags (-q, --pretty, ...) reach the subcommand pages.
    snap.build();
    for sub in snap.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("etcd-snap-{}", sub.get_name());
        let name: &'static str = Box::leak(name.into_boxed_str());
        let sub = sub.clone().name(name).version(env!("CARGO_PKG_VERSION"));
        v.push((sub, etcd_snap::man()));
    }
    v
}

fn section(roff: &mut Roff, title: &str, text: &str) {
    roff.control("SH", [title]);
    for para in text.split("\n\n") {
        if para.lines().any(|l| l.starts_with("  ")) {
            // Paragraph with example lines: keep them verbatim.
            let mut lines = para.lines().peekable();
            while let Some(l) = lines.peek() {
                if l.starts_with("  ") {
                    break;
                }
                roff.text([roman(*l)]);
                lines.next();
            }
            roff.control("PP", [] as [&str; 0]);
            roff.control("nf", [] as [&str; 0]);
            for l in lines {
                roff.text([roman(l)]);
            }
            roff.control("fi", [] as [&str; 0]);
        } else {
            roff.text([roman(para)]);
        }
        roff.control("PP", [] as [&str; 0]);
    }
}

fn render(cmd: clap::Command, extra: &ManExtra) -> std::io::Result<Vec<u8>> {
    let man = Man::new(cmd.clone())
        .date(DATE)
        .manual(MANUAL)
        .source(format!("etcd-rescue {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    if cmd.get_subcommands().next().is_some() {
        man.render_subcommands_section(&mut out)?;
    }
    let mut roff = Roff::new();
    if !extra.input.is_empty() {
        section(&mut roff, "INPUT", extra.input);
    }
    section(
        &mut roff,
        "OUTPUT",
        &format!(
            "One JSON line on stdout, the envelope: {{\"v\":1, \"tool\", \"tool_version\", \"ok\", \"changed\", \"facts\", \"data\", \"warnings\", \"error\"}}. \
Member and cluster IDs are 16-digit hex strings. Facts of an upstream envelope are passed on, unknown keys kept; \
an upstream envelope with ok:false is passed on unchanged and its exit code returned. Diagnostics and one summary line go to stderr (-q silences the summary).\n\n{}",
            extra.output
        ),
    );
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in etcd_common::exit::table() {
        roff.control("TP", [] as [&str; 0]);
        roff.text([bold(code.to_string())]);
        roff.text([roman(meaning)]);
    }
    let mut env: Vec<(&str, &str)> = Vec::new();
    if extra.connects {
        env.extend_from_slice(CONN_ENV);
    }
    env.extend_from_slice(extra.environment);
    if !env.is_empty() {
        roff.control("SH", ["ENVIRONMENT"]);
        for (k, v) in env {
            roff.control("TP", [] as [&str; 0]);
            roff.text([bold(k)]);
            roff.text([roman(v)]);
        }
    }
    if !extra.examples.is_empty() {
        section(&mut roff, "EXAMPLES", extra.examples);
    }
    if !extra.see_also.is_empty() {
        roff.control("SH", ["SEE ALSO"]);
        let list: Vec<String> = extra.see_also.iter().map(|s| format!("{s}(1)")).collect();
        roff.text([roman(list.join(", "))]);
    }
    roff.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// The top-level command of every tool (the ones a shell completes).
fn top_level() -> Vec<clap::Command> {
    vec![
        etcd_health::Args::command(),
        etcd_snap::Args::command(),
        etcd_purge::Args::command(),
        etcd_member_fix::Args::command(),
        etcd_rejoin::Args::command(),
        etcd_detect_version::Args::command(),
        etcd_wal_backup::Args::command(),
    ]
}

/// `bash/<tool>`, `zsh/_<tool>`, `fish/<tool>.fish` for every tool (clap_complete).
fn completions(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    use clap_complete::Shell;
    let mut out = Vec::new();
    for mut cmd in top_level() {
        let name = cmd.get_name().to_string();
        for (shell, file) in [
            (Shell::Bash, format!("bash/{name}")),
            (Shell::Zsh, format!("zsh/_{name}")),
            (Shell::Fish, format!("fish/{name}.fish")),
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, name.clone(), &mut buf);
            if shell == Shell::Bash {
                buf = fix_bash_hyphenated_bin(&name, &buf);
            }
            out.push((dir.join(file), buf));
        }
    }
    out
}

/// clap_complete's bash script spells the state of a subcommand of a hyphenated binary two
/// ways (clap-rs/clap#6421, open): the dispatch loop arrives at `etcd__snap__subcmd__save`,
/// the case arm is labelled `etcd__subcmd__snap__subcmd__save`, so no option of a subcommand
/// ever completes. Relabel the arms the way the loop spells them.
fn fix_bash_hyphenated_bin(name: &str, script: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    let wrong = name.replace('-', "__subcmd__");
    let right = name.replace('-', "__");
    text.replace(&format!("{wrong}__subcmd__"), &format!("{right}__subcmd__"))
        .into_bytes()
}

fn man_pages(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for (cmd, extra) in tools() {
        let name = cmd.get_name().to_string();
        match render(cmd, &extra) {
            Ok(page) => out.push((dir.join(format!("{name}.1")), page)),
            Err(e) => {
                eprintln!("etcd-rescue-mangen: error: cannot render {name}: {e}");
                std::process::exit(1);
            }
        }
    }
    out
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let check = take_flag(&mut args, "--check");
    let complete = take_flag(&mut args, "--completions");
    let dir = match args.as_slice() {
        [dir] => PathBuf::from(dir),
        _ => {
            eprintln!("usage: etcd-rescue-mangen [--check] [--completions] DIR");
            std::process::exit(2);
        }
    };
    let (files, fix) = if complete {
        (completions(&dir), "cargo xtask completions")
    } else {
        (man_pages(&dir), "cargo xtask man")
    };
    let mut stale = Vec::new();
    for (path, bytes) in files {
        if check {
            if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
                stale.push(path);
            }
        } else if let Err(e) = write(&path, &bytes) {
            eprintln!(
                "etcd-rescue-mangen: error: cannot write {}: {e}",
                path.display()
            );
            std::process::exit(1);
        }
    }
    if !stale.is_empty() {
        for p in &stale {
            eprintln!("etcd-rescue-mangen: stale: {} (run `{fix}`)", p.display());
        }
        std::process::exit(1);
    }
}

fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}

fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}
