//! Starting and stopping a `vigil serve` for a benchmark: fresh store, dev certificates,
//! the simulated hosts' EKs allow-listed and, with GPUs, the test device and RIM roots.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use crate::gpu::GpuFleet;

/// How the spawned verifier learns to trust the simulated EKs.
pub enum EkPolicy {
    /// `--ek-roots DIR`: the test TPM vendor CA.
    Roots(PathBuf),
    /// SHA-256 of each EK TPM2B_PUBLIC.
    Allow(Vec<String>),
}

/// How long the spawned verifier may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// True for https:// URLs whose host is a 127.0.0.0/8 address or localhost: the load
/// generator drives nothing beyond this machine.
pub fn is_loopback_url(url: &str) -> bool {
    let host = vigil_tls::host_of(url);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `vigil` beside this executable (target/release/vigil-loadgen -> target/release/vigil).
pub fn vigil_binary(given: Option<&Path>) -> Result<PathBuf, String> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this executable: {e}"))?
            .parent()
            .map(|dir| dir.join("vigil"))
            .ok_or("this executable has no directory")?,
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no vigil binary at {} (build it: cargo build --release -p vigil-verifier --bins, or give --vigil)",
            path.display()
        ))
    }
}

pub async fn dev_certs(vigil: &Path, dir: &Path) -> Result<(), String> {
    if dir.join("ca.pem").is_file() {
        return Ok(());
    }
    let output = Command::new(vigil)
        .arg("dev-certs")
        .arg(dir)
        .env("VIGIL_CONFIG", "")
        .output()
        .await
        .map_err(|e| format!("cannot run {} dev-certs: {e}", vigil.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "vigil dev-certs failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A running `vigil serve`, killed when dropped.
pub struct Spawned {
    child: Child,
    pub url: String,
}

impl Spawned {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// The database the spawned verifiers use.
pub enum Database {
    /// A fresh SQLite file in the working directory (`WORK/store/vigil.db`).
    Sqlite,
    /// A `postgres://` URL, shared by every replica. The database should be empty: the
    /// hosts are registered without first removing earlier runs' nodes.
    Postgres(String),
}

impl Database {
    pub fn kind(&self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}

/// The file every PostgreSQL replica signs the audit log with (`vigil serve --audit-key`).
pub fn audit_key_path(work: &Path) -> PathBuf {
    work.join("audit-key.der")
}

/// The log of replica `index`: `vigil-serve.log` for the first (as with one verifier),
/// `vigil-serve-<index>.log` for the others.
pub fn log_path(work: &Path, index: usize) -> PathBuf {
    if index == 0 {
        work.join("vigil-serve.log")
    } else {
        work.join(format!("vigil-serve-{index}.log"))
    }
}

/// Starts replica `index` of `vigil serve` on `database`. With SQLite, the store in `work`
/// is cleared first (only one replica can use it). With PostgreSQL, every replica gets the
/// same `--audit-key` (in `work`; the first replica creates it) and its own `--replica-id`
/// (`loadgen-r<index>`); start the first alone, so that it creates the key and the schema
/// before the others open them.
pub async fn spawn(
    vigil: &Path,
    work: &Path,
    tls_dir: &Path,
    ek_policy: &EkPolicy,
    fleet: Option<&GpuFleet>,
    database: &Database,
    index: usize,
) -> Result<Spawned, String> {
    let log_path = log_path(work, index);
    let mut command = Command::new(vigil);
    command.arg("serve").arg("--listen").arg("127.0.0.1:0");
    match database {
        Database::Sqlite => {
            let store = work.join("store");
            if store.exists() {
                std::fs::remove_dir_all(&store)
                    .map_err(|e| format!("cannot clear {}: {e}", store.display()))?;
            }
            std::fs::create_dir_all(&store).map_err(|e| format!("{}: {e}", store.display()))?;
            command.arg("--db").arg(store.join("vigil.db"));
        }
        Database::Postgres(url) => {
            // An environment variable, not a flag: a password in the URL stays out of `ps`.
            command
                .env("VIGIL_DB", url)
                .arg("--audit-key")
                .arg(audit_key_path(work))
                .arg("--replica-id")
                .arg(format!("loadgen-r{index}"));
        }
    }
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    command
        .arg("--tls-dir")
        .arg(tls_dir)
        .arg("--poll-interval")
        .arg("0")
        .env("VIGIL_CONFIG", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    match ek_policy {
        EkPolicy::Roots(dir) => {
            command.arg("--ek-roots").arg(dir);
        }
        // An environment variable, not a flag: it stays out of `ps`. (Linux limits one
        // variable to 128 KiB: about 2,000 fingerprints.)
        EkPolicy::Allow(fingerprints) => {
            command.env("VIGIL_EK_ALLOW", fingerprints.join(","));
        }
    }
    if let Some(fleet) = fleet {
        command.args(fleet.verifier_flags());
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {} serve: {e}", vigil.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout from vigil serve")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let address = tokio::time::timeout(START_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("vigil listening on ")
                && let Some(address) = rest.split_whitespace().next()
            {
                return Some(address.to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| {
        format!(
            "vigil serve (replica {index}) did not start; its log {}: {}",
            log_path.display(),
            std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        )
    })?;
    // Keep reading stdout so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Spawned {
        child,
        url: format!("https://{address}"),
    })
}

/// CPU seconds used by `pid` and its direct children (a PostgreSQL postmaster and its
/// backends, for instance); None where `pid` is unreadable. Children that exit in between are
/// missed, so compare two readings only while the connections stay open.
pub fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    let mut total = cpu_seconds(Some(pid))?;
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if parent_pid(child) == Some(pid) {
            total += cpu_seconds(Some(child)).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// The parent of `pid`, from /proc/PID/stat.
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // After the name: state, then ppid.
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat; None where that is
/// unreadable. Assumes the usual 100 clock ticks a second (USER_HZ on Linux).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) closed by the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
