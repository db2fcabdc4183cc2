//! What each tool adds to its man page beyond what clap knows: INPUT, OUTPUT, ENVIRONMENT,
//! EXAMPLES (a pipeline and an Ansible task), SEE ALSO. The EXIT STATUS table is common.

/// Extra man page sections of one tool.
#[derive(Debug, Clone, Default)]
pub struct ManExtra {
    /// What the tool reads: stdin envelope facts, files.
    pub input: &'static str,
    /// What it writes: facts and data keys.
    pub output: &'static str,
    /// Environment variables beyond the common connection ones.
    pub environment: &'static [(&'static str, &'static str)],
    /// Worked examples: shell pipelines and an Ansible task.
    pub examples: &'static str,
    pub see_also: &'static [&'static str],
    /// Whether the tool takes the etcdctl connection flags (adds their environment variables).
    pub connects: bool,
}

/// The environment variables of the connection flags.
pub const CONN_ENV: &[(&str, &str)] = &[
    ("ETCDCTL_ENDPOINTS", "default for --endpoints"),
    ("ETCDCTL_CACERT", "default for --cacert"),
    ("ETCDCTL_CERT", "default for --cert"),
    ("ETCDCTL_KEY", "default for --key"),
    ("ETCDCTL_USER", "default for --user"),
    ("ETCDCTL_PASSWORD", "default for --password (never printed)"),
    ("ETCDCTL_DIAL_TIMEOUT", "default for --dial-timeout"),
    ("ETCDCTL_COMMAND_TIMEOUT", "default for --command-timeout"),
];
