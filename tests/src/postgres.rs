//! A throw-away PostgreSQL server for tests: Debian's packaged binaries
//! (`/usr/lib/postgresql/<version>/bin`), a data directory in a temporary directory, a free
//! loopback port and the unix socket in that directory too, so nothing touches the system
//! cluster. Stopped and removed on drop.
//!
//! This file uses only `std`, so crates that do not depend on `vigil-e2e` (the PostgreSQL
//! store's own tests) can include it with `#[path]` instead of building the whole harness.
//!
//! initdb refuses to run as root, and CI runs as root: then the server is initialised and run
//! as the `postgres` system user (`runuser -u postgres --`) in a directory it owns.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The role the tests connect as (not a superuser) and the database it owns.
pub const PG_USER: &str = "vigil";
pub const PG_DATABASE: &str = "vigil";

/// The cluster's superuser, used only to create the role and database.
const SUPERUSER: &str = "postgres";

/// A running PostgreSQL server; stopped, and its directory removed, when dropped.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres_user: bool,
    pub port: u16,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` and `pg_ctl`
/// (`VIGIL_PG_BIN` overrides it).
pub fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("VIGIL_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has_binaries(&dir).then_some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_binaries(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn has_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres", "createdb", "createuser"]
        .iter()
        .all(|name| dir.join(name).is_file())
}

/// Are we root? (initdb refuses to run as root.)
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// What to do when no server can be had: fail under CI, skip (None) elsewhere.
fn unavailable(reason: &str) -> Option<PgServer> {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but PostgreSQL cannot be used: {reason} (install Debian's `postgresql` package)"
    );
    eprintln!("skipped: PostgreSQL not installed ({reason})");
    None
}

impl PgServer {
    /// Starts a fresh server with role [`PG_USER`] owning database [`PG_DATABASE`]. `None`
    /// (after printing "skipped: PostgreSQL not installed") when the binaries are missing;
    /// with `CI` set, that panics instead. Any other failure panics with the server's log.
    pub fn start() -> Option<PgServer> {
        let Some(bin) = postgres_bin_dir() else {
            return unavailable(
                "no initdb/pg_ctl under /usr/lib/postgresql/<version>/bin or $VIGIL_PG_BIN",
            );
        };
        let as_postgres_user = running_as_root();
        if as_postgres_user && !Path::new("/usr/sbin/runuser").exists() && !have("runuser") {
            return unavailable("running as root and `runuser` is missing");
        }
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        // The postgres user must be able to reach the directory: root's TMPDIR may be private.
        let base = if as_postgres_user {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "vigil-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("create PostgreSQL dir {}: {e}", dir.display()));
        let mut server = PgServer {
            dir,
            bin,
            as_postgres_user,
            port: 0,
        };
        if as_postgres_user {
            let output = run(Command::new("chown")
                .arg(format!("{SUPERUSER}:"))
                .arg(&server.dir));
            assert!(
                output.status.success(),
                "chown {} to the postgres user: {}",
                server.dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let data = server.data_dir();
        let output = server.pg("initdb", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8"])
                .args(["--no-locale", "--no-sync", "--no-instructions"]);
        });
        assert!(
            output.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // Another process can take the port between our probe and the server's bind: retry.
        for _attempt in 0..5 {
            server.port = free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                server.port,
                server.dir.display()
            );
            let log = server.dir.join("server.log");
            let output = server.pg("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(&log)
                    .args(["-w", "-t", "60", "-o", &options, "start"]);
            });
            if output.status.success() {
                server.create_role_and_database();
                return Some(server);
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !text.contains("could not bind") && !text.contains("could not create listen") {
                panic!(
                    "pg_ctl start failed: {}{}\nserver log:\n{text}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        panic!("PostgreSQL did not start after 5 ports were taken");
    }

    /// `postgres://vigil@127.0.0.1:PORT/vigil` (trust authentication on loopback).
    pub fn url(&self) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{PG_DATABASE}", self.port)
    }

    /// The directory holding the data directory, the log and the unix socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs the PostgreSQL program `name` (as the postgres user when we are root).
    fn pg(&self, name: &str, args: impl FnOnce(&mut Command)) -> Output {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", SUPERUSER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        args(&mut command);
        // The server's own working directory must be readable by whoever runs it.
        command.current_dir(&self.dir);
        run(&mut command)
    }

    fn create_role_and_database(&self) {
        let socket = self.dir.display().to_string();
        let port = self.port.to_string();
        let connect = ["-h", &socket, "-p", &port, "-U", SUPERUSER];
        let output = self.pg("createuser", |c| {
            c.args(connect).arg(PG_USER);
        });
        assert!(
            output.status.success(),
            "createuser {PG_USER}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let output = self.pg("createdb", |c| {
            c.args(connect).args(["-O", PG_USER, PG_DATABASE]);
        });
        assert!(
            output.status.success(),
            "createdb {PG_DATABASE}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.port != 0 {
            let data = self.data_dir();
            let _ = self.pg("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&data)
                    .args(["-m", "immediate", "-w", "stop"]);
            });
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
