//! Harness for Vigil's end-to-end tests: each test starts its own software TPM (swtpm) on a
//! free port pair, its own attester and verifier processes, and stops them when dropped.
//! Nothing is shared between tests, so they can run in parallel.

pub mod fakes;
pub mod npu;
pub mod postgres;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "vigil-e2e-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where cargo put this workspace's binaries (`target/<profile>/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Path of a workspace binary; panics with the fix if it was not built.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

/// Is `program` on PATH? The end-to-end tests need swtpm and tpm2-tools.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Fails the test when a required tool is missing (the README's test command installs them).
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<&&str> = tools.iter().filter(|tool| !have(tool)).collect();
    assert!(
        missing.is_empty(),
        "missing tools {missing:?}: run the README's test command (`bash .ci/run`), which installs them"
    );
}

/// Kill the child when the thread that spawned it dies, so a crashed test leaves no process.
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory shared with the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

fn free_port_pair() -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = first.local_addr().expect("local addr").port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn wait_for_port(port: u16, child: &mut Child, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A software TPM 2.0 (swtpm) listening on loopback; its command port is `port`, the
/// control channel (which the swtpm TCTI also needs) `port + 1`.
pub struct Swtpm {
    child: Child,
    pub port: u16,
    _state: TempDir,
}

/// A local certificate authority for EK certificates, made by `swtpm_localca` on first use.
pub struct EkCa {
    dir: TempDir,
}

impl EkCa {
    pub fn new() -> EkCa {
        EkCa {
            dir: TempDir::new("ekca"),
        }
    }

    /// A directory holding this CA's root and intermediate certificates (a trust directory).
    pub fn trust_dir(&self) -> PathBuf {
        let dir = self.dir.join("trust");
        std::fs::create_dir_all(&dir).expect("trust dir");
        for (from, to) in [
            ("ca/swtpm-localca-rootca-cert.pem", "root.pem"),
            ("ca/issuercert.pem", "intermediate.pem"),
        ] {
            std::fs::copy(self.dir.join(from), dir.join(to))
                .expect("CA certificate (provision a TPM first)");
        }
        dir
    }
}

impl Default for EkCa {
    fn default() -> Self {
        Self::new()
    }
}

impl Swtpm {
    /// A software TPM without EK certificate (like many VMs' vTPMs).
    pub fn start() -> Swtpm {
        Self::start_in(TempDir::new("swtpm"))
    }

    /// A software TPM manufactured by `swtpm_setup` with an RSA EK certificate issued by `ca`.
    pub fn start_with_ek_certificate(ca: &EkCa) -> Swtpm {
        require_tools(&["swtpm", "swtpm_setup", "swtpm_localca"]);
        let state = TempDir::new("swtpm");
        let ca_dir = ca.dir.join("ca");
        std::fs::create_dir_all(&ca_dir).expect("ca dir");
        let localca_conf = ca.dir.join("swtpm-localca.conf");
        std::fs::write(
            &localca_conf,
            format!(
                "statedir = {d}\nsigningkey = {d}/signkey.pem\nissuercert = {d}/issuercert.pem\ncertserial = {d}/certserial\n",
                d = ca_dir.display()
            ),
        )
        .expect("localca conf");
        let options = ca.dir.join("swtpm-localca.options");
        std::fs::write(
            &options,
            "--platform-manufacturer Vigil\n--platform-version 1.0\n--platform-model e2e\n",
        )
        .expect("localca options");
        let setup_conf = state.join("swtpm_setup.conf");
        std::fs::write(
            &setup_conf,
            format!(
                "create_certs_tool = swtpm_localca\ncreate_certs_tool_config = {}\ncreate_certs_tool_options = {}\nactive_pcr_banks = sha1,sha256\n",
                localca_conf.display(),
                options.display()
            ),
        )
        .expect("setup conf");
        let tpm_state = state.join("tpm");
        std::fs::create_dir_all(&tpm_state).expect("tpm state");
        let output = run(Command::new("swtpm_setup")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(&tpm_state)
            .args([
                "--create-ek-cert",
                "--lock-nvram",
                "--overwrite",
                "--config",
            ])
            .arg(&setup_conf)
            .arg("--logfile")
            .arg(state.join("setup.log")));
        assert!(
            output.status.success(),
            "swtpm_setup failed: {}",
            std::fs::read_to_string(state.join("setup.log")).unwrap_or_default()
        );
        Self::start_with_state(state, tpm_state)
    }

    fn start_in(state: TempDir) -> Swtpm {
        let tpm_state = state.path().to_path_buf();
        Self::start_with_state(state, tpm_state)
    }

    fn start_with_state(state: TempDir, tpm_state: PathBuf) -> Swtpm {
        require_tools(&["swtpm"]);
        for _attempt in 0..20 {
            let port = free_port_pair();
            let mut command = Command::new("swtpm");
            command
                .args(["socket", "--tpm2", "--tpmstate"])
                .arg(format!("dir={}", tpm_state.display()))
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                .args(["--flags", "not-need-init,startup-clear"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            die_with_parent(&mut command);
            let mut child = command.spawn().expect("spawn swtpm");
            let deadline = Instant::now() + Duration::from_secs(10);
            if wait_for_port(port + 1, &mut child, deadline)
                && wait_for_port(port, &mut child, deadline)
            {
                return Swtpm {
                    child,
                    port,
                    _state: state,
                };
            }
            // Lost a race for the ports: try another pair.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("swtpm did not start after 20 attempts");
    }

    /// TCTI string for tss-esapi and tpm2-tools.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server process (attester or verifier) that printed "... listening on ADDR".
pub struct Server {
    child: Child,
    pub address: String,
}

impl Server {
    /// Starts `command` and waits for its "listening on" line on stdout.
    pub fn start(mut command: Command) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        die_with_parent(&mut command);
        let mut child = command.spawn().expect("spawn server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split(" listening on ").nth(1) {
                        break rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                    }
                }
                _ => {
                    let status = child.wait();
                    panic!("server exited before listening: {status:?}");
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, address }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The address for a client speaking mutual TLS (`--tls-dir`).
    pub fn tls_url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// Stops the server with SIGTERM (graceful) and waits for it.
    pub fn stop(mut self) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `vigil-attester serve` on a free port against `tpm`, keeping its AK in `state`.
pub fn start_attester(tpm: &Swtpm, state: &Path, node_id: &str, extra: &[&str]) -> Server {
    start_attester_with(tpm, state, node_id, "127.0.0.1:0", extra, &[])
}

/// A free loopback port, for a server that must come back at the same address.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts `vigil-attester serve` listening on `listen` with extra environment variables (the
/// fake vendor libraries read theirs).
pub fn start_attester_with(
    tpm: &Swtpm,
    state: &Path,
    node_id: &str,
    listen: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Server {
    let mut command = Command::new(binary("vigil-attester"));
    command.envs(env.iter().copied());
    command
        .args(["serve", "--listen", listen, "--tcti"])
        .arg(tpm.tcti())
        .arg("--state-dir")
        .arg(state)
        .args(["--node-id", node_id])
        .args(extra)
        .env("TSS2_LOG", "all+none");
    if !extra.contains(&"--tls-dir") {
        command.arg("--dev");
    }
    if !extra.contains(&"--event-log") {
        // swtpm has no firmware log; never pick up the host's own.
        command.args([
            "--event-log",
            "/nonexistent/vigil-e2e/binary_bios_measurements",
        ]);
    }
    if !extra.contains(&"--ima-log") {
        // Nor the host's IMA list: its PCR 10 is the host TPM's, not the swtpm's.
        command.args([
            "--ima-log",
            "/nonexistent/vigil-e2e/binary_runtime_measurements",
        ]);
    }
    Server::start(command)
}

/// Starts `vigil serve` on a free port with the database at `db`.
pub fn start_verifier(db: &Path, extra: &[&str]) -> Server {
    let mut command = Command::new(binary("vigil"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(extra);
    if !extra.contains(&"--tls-dir") {
        command.arg("--dev");
    }
    Server::start(command)
}

/// Runs a command to completion, with a useful panic if it cannot start.
pub fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs `vigil` with `args`.
pub fn vigil(args: &[&str]) -> Output {
    run(Command::new(binary("vigil")).args(args))
}

/// Runs a tpm2-tools program against `tpm` in `dir`; panics with its stderr on failure.
pub fn tpm2(tpm: &Swtpm, dir: &Path, program: &str, args: &[&str]) -> Output {
    let output = run(Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("TPM2TOOLS_TCTI", tpm.tcti())
        .env("TSS2_LOG", "all+none"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The exit code, or -1 when killed by a signal.
pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// One event of a synthetic log: PCR, event type, SHA-256 digest, data.
pub struct LogEvent {
    pub pcr: u32,
    pub event_type: u32,
    pub digest: Vec<u8>,
    pub data: Vec<u8>,
}

/// A crypto-agile TCG event log with a SHA-256 bank (what firmware writes), for hosts
/// like swtpm that have no firmware log of their own.
pub fn synthetic_event_log(events: &[LogEvent]) -> Vec<u8> {
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend(0u32.to_le_bytes());
    spec.extend([0, 2, 0, 2]);
    spec.extend(1u32.to_le_bytes());
    spec.extend(0x000bu16.to_le_bytes());
    spec.extend(32u16.to_le_bytes());
    spec.push(0);
    let mut log = Vec::new();
    log.extend(0u32.to_le_bytes());
    log.extend(3u32.to_le_bytes());
    log.extend([0u8; 20]);
    log.extend((spec.len() as u32).to_le_bytes());
    log.extend(spec);
    for event in events {
        log.extend(event.pcr.to_le_bytes());
        log.extend(event.event_type.to_le_bytes());
        log.extend(1u32.to_le_bytes());
        log.extend(0x000bu16.to_le_bytes());
        log.extend(&event.digest);
        log.extend((event.data.len() as u32).to_le_bytes());
        log.extend(&event.data);
    }
    log
}

/// Firmware for a software TPM: measures the boot applications `apps` (PCR 4), the Secure
/// Boot separator (PCR 7) and the kernel command line (PCR 8, as GRUB logs it) into `tpm`'s
/// SHA-256 bank, and writes their event log into `dir`. Returns the log's path.
pub fn firmware_boot(tpm: &Swtpm, dir: &Path, apps: &[&[u8]], cmdline: &str) -> PathBuf {
    let separator = vec![0u8; 4];
    let kernel = format!("kernel_cmdline: {cmdline}").into_bytes();
    let mut events: Vec<LogEvent> = apps
        .iter()
        .map(|app| LogEvent {
            pcr: 4,
            event_type: 0x8000_0003,
            digest: sha256(app),
            data: vec![0u8; 32],
        })
        .collect();
    events.push(LogEvent {
        pcr: 7,
        event_type: 0x4,
        digest: sha256(&separator),
        data: separator,
    });
    events.push(LogEvent {
        pcr: 8,
        event_type: 0xd,
        digest: sha256(&kernel[16..]),
        data: kernel,
    });
    for event in &events {
        tpm2(
            tpm,
            dir,
            "tpm2_pcrextend",
            &[&format!(
                "{}:sha256={}",
                event.pcr,
                hex::encode(&event.digest)
            )],
        );
    }
    let path = dir.join("binary_bios_measurements");
    std::fs::write(&path, synthetic_event_log(&events)).expect("event log");
    path
}

/// `$VIGIL_FIXTURES` (default `../shared/fixtures` beside the workspace) if `marker` exists
/// there. With `CI` set, missing fixtures fail the test; otherwise the test says loudly that
/// it was skipped and returns `None`.
pub fn fixtures(marker: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    if dir.join(marker).exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the fixtures are missing at {}",
        dir.display()
    );
    eprintln!(
        "SKIPPED: fixtures not found at {} (set VIGIL_FIXTURES)",
        dir.display()
    );
    None
}

/// One binary `ima-ng` entry for PCR 10 measuring `path` with `algorithm:digest`, laid out as
/// the kernel writes it (template hash SHA-1 over the template data).
pub fn ima_ng_entry(path: &str, algorithm: &str, digest: &[u8]) -> Vec<u8> {
    let mut digest_field = format!("{algorithm}:").into_bytes();
    digest_field.push(0);
    digest_field.extend_from_slice(digest);
    let mut name_field = path.as_bytes().to_vec();
    name_field.push(0);
    let mut data = Vec::new();
    for field in [&digest_field, &name_field] {
        data.extend((field.len() as u32).to_le_bytes());
        data.extend_from_slice(field);
    }
    let mut entry = Vec::new();
    entry.extend(10u32.to_le_bytes());
    entry.extend(vigil_ima::HashAlg::Sha1.digest(&data));
    entry.extend(6u32.to_le_bytes());
    entry.extend_from_slice(b"ima-ng");
    entry.extend((data.len() as u32).to_le_bytes());
    entry.extend(data);
    entry
}

/// Extends every entry of the binary IMA list `list` into PCR 10 of `tpm` as a Linux 5.11+
/// kernel does: the SHA-1 bank gets the template hash, the SHA-256 bank the SHA-256 of the
/// template data; violations extend all ones.
pub fn extend_ima_list(tpm: &Swtpm, dir: &Path, list: &[u8]) {
    let parsed = vigil_ima::parse(list, vigil_ima::HashAlg::Sha1, 0).expect("IMA list");
    let specs: Vec<String> = parsed
        .entries
        .iter()
        .map(|entry| {
            let (sha1, sha256) = if entry.is_violation() {
                (vec![0xff; 20], vec![0xff; 32])
            } else {
                (entry.template_hash.to_vec(), sha256(&entry.hashed))
            };
            format!(
                "{}:sha1={},sha256={}",
                entry.pcr,
                hex::encode(sha1),
                hex::encode(sha256)
            )
        })
        .collect();
    // tpm2_pcrextend extends its arguments in order; batches keep command lines short.
    for batch in specs.chunks(200) {
        let args: Vec<&str> = batch.iter().map(String::as_str).collect();
        tpm2(tpm, dir, "tpm2_pcrextend", &args);
    }
}

/// A `Watch` stream of every status change on the verifier at `url`, from `from_seq` on
/// (0: from the beginning), for all nodes.
pub async fn watch_from(
    url: String,
    from_seq: i64,
) -> tonic::Streaming<vigil_proto::v1::VerdictChange> {
    let mut client = vigil_proto::v1::verifier_client::VerifierClient::connect(url)
        .await
        .expect("connect to the verifier for Watch");
    client
        .watch(vigil_proto::v1::WatchRequest {
            from_seq,
            node_id: String::new(),
        })
        .await
        .expect("Watch")
        .into_inner()
}

/// The next change on `stream` before `deadline`; `None` when none came in time or the stream
/// ended.
pub async fn next_change(
    stream: &mut tonic::Streaming<vigil_proto::v1::VerdictChange>,
    deadline: Instant,
) -> Option<vigil_proto::v1::VerdictChange> {
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left, stream.message())
        .await
        .ok()?
        .ok()?
}
