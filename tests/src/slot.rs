//! Address slots: cluster K uses 127.0.K.1..n. A slot is held by an exclusive `flock` on
//! `/tmp/etcd-rescue-slots/K.lock` for the cluster's lifetime, which is unique across threads
//! (flock locks belong to open file descriptions) and across processes. The lock file records
//! the process groups started under the slot, so the next holder can reap etcd processes left by
//! a test process that died without running its destructors.

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub const SLOT_DIR: &str = "/tmp/etcd-rescue-slots";
pub const FIRST: u8 = 1;
pub const LAST: u8 = 250;
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;

pub struct Slot {
    pub k: u8,
    lock: Flock<File>,
}

impl Slot {
    /// The IP of member `i` (0-based): `127.0.K.(i+1)`.
    pub fn ip(&self, i: usize) -> String {
        format!("127.0.{}.{}", self.k, i + 1)
    }

    /// Record `(pgid, cluster dir)` of every process group started under this slot.
    pub fn record(&mut self, pgids: &[(i32, &Path)]) {
        let mut text = String::new();
        for (pgid, dir) in pgids {
            text.push_str(&format!("{pgid} {}\n", dir.display()));
        }
        let f: &mut File = &mut self.lock;
        let _ = f.set_len(0);
        let _ = f.seek(SeekFrom::Start(0));
        let _ = f.write_all(text.as_bytes());
    }
}

/// Take a free slot able to host `members` members: locked and with every member's client and
/// peer ports bindable.
pub fn acquire(members: usize) -> Result<Slot> {
    if members == 0 || members > 200 {
        bail!("a cluster has 1 to 200 members, not {members}");
    }
    std::fs::create_dir_all(SLOT_DIR).with_context(|| format!("creating {SLOT_DIR}"))?;
    let _ = std::fs::set_permissions(SLOT_DIR, std::fs::Permissions::from_mode(0o1777));
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep);
    // Start at a spot that differs between processes and between calls, so concurrent tests do
    // not all race for slot 1.
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let n = u32::from(LAST - FIRST) + 1;
    let start =
        (std::process::id().wrapping_mul(7919) + CALLS.fetch_add(1, Ordering::Relaxed) * 13) % n;
    let mut busy_ports = Vec::new();
    for off in 0..n {
        let k = FIRST + ((start + off) % n) as u8;
        let path = PathBuf::from(SLOT_DIR).join(format!("{k}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err(_) => continue,
        };
        let mut slot = Slot { k, lock };
        reap_leftovers(&mut slot);
        match ports_free(k, members) {
            Ok(()) => {
                slot.record(&[]);
                return Ok(slot);
            }
            Err(addr) => busy_ports.push(addr),
        }
    }
    bail!(
        "no free address slot in 127.0.{FIRST}-{LAST}.x (all locked in {SLOT_DIR} or with ports in use{})",
        if busy_ports.is_empty() {
            String::new()
        } else {
            format!(
                "; busy: {}",
                busy_ports.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            )
        }
    )
}

/// Once per process: reap what dead test processes left in any slot nobody holds.
fn sweep() {
    for k in FIRST..=LAST {
        let path = PathBuf::from(SLOT_DIR).join(format!("{k}.lock"));
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            continue;
        }
        if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            let mut slot = Slot { k, lock };
            reap_leftovers(&mut slot);
            slot.record(&[]);
        }
    }
}

fn ports_free(k: u8, members: usize) -> std::result::Result<(), String> {
    for i in 0..members {
        let ip = Ipv4Addr::new(127, 0, k, (i + 1) as u8);
        for port in [CLIENT_PORT, PEER_PORT] {
            let addr = SocketAddrV4::new(ip, port);
            if let Err(e) = TcpListener::bind(addr) {
                return Err(format!("{addr}: {e}"));
            }
        }
    }
    Ok(())
}

/// Kill the process groups a previous holder recorded, if they still run etcd on its dir.
fn reap_leftovers(slot: &mut Slot) {
    let mut text = String::new();
    {
        let f: &mut File = &mut slot.lock;
        let _ = f.seek(SeekFrom::Start(0));
        let _ = f.read_to_string(&mut text);
    }
    for line in text.lines() {
        let Some((pgid, dir)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pgid) = pgid.parse::<i32>() else {
            continue;
        };
        if pgid <= 1 {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pgid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("etcd") && cmdline.contains(dir) {
            eprintln!("etcd-rescue-tests: reaping leftover etcd process group {pgid} ({dir})");
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            // Give the kernel a moment to release its sockets.
            for _ in 0..50 {
                if !Path::new(&format!("/proc/{pgid}")).exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}
