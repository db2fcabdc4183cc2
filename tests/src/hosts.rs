//! The cluster as `scripts/` sees it with the local runner: an env file per member
//! (`DIR/{name}.env`, read by etcd as its ETCD_* variables), pid-file control
//! (`DIR/run/{name}.pid`), and the scripts run with `ETCD_RESCUE_RUNNER=local`. Dropping it
//! kills the etcd processes the scripts started (they are not the harness's children).

use crate::{workspace_root, Cluster, ALL};
use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `<workspace>/scripts`.
pub fn scripts_dir() -> PathBuf {
    workspace_root().join("scripts")
}

/// The cluster as the scripts see it: env files, pid files, and a guard that kills the etcd
/// processes the scripts started (they are not the harness's children).
pub struct ScriptHosts {
    pub dir: PathBuf,
    pub names: Vec<String>,
    pub initial_cluster: String,
}

impl Drop for ScriptHosts {
    fn drop(&mut self) {
        for n in &self.names {
            if let Ok(p) = std::fs::read_to_string(self.pid_file(n)) {
                if let Ok(pid) = p.trim().parse::<i32>() {
                    // setsid: the pid is its own process group.
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
    }
}

impl ScriptHosts {
    pub fn pid_file(&self, name: &str) -> PathBuf {
        self.dir.join("run").join(format!("{name}.pid"))
    }

    /// Write the env files of `c`'s members (restored clusters get a new token from the script).
    pub fn new(c: &Cluster) -> Result<ScriptHosts> {
        std::fs::create_dir_all(c.dir.join("run")).context("creating run/")?;
        for m in &c.members {
            let mut env = format!(
                "# etcd settings of {name} (as /etc/etcd.env)\nETCD_NAME={name}\nETCD_DATA_DIR={dd}\n\
                 ETCD_LISTEN_CLIENT_URLS={cu}\nETCD_ADVERTISE_CLIENT_URLS={cu}\n\
                 ETCD_LISTEN_PEER_URLS={pu}\nETCD_INITIAL_ADVERTISE_PEER_URLS={pu}\n\
                 ETCD_INITIAL_CLUSTER=\"{ic}\"\nETCD_INITIAL_CLUSTER_TOKEN={tok}\n\
                 ETCD_INITIAL_CLUSTER_STATE=new\nETCD_LOGGER=zap\nETCD_LOG_OUTPUTS=stderr\n",
                name = m.name,
                dd = m.data_dir.display(),
                cu = m.client_url,
                pu = m.peer_url,
                ic = c.initial_cluster(),
                tok = c.token,
            );
            if c.opts.enable_v2 {
                env.push_str("ETCD_ENABLE_V2=true\n");
            }
            std::fs::write(c.dir.join(format!("{}.env", m.name)), env)
                .context("writing an env file")?;
        }
        Ok(ScriptHosts {
            dir: c.dir.clone(),
            names: c.members.iter().map(|m| m.name.clone()).collect(),
            initial_cluster: c.initial_cluster(),
        })
    }

    /// A script with the local runner, pid-file control and this cluster's paths.
    pub fn script(&self, c: &Cluster, name: &str) -> Command {
        let mut cmd = c.command_for(ALL, "bash");
        cmd.arg(scripts_dir().join(name));
        cmd.env("ETCD_RESCUE_RUNNER", "local")
            .env(
                "ETCD_RESCUE_CONTROL",
                format!("pidfile:{}/run/{{name}}.pid", self.dir.display()),
            )
            .env(
                "ETCD_RESCUE_ENV_FILE",
                format!("{}/{{name}}.env", self.dir.display()),
            )
            .env("ETCD_RESCUE_ETCD_BIN", &c.bins.etcd)
            .env("ETCD_INITIAL_CLUSTER", &self.initial_cluster)
            .env_remove("ETCDCTL_ENDPOINTS");
        cmd
    }

    /// Hand the harness's cluster over to pid-file control: stop it, start every member from
    /// its env file through lib.sh's etcd_start, wait until healthy.
    pub async fn take_over(&self, c: &mut Cluster) -> Result<()> {
        c.stop_all().await?;
        let lib = scripts_dir().join("lib.sh");
        for n in &self.names {
            let base = self.script(c, "lib.sh");
            let o = Command::new("bash")
                .env_clear()
                .envs(base.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
                .arg("-c")
                .arg(format!(
                    "set -euo pipefail; . {}; setup_hosts; etcd_start \"$1\"",
                    lib.display()
                ))
                .arg("take-over")
                .arg(n)
                .stdin(Stdio::null())
                .output()
                .context("running bash")?;
            if !o.status.success() {
                bail!("starting {n}: {}", String::from_utf8_lossy(&o.stderr));
            }
        }
        let o = c
            .tool("etcd-health")
            .args(["--cluster", "--wait", "60s", "--retry-interval", "300ms"])
            .output()
            .context("running etcd-health")?;
        if !o.status.success() {
            bail!(
                "not healthy after the take-over: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(())
    }
}
