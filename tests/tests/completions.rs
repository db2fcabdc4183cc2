//! The committed bash completions complete what the tools take: subcommands, and each
//! subcommand's own options (clap_complete's script needed a fix for hyphenated binary names,
//! see tools/mangen). zsh and fish are not installed here; their scripts are only checked to be
//! current by `cargo xtask completions --check`.

use etcd_rescue_tests::workspace_root;
use std::process::Command;

/// What bash completes for `words` (the last one is the word being completed).
fn complete(tool: &str, words: &[&str]) -> Vec<String> {
    let script = workspace_root().join("completions/bash").join(tool);
    let func = format!("_{}", tool.replace('-', "__"));
    let cword = words.len();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cur = words.last().copied().unwrap_or("");
    let prev = if cword >= 2 { words[cword - 2] } else { tool };
    let body = format!(
        "source '{}'; COMP_WORDS=('{tool}' {}); COMP_CWORD={cword}; {func} '{tool}' '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" ")
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &body])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn subcommands_complete() {
    assert_eq!(complete("etcd-snap", &["sa"]), ["save"]);
    assert_eq!(complete("etcd-wal-backup", &["re"]), ["restore"]);
}

#[test]
fn a_subcommands_own_options_complete() {
    assert!(complete("etcd-snap", &["save", "--comp"]).contains(&"--compress".to_string()));
    assert!(complete("etcd-snap", &["save", "--end"]).contains(&"--endpoints".to_string()));
    assert!(
        complete("etcd-wal-backup", &["restore", "--backup"]).contains(&"--backup-dir".to_string())
    );
    assert!(complete("etcd-rejoin", &["add", "--lea"]).contains(&"--learner".to_string()));
}

#[test]
fn tools_without_subcommands_complete_options() {
    assert!(complete("etcd-health", &["--clu"]).contains(&"--cluster".to_string()));
    assert!(complete("etcd-purge", &["--data"]).contains(&"--data-dir".to_string()));
}
