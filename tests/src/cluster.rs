//! Real etcd clusters: start, wait for readiness, stop/kill/restart members, clients, commands.

use crate::slot::{self, Slot, CLIENT_PORT, PEER_PORT};
use crate::tls::TlsFiles;
use crate::{bins, target_dir, tool_bin, EtcdBins, Version};
use anyhow::{anyhow, bail, Context, Result};
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long readiness polling waits before giving up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Poll interval while waiting.
pub const POLL: Duration = Duration::from_millis(100);
/// How long `stop_member` waits after SIGTERM before it sends SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Password of the `root` user of clusters started with `auth: true`.
pub const ROOT_PASSWORD: &str = "rescue-root-pw";

/// What [`Cluster::start`] starts. `ClusterOpts::default()` is a plain 3-member cluster.
#[derive(Debug, Default, Clone)]
pub struct ClusterOpts {
    /// Number of members; 0 means 3.
    pub members: usize,
    /// Client URLs on https with `--client-cert-auth` (peers stay on http).
    pub tls: bool,
    /// Create user `root` (password [`ROOT_PASSWORD`]) with role `root` and enable auth.
    pub auth: bool,
    /// `--enable-v2`.
    pub enable_v2: bool,
    /// `--quota-backend-bytes`.
    pub quota_backend_bytes: Option<u64>,
    /// `--snapshot-count`.
    pub snapshot_count: Option<u64>,
    /// More etcd flags for every member; a flag given here replaces the harness's default for it.
    pub extra_args: Vec<String>,
    /// `--initial-cluster-token`; default unique per cluster.
    pub token: Option<String>,
}

impl ClusterOpts {
    /// A plain cluster of `n` members.
    pub fn members(n: usize) -> Self {
        ClusterOpts {
            members: n,
            ..Default::default()
        }
    }
}

/// One member of a [`Cluster`].
#[derive(Debug)]
pub struct Member {
    /// `m0`, `m1`, ... (index in [`Cluster::members`]).
    pub name: String,
    /// `127.0.K.(i+1)`.
    pub ip: String,
    /// `http(s)://ip:2379`.
    pub client_url: String,
    /// `http://ip:2380`.
    pub peer_url: String,
    /// `<cluster dir>/m<i>` (default `--data-dir`).
    pub data_dir: PathBuf,
    /// `<cluster dir>/m<i>.log`: etcd's stderr (zap JSON), appended across restarts.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Member {
    /// PID (= process group ID) of the running etcd, if the harness started it and it was not
    /// stopped through the harness.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the harness considers this member started.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// Which member(s) a command or client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Member(usize),
    All,
}

/// Every member: `cluster.etcdctl(ALL)`.
pub const ALL: Target = Target::All;

impl From<usize> for Target {
    fn from(i: usize) -> Self {
        Target::Member(i)
    }
}

/// A running etcd cluster owned by a test. Dropping it kills every process it started.
pub struct Cluster {
    pub version: Version,
    pub bins: EtcdBins,
    pub members: Vec<Member>,
    /// `<target>/e2e/<test>-<K>-<pid>/`, mode 0700; removed on drop unless the test panicked.
    pub dir: PathBuf,
    pub tls: Option<TlsFiles>,
    /// `("root", password)` when started with `auth: true`.
    pub auth: Option<(String, String)>,
    /// `--initial-cluster-token`.
    pub token: String,
    /// The address slot K: members are `127.0.K.x`.
    pub slot: u8,
    pub opts: ClusterOpts,
    keep: bool,
    slot_lock: Slot,
}

impl Cluster {
    /// Start a cluster (`--initial-cluster-state new`) and wait until every member answers
    /// `status` and they agree on a leader; with `auth`, then create `root` and enable auth.
    pub async fn start(version: Version, opts: ClusterOpts) -> Result<Cluster> {
        let t0 = Instant::now();
        let bins = bins(version)?;
        let n = if opts.members == 0 { 3 } else { opts.members };
        let slot_lock = slot::acquire(n)?;
        let k = slot_lock.k;
        let dir = make_cluster_dir(k)?;
        let token = opts.token.clone().unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            format!("etcd-rescue-{k}-{}-{nanos:08x}", std::process::id())
        });
        let scheme = if opts.tls { "https" } else { "http" };
        let members: Vec<Member> = (0..n)
            .map(|i| new_member(&dir, &slot_lock, i, scheme))
            .collect();
        let tls = if opts.tls {
            let ips: Vec<String> = members.iter().map(|m| m.ip.clone()).collect();
            Some(TlsFiles::generate(&dir.join("tls"), &ips)?)
        } else {
            None
        };
        let mut c = Cluster {
            version,
            bins,
            members,
            dir,
            tls,
            auth: None,
            token,
            slot: k,
            opts,
            keep: false,
            slot_lock,
        };
        let res = async {
            for i in 0..n {
                let args = c.default_args(i, "new");
                c.spawn(i, args)?;
            }
            c.wait_ready().await?;
            if c.opts.auth {
                c.enable_auth().await?;
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = res {
            c.keep = true;
            return Err(e.context(format!(
                "starting a {n}-member etcd {version} cluster in {} (kept)",
                c.dir.display()
            )));
        }
        eprintln!(
            "etcd-rescue-tests: etcd {version} cluster of {n} on 127.0.{k}.x{}{} ready in {} ms ({})",
            if c.tls.is_some() { ", tls" } else { "" },
            if c.auth.is_some() { ", auth" } else { "" },
            t0.elapsed().as_millis(),
            c.dir.display()
        );
        Ok(c)
    }

    /// Client URLs of every member, comma separated.
    pub fn endpoints(&self) -> String {
        self.urls(Target::All).join(",")
    }

    /// Client URLs of `target`.
    pub fn urls(&self, target: impl Into<Target>) -> Vec<String> {
        match target.into() {
            Target::Member(i) => vec![self.members[i].client_url.clone()],
            Target::All => self.members.iter().map(|m| m.client_url.clone()).collect(),
        }
    }

    /// `host:port` client endpoints of every member without scheme, comma separated.
    pub fn endpoints_no_scheme(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}:{CLIENT_PORT}", m.ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// TLS options with `ca` as trust root and, when `with_identity`, the client certificate.
    pub fn tls_options_with(&self, ca: &Path, with_identity: bool) -> Result<TlsOptions> {
        let tls = self
            .tls
            .as_ref()
            .ok_or_else(|| anyhow!("not a TLS cluster"))?;
        let ca = fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let mut o = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
        if with_identity {
            let cert = fs::read(&tls.client_cert)?;
            let key = fs::read(&tls.client_key)?;
            o = o.identity(Identity::from_pem(cert, key));
        }
        Ok(o)
    }

    /// Connect options for this cluster: TLS (right CA + client cert) and user as configured,
    /// connect timeout 2 s, request timeout 15 s.
    pub fn connect_options(&self) -> Result<ConnectOptions> {
        let mut o = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(15));
        if let Some(tls) = &self.tls {
            o = o.with_tls(self.tls_options_with(&tls.ca, true)?);
        }
        if let Some((u, p)) = &self.auth {
            o = o.with_user(u.clone(), p.clone());
        }
        Ok(o)
    }

    /// A client connected to member `i` only.
    pub async fn client(&self, i: usize) -> Result<Client> {
        self.connect(Target::Member(i), self.connect_options()?)
            .await
    }

    /// A client balanced over every member the harness considers running.
    ///
    /// etcd-client's balanced channel does not fail over: a request routed to a member that is
    /// down fails with "tcp connect error" (and a member that was down hands out one stale
    /// error after it is back). So make a new one after stopping or restarting members.
    pub async fn client_all(&self) -> Result<Client> {
        let urls: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.is_running())
            .map(|m| m.client_url.clone())
            .collect();
        if urls.is_empty() {
            bail!("no member is running");
        }
        Client::connect(&urls, Some(self.connect_options()?))
            .await
            .with_context(|| format!("connecting to {}", urls.join(",")))
    }

    /// A client for `target` with explicit options (e.g. a wrong CA).
    pub async fn connect(&self, target: impl Into<Target>, opts: ConnectOptions) -> Result<Client> {
        let urls = self.urls(target);
        Client::connect(&urls, Some(opts))
            .await
            .with_context(|| format!("connecting to {}", urls.join(",")))
    }

    /// SIGTERM member `i` and wait for it to exit (SIGKILL after [`STOP_TIMEOUT`]).
    pub async fn stop_member(&mut self, i: usize) -> Result<()> {
        let m = &mut self.members[i];
        let Some(mut child) = m.child.take() else {
            return Ok(());
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        if wait_exit(&mut child, STOP_TIMEOUT).await.is_none() {
            eprintln!(
                "etcd-rescue-tests: {} did not exit {} s after SIGTERM; killing it",
                m.name,
                STOP_TIMEOUT.as_secs()
            );
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = child.wait();
        }
        let _ = killpg(pid, Signal::SIGKILL);
        self.record_pids();
        Ok(())
    }

    /// SIGKILL member `i` (its whole process group) and reap it.
    pub async fn kill_member(&mut self, i: usize) -> Result<()> {
        let Some(mut child) = self.members[i].child.take() else {
            return Ok(());
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = kill(pid, Signal::SIGKILL);
        if wait_exit(&mut child, Duration::from_secs(10))
            .await
            .is_none()
        {
            bail!(
                "{} (pid {pid}) survived SIGKILL for 10 s",
                self.members[i].name
            );
        }
        self.record_pids();
        Ok(())
    }

    /// Restart member `i` on its data dir (`--initial-cluster-state existing`) and wait until it
    /// answers `status` (and knows a leader when a majority of members is running).
    pub async fn start_member(&mut self, i: usize) -> Result<()> {
        self.start_member_with(i, &[]).await
    }

    /// Start member `i` with `args` added to its default flags; a flag in `args` replaces the
    /// default of the same name (`--initial-cluster`, `--initial-cluster-state`, `--data-dir`,
    /// ...), e.g. `["--force-new-cluster"]`. Waits like [`Cluster::start_member`]; with
    /// `--force-new-cluster` it also waits for a leader.
    pub async fn start_member_with(&mut self, i: usize, args: &[&str]) -> Result<()> {
        if self.members[i].is_running() {
            bail!("{} is already running", self.members[i].name);
        }
        let defaults = self.default_args(i, "existing");
        let extra: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let merged = merge_args(&defaults, &extra);
        self.spawn(i, merged)?;
        let running = self.members.iter().filter(|m| m.is_running()).count();
        let need_leader = running * 2 > self.members.len()
            || args.iter().any(|a| a.starts_with("--force-new-cluster"));
        self.wait_member(i, need_leader).await
    }

    /// SIGTERM every running member, one after the other, waiting for each to exit.
    pub async fn stop_all(&mut self) -> Result<()> {
        // One at a time: SIGTERM to every member at once makes each wait for its stopping
        // peers (about 7 s here); in turn it takes about 0.1 s per member.
        for i in 0..self.members.len() {
            self.stop_member(i).await?;
        }
        Ok(())
    }

    /// Add a member slot (index = returned value, IP `127.0.K.(i+1)`, a server certificate on
    /// TLS clusters) without starting it; after `member add`, start it with
    /// [`Cluster::start_member`] (state `existing`, `--initial-cluster` of all members) or
    /// [`Cluster::start_member_with`].
    pub fn add_member_slot(&mut self) -> Result<usize> {
        let i = self.members.len();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let m = new_member(&self.dir, &self.slot_lock, i, scheme);
        if let Some(tls) = &mut self.tls {
            tls.add_server(i, &m.ip)?;
        }
        self.members.push(m);
        Ok(i)
    }

    /// `--initial-cluster` value naming every member the harness knows.
    pub fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Poll until every running member answers `status` and all agree on one leader.
    pub async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last: Vec<String> = vec![String::new(); self.members.len()];
        loop {
            self.check_alive()?;
            let mut leaders = Vec::new();
            let mut all_ok = true;
            for (i, last) in last.iter_mut().enumerate() {
                if !self.members[i].is_running() {
                    continue;
                }
                match self.probe(i).await {
                    Ok(leader) if leader != 0 => leaders.push(leader),
                    Ok(_) => {
                        *last = "no leader yet".into();
                        all_ok = false;
                    }
                    Err(e) => {
                        *last = format!("{e:#}");
                        all_ok = false;
                    }
                }
            }
            if all_ok && leaders.windows(2).all(|w| w[0] == w[1]) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let running: Vec<usize> = (0..self.members.len())
                    .filter(|&i| self.members[i].is_running())
                    .collect();
                return Err(self.timeout_error("ready (status + one leader)", &running, &last));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Poll until member `i` answers `status` (with a leader when `need_leader`).
    pub async fn wait_member(&mut self, i: usize, need_leader: bool) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            let last = match self.probe(i).await {
                Ok(leader) if leader != 0 || !need_leader => return Ok(()),
                Ok(_) => "no leader yet".to_string(),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                let mut lasts = vec![String::new(); self.members.len()];
                lasts[i] = last;
                return Err(self.timeout_error("answering status", &[i], &lasts));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// etcdctl of this cluster's version with `ETCDCTL_API=3` and the endpoints, TLS files and
    /// credentials of `target` in its (scrubbed) environment.
    pub fn etcdctl(&self, target: impl Into<Target>) -> Command {
        let mut c = self.command_for(target, &self.bins.etcdctl);
        c.env("ETCDCTL_API", "3");
        c
    }

    /// etcdutl (3.5 only) with a scrubbed environment.
    pub fn etcdutl(&self) -> Result<Command> {
        let p = self
            .bins
            .etcdutl
            .as_ref()
            .ok_or_else(|| anyhow!("etcd {} has no etcdutl", self.version))?;
        Ok(self.command_for(ALL, p))
    }

    /// One of our tool binaries (`tool_bin(name)`) with a scrubbed environment holding only
    /// PATH, HOME and this cluster's `ETCDCTL_ENDPOINTS/CACERT/CERT/KEY/USER/PASSWORD`.
    pub fn tool(&self, name: &str) -> Command {
        let p = tool_bin(name);
        assert!(
            p.is_file(),
            "{} is not built: run `cargo build --bins` (or `cargo xtask test`) first",
            p.display()
        );
        self.command_for(ALL, p)
    }

    /// `program` with a scrubbed environment: PATH (our tools' dir, then this version's etcd
    /// binaries' dir, then the system dirs), HOME = the cluster dir, `RUST_BACKTRACE=1`, and the
    /// `ETCDCTL_*` connection variables of `target`.
    pub fn command_for(&self, target: impl Into<Target>, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear();
        c.env("PATH", self.path_env());
        c.env("HOME", &self.dir);
        c.env("RUST_BACKTRACE", "1");
        for (k, v) in self.etcdctl_env(target) {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    /// The `ETCDCTL_*` variables that point etcdctl (and our tools) at `target`.
    pub fn etcdctl_env(&self, target: impl Into<Target>) -> Vec<(String, String)> {
        let mut env = vec![("ETCDCTL_ENDPOINTS".to_string(), self.urls(target).join(","))];
        if let Some(t) = &self.tls {
            env.push(("ETCDCTL_CACERT".into(), t.ca.display().to_string()));
            env.push(("ETCDCTL_CERT".into(), t.client_cert.display().to_string()));
            env.push(("ETCDCTL_KEY".into(), t.client_key.display().to_string()));
        }
        if let Some((u, p)) = &self.auth {
            env.push(("ETCDCTL_USER".into(), u.clone()));
            env.push(("ETCDCTL_PASSWORD".into(), p.clone()));
        }
        env
    }

    /// PATH for commands run against this cluster.
    pub fn path_env(&self) -> String {
        let mut dirs: Vec<String> = Vec::new();
        if let Some(d) = tool_bin("x").parent() {
            dirs.push(d.display().to_string());
        }
        if let Some(d) = self.bins.etcdctl.parent() {
            dirs.push(d.display().to_string());
        }
        for d in [
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ] {
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_string());
            }
        }
        dirs.join(":")
    }

    /// The last `lines` lines of member `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        tail(&self.members[i].log, lines)
    }

    /// Keep the cluster dir on drop even if the test passes.
    pub fn keep_dir(&mut self) {
        self.keep = true;
    }

    /// The flags the harness gives member `i` (before any override).
    pub fn default_args(&self, i: usize, state: &str) -> Vec<String> {
        let m = &self.members[i];
        let mut a: Vec<String> = vec![
            format!("--name={}", m.name),
            format!("--data-dir={}", m.data_dir.display()),
            format!("--listen-client-urls={}", m.client_url),
            format!("--advertise-client-urls={}", m.client_url),
            format!("--listen-peer-urls={}", m.peer_url),
            format!("--initial-advertise-peer-urls={}", m.peer_url),
            format!("--initial-cluster={}", self.initial_cluster()),
            format!("--initial-cluster-token={}", self.token),
            format!("--initial-cluster-state={state}"),
            "--logger=zap".into(),
            "--log-outputs=stderr".into(),
        ];
        if let Some(t) = &self.tls {
            let (cert, key) = t.server(i);
            a.push(format!("--cert-file={}", cert.display()));
            a.push(format!("--key-file={}", key.display()));
            a.push(format!("--trusted-ca-file={}", t.ca.display()));
            a.push("--client-cert-auth".into());
        }
        if self.opts.enable_v2 {
            a.push("--enable-v2".into());
        }
        if let Some(q) = self.opts.quota_backend_bytes {
            a.push(format!("--quota-backend-bytes={q}"));
        }
        if let Some(s) = self.opts.snapshot_count {
            a.push(format!("--snapshot-count={s}"));
        }
        merge_args(&a, &self.opts.extra_args)
    }

    // ---- internals ----

    fn spawn(&mut self, i: usize, args: Vec<String>) -> Result<()> {
        let etcd = self.bins.etcd.clone();
        let m = &mut self.members[i];
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .with_context(|| format!("opening {}", m.log.display()))?;
        writeln!(
            log,
            "=== etcd-rescue-tests: starting {} {}",
            etcd.display(),
            args.join(" ")
        )?;
        let child = Command::new(&etcd)
            .args(&args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning {}", etcd.display()))?;
        m.child = Some(child);
        self.record_pids();
        Ok(())
    }

    fn record_pids(&mut self) {
        let pids: Vec<(i32, &Path)> = self
            .members
            .iter()
            .filter_map(|m| {
                m.child
                    .as_ref()
                    .map(|c| (c.id() as i32, self.dir.as_path()))
            })
            .collect();
        self.slot_lock.record(&pids);
    }

    /// Fail fast when a member the harness started has exited on its own.
    fn check_alive(&mut self) -> Result<()> {
        for i in 0..self.members.len() {
            let exited: Option<ExitStatus> = match self.members[i].child.as_mut() {
                Some(c) => c.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(st) = exited {
                self.members[i].child = None;
                self.record_pids();
                bail!(
                    "{} ({}) exited: {st}; last log lines of {}:\n{}",
                    self.members[i].name,
                    self.members[i].ip,
                    self.members[i].log.display(),
                    self.log_tail(i, 25)
                );
            }
        }
        Ok(())
    }

    /// `status` of member `i` with short timeouts; returns the leader it reports.
    async fn probe(&self, i: usize) -> Result<u64> {
        let opts = self
            .connect_options()?
            .with_connect_timeout(Duration::from_millis(1000))
            .with_timeout(Duration::from_millis(1500));
        let mut c = self.connect(i, opts).await?;
        let st = c.status().await.context("status")?;
        Ok(st.leader())
    }

    async fn enable_auth(&mut self) -> Result<()> {
        let mut c = self.client(0).await?;
        // `role add root` fails when it exists (it does not by default): ignore that.
        let _ = c.role_add("root").await;
        c.user_add("root", ROOT_PASSWORD, None)
            .await
            .context("user add root")?;
        c.user_grant_role("root", "root")
            .await
            .context("user grant-role root root")?;
        c.auth_enable().await.context("auth enable")?;
        self.auth = Some(("root".into(), ROOT_PASSWORD.into()));
        // The password works on every member before we hand the cluster out.
        for i in 0..self.members.len() {
            let mut c = self.client(i).await?;
            c.status().await.context("status with root credentials")?;
        }
        Ok(())
    }

    fn timeout_error(&self, what: &str, members: &[usize], last: &[String]) -> anyhow::Error {
        let mut msg = format!(
            "etcd {} cluster in {} not {what} after {} s",
            self.version,
            self.dir.display(),
            READY_TIMEOUT.as_secs()
        );
        for &i in members {
            let m = &self.members[i];
            msg.push_str(&format!(
                "\n--- {} ({}): last error: {}; log {} tail:\n{}",
                m.name,
                m.client_url,
                last.get(i).map(String::as_str).unwrap_or(""),
                m.log.display(),
                self.log_tail(i, 15)
            ));
        }
        anyhow!(msg)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let pid = Pid::from_raw(child.id() as i32);
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = kill(pid, Signal::SIGKILL);
                let _ = child.wait();
            }
        }
        self.slot_lock.record(&[]);
        if std::thread::panicking() || self.keep {
            eprintln!(
                "etcd-rescue-tests: kept etcd {} cluster dir {}",
                self.version,
                self.dir.display()
            );
            for i in 0..self.members.len() {
                eprintln!(
                    "--- {} ({}) log tail:\n{}",
                    self.members[i].name,
                    self.members[i].log.display(),
                    self.log_tail(i, 20)
                );
            }
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn new_member(dir: &Path, slot: &Slot, i: usize, scheme: &str) -> Member {
    let ip = slot.ip(i);
    let name = format!("m{i}");
    Member {
        client_url: format!("{scheme}://{ip}:{CLIENT_PORT}"),
        peer_url: format!("http://{ip}:{PEER_PORT}"),
        data_dir: dir.join(&name),
        log: dir.join(format!("{name}.log")),
        name,
        ip,
        child: None,
    }
}

/// `<target>/e2e/<test name>-<K>-<pid>[-n]`, mode 0700.
fn make_cluster_dir(k: u8) -> Result<PathBuf> {
    let base = target_dir().join("e2e");
    fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let raw = std::thread::current()
        .name()
        .unwrap_or("cluster")
        .to_string();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name: String = name.trim_matches('-').chars().take(60).collect();
    let name = if name.is_empty() {
        "cluster".into()
    } else {
        name
    };
    for n in 0.. {
        let p = if n == 0 {
            base.join(format!("{name}-{k}-{}", std::process::id()))
        } else {
            base.join(format!("{name}-{k}-{}-{n}", std::process::id()))
        };
        match fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", p.display())),
        }
    }
    unreachable!("an unbounded loop returns")
}

/// Defaults with every flag named in `overrides` removed, then `overrides` as given.
/// Flags are `--name=value`, `--name value` or a bare `--name`.
pub fn merge_args(defaults: &[String], overrides: &[String]) -> Vec<String> {
    let names: Vec<String> = flag_groups(overrides).into_iter().map(|(n, _)| n).collect();
    let mut out: Vec<String> = Vec::new();
    for (name, group) in flag_groups(defaults) {
        if !names.contains(&name) {
            out.extend(group);
        }
    }
    out.extend(overrides.iter().cloned());
    out
}

fn flag_groups(args: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let stripped = a.trim_start_matches('-');
        if let Some((name, _)) = stripped.split_once('=') {
            out.push((name.to_string(), vec![a.clone()]));
            i += 1;
        } else if a.starts_with('-') && i + 1 < args.len() && !args[i + 1].starts_with('-') {
            out.push((stripped.to_string(), vec![a.clone(), args[i + 1].clone()]));
            i += 2;
        } else {
            out.push((stripped.to_string(), vec![a.clone()]));
            i += 1;
        }
    }
    out
}

async fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last `lines` lines of a file (reads at most its last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn merge_replaces_named_flags() {
        let d = s(&[
            "--name=m0",
            "--initial-cluster=a",
            "--initial-cluster-state=existing",
            "--client-cert-auth",
        ]);
        let o = s(&["--initial-cluster", "m0=http://x", "--force-new-cluster"]);
        assert_eq!(
            merge_args(&d, &o),
            s(&[
                "--name=m0",
                "--initial-cluster-state=existing",
                "--client-cert-auth",
                "--initial-cluster",
                "m0=http://x",
                "--force-new-cluster",
            ])
        );
        let o = s(&["--initial-cluster-state=new"]);
        assert_eq!(
            merge_args(&d, &o),
            s(&[
                "--name=m0",
                "--initial-cluster=a",
                "--client-cert-auth",
                "--initial-cluster-state=new",
            ])
        );
    }
}
