//! Load generator for the keyri server: drives complete QR logins the way a
//! browser widget and a phone app do, many at once, and reports logins per
//! second, the confirm → payload latency, the server's CPU time per login and
//! its memory per waiting session.
//!
//! `cargo bench --bench login_load -- --help` lists the options. Without
//! `--target` it starts the `keyri serve` binary built alongside it on a free
//! 127.0.0.1 port with a fresh data dir, and stops it when done, also on error.
//! Under `cargo test` (no `--bench` argument) it makes a short smoke run that
//! fails if any login fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use keyri::config::Config;
use keyri::protocol::messages::{
    ConfirmRequest, ErrorBody, SessionView, StatusResponse, WidgetOut,
};
use keyri::protocol::{SessionId, b64, hpke, payload_info};
use p256::SecretKey;
use p256::elliptic_curve::Generate;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// What a browser on a desktop sends; the phone is shown the browser and OS.
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
/// Widget sockets opened at once while building up the idle sessions.
const IDLE_OPENING_AT_ONCE: usize = 256;
/// Longest time allowed to open all idle sessions.
const IDLE_OPEN_LIMIT: Duration = Duration::from_secs(180);
/// Times one idle widget replaces its code (after expiry or a drop) at most.
const IDLE_REOPENS: u32 = 20;
/// Largest key-pair pool; longer runs reuse the pairs in turn.
const MAX_KEY_POOL: u64 = 100_000;
/// How long the server gets to start and print its demo line.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How long the server gets to stop after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(15);

#[derive(Parser, Debug, Clone)]
#[command(
    name = "login_load",
    about = "Drives complete keyri QR logins (widget socket + phone calls) and reports \
             throughput, confirm→payload latency, server CPU per login and memory per session"
)]
struct Options {
    /// Drive an already running server at this http:// URL instead of starting one.
    /// Its rate limits apply as configured, and all load comes from one address.
    #[arg(long, requires = "app_key")]
    target: Option<String>,
    /// With --target: the app key of a tenant that allows the Origin used.
    #[arg(long)]
    app_key: Option<String>,
    /// Origin header of the widget sockets [default: the server's URL].
    #[arg(long)]
    origin: Option<String>,
    /// With --target: the server's process id, to report its CPU and memory.
    #[arg(long)]
    pid: Option<u32>,
    /// Logins in progress at once (a cap on in-flight logins with --rate).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Logins in the timed phase [default: 5000, or as many as fit in --duration].
    #[arg(long, conflicts_with = "duration")]
    flows: Option<u64>,
    /// Seconds of the timed phase, instead of a number of logins.
    #[arg(long)]
    duration: Option<f64>,
    /// Start logins at this steady rate per second (open loop) instead of back to back.
    #[arg(long)]
    rate: Option<f64>,
    /// Open (decrypt and check) the payload of every Nth login; all others are
    /// compared byte for byte with what the phone sent.
    #[arg(long, default_value_t = 10)]
    open_every: u64,
    /// Seal for real on every Nth login only; the others send a payload of the
    /// same size sealed in advance to another key, which the server cannot tell
    /// apart (it checks only the shape). Spares the generator's CPU.
    #[arg(long, default_value_t = 1)]
    seal_every: u64,
    /// Hold this many idle widget sessions (hello done, code shown) during the run,
    /// and report the server's memory per session.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Extra environment for the server, e.g. KEYRI_LOG_LEVEL=warn (repeatable).
    #[arg(long = "server-env", value_name = "K=V")]
    server_env: Vec<String>,
    /// Run the server under `taskset -c CPU`.
    #[arg(long, value_name = "CPU")]
    taskset_server: Option<String>,
    /// Pin this load generator to CPU (its own threads, via `taskset -p`).
    #[arg(long, value_name = "CPU")]
    taskset_client: Option<String>,
    /// Logins run before the timed phase and not counted.
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    /// Size of the payload the phone seals, in bytes.
    #[arg(long, default_value_t = 128)]
    payload_bytes: usize,
    /// Seconds any one step of a login may take before the login counts as failed.
    #[arg(long, default_value_t = 10)]
    step_timeout: u64,
    /// Upper bound on the timed phase in seconds, whatever --flows says.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// Keep the started server's data dir and log after the run.
    #[arg(long)]
    keep: bool,
    /// Passed by `cargo bench`; without it the program makes a short smoke run.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Options {
    /// The short run made under `cargo test`.
    fn smoke() -> Self {
        let mut options = Self::parse_from(["login_load"]);
        options.flows = Some(20);
        options.concurrency = 4;
        options.warmup = 2;
        options.idle = 4;
        options.open_every = 1;
        options
    }

    fn total_flows(&self) -> u64 {
        match (self.flows, self.duration, self.rate) {
            (Some(flows), _, _) => flows,
            (None, Some(secs), Some(rate)) => (secs * rate).ceil() as u64,
            (None, Some(_), None) => u64::MAX,
            (None, None, _) => 5000,
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let smoke = !argv.iter().any(|a| a == "--bench");
    let options = match smoke {
        true => {
            println!("login_load: no --bench argument, so a short smoke run (use cargo bench)");
            Options::smoke()
        }
        false => Options::parse(),
    };
    match run(&options, &argv) {
        Ok(report) => {
            print!("{}", report.text);
            match report.failures {
                0 => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            }
        }
        Err(message) => {
            eprintln!("login_load: {message}");
            ExitCode::FAILURE
        }
    }
}

struct Report {
    text: String,
    failures: u64,
}

fn run(options: &Options, argv: &[String]) -> Result<Report, String> {
    check_options(options)?;
    let fd_limit = rlimit::increase_nofile_limit(u64::MAX)
        .map_err(|e| format!("cannot raise this process's open-file limit: {e}"))?;
    if let Some(cpu) = &options.taskset_client {
        pin_self(cpu)?;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut server = match &options.target {
        Some(_) => None,
        None => Some(Server::start(options)?),
    };
    let target = match (&server, &options.target) {
        (Some(server), _) => Target {
            url: server.url.clone(),
            app_key: server.app_key.clone(),
            pid: Some(server.pid),
        },
        (None, Some(url)) => Target {
            url: url.trim_end_matches('/').to_owned(),
            app_key: options.app_key.clone().unwrap_or_default(),
            pid: options.pid,
        },
        (None, None) => unreachable!("a server was started when no target was given"),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let measured = runtime.block_on(drive(options, &target))?;
    drop(runtime);

    let died = server.as_mut().and_then(Server::died);
    let ended = server.as_mut().and_then(Server::stop);
    let setup = Setup { argv, fd_limit, threads, target: &target, server: server.as_ref() };
    let text = render(options, &setup, &measured, (died, ended));
    let failures = measured.load.failures()
        + measured.warm.failures()
        + measured.idle_failures()
        + measured.close_failures()
        + u64::from(died.is_some());
    Ok(Report { text, failures })
}

fn check_options(options: &Options) -> Result<(), String> {
    if options.concurrency == 0 || options.open_every == 0 || options.seal_every == 0 {
        return Err("--concurrency, --open-every and --seal-every must be at least 1".into());
    }
    if !options.open_every.is_multiple_of(options.seal_every) {
        return Err("--open-every must be a multiple of --seal-every".into());
    }
    if options.target.is_some() && options.taskset_server.is_some() {
        return Err("--taskset-server applies only to a server this program starts".into());
    }
    if options.target.is_some() && !options.server_env.is_empty() {
        return Err("--server-env applies only to a server this program starts".into());
    }
    if let Some(url) = &options.target
        && !url.starts_with("http://")
    {
        return Err("--target must be an http:// URL (this generator speaks no TLS)".into());
    }
    if options.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err("--rate must be a positive number".into());
    }
    if options.duration.is_some_and(|d| !(d > 0.0 && d <= options.max_seconds as f64)) {
        return Err(format!("--duration must be between 0 and {} s", options.max_seconds));
    }
    for pair in &options.server_env {
        if !pair.contains('=') {
            return Err(format!("--server-env {pair:?}: expected K=V"));
        }
    }
    Ok(())
}

/// Pins this process (its only thread so far, and so every thread started
/// later) to `cpu`.
fn pin_self(cpu: &str) -> Result<(), String> {
    let pid = std::process::id().to_string();
    let output = Command::new("taskset")
        .args(["-p", "-c", cpu, &pid])
        .output()
        .map_err(|e| format!("cannot run taskset: {e}"))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(format!("taskset -p -c {cpu} failed: {}", err.trim()));
    }
    Ok(())
}

/// The server under load.
struct Target {
    url: String,
    app_key: String,
    pid: Option<u32>,
}

// ---------------------------------------------------------------------------
// The server this program starts.

/// A `keyri serve` child process; stopped when dropped, so an error or a panic
/// never leaves it running.
struct Server {
    child: Child,
    pid: u32,
    url: String,
    app_key: String,
    command: String,
    dir: Option<tempfile::TempDir>,
    kept: Option<PathBuf>,
    log: Arc<LogTally>,
    readers: Vec<std::thread::JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

/// What the server wrote to stdout and stderr.
#[derive(Default)]
struct LogTally {
    lines: AtomicU64,
    warnings: AtomicU64,
    errors: AtomicU64,
    /// The first few warning and error lines, to show in the report.
    problems: Mutex<Vec<String>>,
    /// Everything on stderr (a failed start explains itself there).
    stderr: Mutex<Vec<String>>,
}

impl Server {
    fn start(options: &Options) -> Result<Self, String> {
        let exe = env!("CARGO_BIN_EXE_keyri");
        let dir = tempfile::Builder::new()
            .prefix("keyri-load-")
            .tempdir()
            .map_err(|e| format!("cannot make a temp dir: {e}"))?;
        let port = free_port()?;
        let bind = format!("127.0.0.1:{port}");

        let mut command = match &options.taskset_server {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpu, exe]);
                c
            }
            None => Command::new(exe),
        };
        let settings = load_settings(options);
        let settings_path = dir.path().join("keyri.toml");
        let text = toml::to_string(&settings).map_err(|e| e.to_string())?;
        std::fs::write(&settings_path, text)
            .map_err(|e| format!("cannot write {}: {e}", settings_path.display()))?;
        command.arg("--config").arg(&settings_path).arg("serve").current_dir(dir.path());
        // Only the settings named here and in --server-env reach the server.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEYRI_")) {
            command.env_remove(key);
        }
        let mut shown_env = vec![
            format!("KEYRI_SERVER_BIND={bind}"),
            format!("KEYRI_STORAGE_DATA_DIR={}", dir.path().join("data").display()),
        ];
        // Given last, so they win over the settings file.
        shown_env.extend(options.server_env.iter().cloned());
        for pair in &shown_env {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            command.env(key, value);
        }
        let mut shown = shown_env.join(" ");
        if let Some(cpu) = &options.taskset_server {
            shown.push_str(&format!(" taskset -c {cpu}"));
        }
        shown.push_str(&format!(" {exe} --config keyri.toml serve; keyri.toml sets "));
        shown.push_str(&describe_settings(&settings).join(" "));

        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("cannot start {exe}: {e}"))?;
        let pid = child.id();
        let log_path = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
        let log_file = Arc::new(Mutex::new(std::io::BufWriter::new(log_file)));
        let log = Arc::new(LogTally::default());
        let (ready_tx, ready_rx) = mpsc::channel();

        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let (log, file) = (log.clone(), log_file.clone());
            readers.push(std::thread::spawn(move || {
                drain_log(stdout, &log, &file, Some(ready_tx), false)
            }));
        }
        if let Some(stderr) = child.stderr.take() {
            let (log, file) = (log.clone(), log_file);
            readers.push(std::thread::spawn(move || drain_log(stderr, &log, &file, None, true)));
        }

        let mut server = Self {
            child,
            pid,
            url: String::new(),
            app_key: String::new(),
            command: shown,
            dir: Some(dir),
            kept: None,
            log,
            readers,
            exit: None,
        };
        if options.keep {
            server.kept = server.dir.as_mut().map(|d| {
                d.disable_cleanup(true);
                d.path().to_owned()
            });
        }
        let (url, app_key) = server.wait_ready(ready_rx)?;
        server.url = url;
        server.app_key = app_key;
        Ok(server)
    }

    /// Waits for "keyri is running. Demo: <url>/demo (app key app_…)".
    fn wait_ready(&mut self, ready: mpsc::Receiver<String>) -> Result<(String, String), String> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            match ready.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => return parse_demo_line(&line),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("the server did not start within {START_LIMIT:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Give the stderr reader a moment to collect the reason.
                    std::thread::sleep(Duration::from_millis(200));
                    let status = self.child.try_wait().ok().flatten();
                    let stderr = lock(&self.log.stderr).join("\n");
                    return Err(format!(
                        "the server stopped before it was ready ({status:?}):\n{stderr}"
                    ));
                }
            }
        }
    }

    /// Stops the server with SIGTERM (SIGKILL if it does not stop in time);
    /// returns how it ended.
    fn stop(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.terminate();
        }
        // The child is gone, so its pipes are closed and the readers finish.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.exit
    }

    fn terminate(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// Whether the server exited on its own during the run.
    fn died(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Settings that would refuse the load for reasons of this set-up, not of
/// the server's capacity: every simulated browser and phone comes from one
/// address, 127.0.0.1, and logs in to one tenant, the demo. They go in a
/// settings file, since not every section can be named in an environment
/// variable; only settings this version of the server has are written (an
/// unknown one would stop it).
fn load_settings(options: &Options) -> toml::Table {
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    let existing = |section: &str, key: &str| {
        defaults.get(section).and_then(|s| s.get(key)).and_then(toml::Value::as_integer)
    };
    let mut wanted = vec![
        ("rate_limits", "socket_opens_per_ip", 0),
        ("rate_limits", "session_calls_per_ip", 0),
        ("rate_limits", "socket_opens_per_tenant", 0),
        ("rate_limits", "session_calls_per_tenant", 0),
        ("limits", "widget_sockets_per_ip", 1_000_000),
    ];
    // Room for the idle widgets next to the logins in progress.
    let sockets = (options.idle + options.concurrency) as i64;
    if existing("limits", "widget_sockets_total").is_some_and(|total| sockets > total) {
        wanted.push(("limits", "widget_sockets_total", sockets));
    }
    let mut settings = toml::Table::new();
    for (section, key, value) in wanted {
        if existing(section, key).is_some() {
            let table =
                settings.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(table) = table.as_table_mut() {
                table.insert(key.to_owned(), toml::Value::Integer(value));
            }
        }
    }
    settings
}

/// The settings as `section.key=value` for the report.
fn describe_settings(settings: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    for (section, keys) in settings {
        for (key, value) in keys.as_table().into_iter().flatten() {
            out.push(format!("{section}.{key}={value}"));
        }
    }
    out
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn parse_demo_line(line: &str) -> Result<(String, String), String> {
    let parsed = line.split_once("Demo: ").and_then(|(_, rest)| {
        let (url, rest) = rest.split_once("/demo (app key ")?;
        let app_key = rest.trim_end().strip_suffix(')')?;
        Some((url.to_owned(), app_key.to_owned()))
    });
    parsed.ok_or_else(|| format!("the server's first line names no demo app key: {line:?}"))
}

fn drain_log(
    from: impl std::io::Read,
    log: &LogTally,
    file: &Mutex<std::io::BufWriter<std::fs::File>>,
    mut ready: Option<mpsc::Sender<String>>,
    is_stderr: bool,
) {
    for line in BufReader::new(from).lines() {
        let Ok(line) = line else { break };
        let plain = strip_ansi(&line);
        log.lines.fetch_add(1, Ordering::Relaxed);
        if plain.contains(" WARN ") {
            log.warnings.fetch_add(1, Ordering::Relaxed);
            remember(&log.problems, &plain);
        } else if plain.contains(" ERROR ") || plain.starts_with("keyri: ") {
            log.errors.fetch_add(1, Ordering::Relaxed);
            remember(&log.problems, &plain);
        }
        if is_stderr {
            remember(&log.stderr, &plain);
        }
        if plain.starts_with("keyri is running")
            && let Some(tx) = ready.take()
        {
            let _ = tx.send(plain.clone());
        }
        // The demo tenant's API secret is printed once at start; keep it out
        // of the log file.
        if !plain.contains("API secret") {
            let _ = writeln!(lock(file), "{plain}");
        }
    }
    let _ = lock(file).flush();
}

fn remember(list: &Mutex<Vec<String>>, line: &str) {
    let mut list = lock(list);
    if list.len() < 10 {
        list.push(line.to_owned());
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// Process figures from /proc.

#[derive(Clone, Copy)]
struct Snapshot {
    at: Instant,
    server_ticks: Option<u64>,
    server_rss_kib: Option<u64>,
    client_ticks: Option<u64>,
}

impl Snapshot {
    fn take(server: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            server_ticks: server.and_then(cpu_ticks),
            server_rss_kib: server.and_then(|pid| status_kib(pid, "VmRSS:")),
            client_ticks: cpu_ticks(std::process::id()),
        }
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is field 3,
    // utime field 14 and stime field 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

// ---------------------------------------------------------------------------
// Driving logins.

/// A widget's key pair, made before the timed phase.
struct WidgetKey {
    secret: SecretKey,
    public: Vec<u8>,
    public_b64: String,
    hello: String,
}

impl WidgetKey {
    fn generate() -> Self {
        let secret = SecretKey::generate();
        let public = hpke::uncompressed(&secret.public_key());
        let public_b64 = b64::encode(&public);
        let hello = format!(r#"{{"type":"hello","publicKey":"{public_b64}"}}"#);
        Self { secret, public, public_b64, hello }
    }
}

type Ws = WebSocketStream<TcpStream>;

/// Everything a login needs, shared by all of them.
struct Ctx {
    base: String,
    addr: SocketAddr,
    ws_url: String,
    app_key: String,
    origin: String,
    http: reqwest::Client,
    ws_config: WebSocketConfig,
    step: Duration,
    payload: Vec<u8>,
    /// The payload sealed in advance to a key of no widget, for logins that
    /// do not seal their own.
    presealed: String,
    /// Finished logins whose widget socket is still winding down.
    closing: AtomicUsize,
    closes: Mutex<Closes>,
}

/// How the widget sockets of finished logins ended.
#[derive(Default)]
struct Closes {
    /// From the payload's arrival to the end of the socket.
    close_us: Vec<u32>,
    problems: BTreeMap<String, u64>,
}

impl Ctx {
    fn new(options: &Options, target: &Target) -> Result<Self, String> {
        let host = target.url.strip_prefix("http://").unwrap_or(&target.url);
        let host = host.split('/').next().unwrap_or(host);
        let addr = host
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        let step = Duration::from_secs(options.step_timeout);
        // The HTTP client is built with TLS support, whose crypto comes from here.
        keyri::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(options.concurrency.saturating_mul(2))
            .tcp_nodelay(true)
            .timeout(step)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let payload: Vec<u8> = (0..options.payload_bytes).map(|i| b'a' + (i % 26) as u8).collect();
        Ok(Self {
            base: target.url.clone(),
            addr,
            ws_url: format!(
                "{}/v1/widget/ws?appKey={}",
                target.url.replacen("http", "ws", 1),
                target.app_key
            ),
            app_key: target.app_key.clone(),
            origin: options.origin.clone().unwrap_or_else(|| target.url.clone()),
            http,
            // A widget receives frames of a few hundred bytes; small buffers
            // keep thousands of idle sockets cheap on this side.
            ws_config: WebSocketConfig::default().read_buffer_size(4096),
            step,
            presealed: b64::encode(
                hpke::seal(&WidgetKey::generate().public, b"presealed", &payload)
                    .map_err(|e| e.to_string())?,
            ),
            payload,
            closing: AtomicUsize::new(0),
            closes: Mutex::default(),
        })
    }
}

/// One completed login.
struct Sample {
    confirm_to_payload: Duration,
    whole: Duration,
    seal: Option<Duration>,
    open: Option<Duration>,
}

/// The results of a set of logins.
#[derive(Default)]
struct Tally {
    confirm_us: Vec<u32>,
    whole_us: Vec<u32>,
    seal_ns: u128,
    open_ns: u128,
    opened: u64,
    sealed: u64,
    errors: BTreeMap<String, u64>,
    /// Open loop only: how late each login started against its schedule.
    lag_us: Vec<u32>,
}

impl Tally {
    fn record(&mut self, result: Result<Sample, String>) {
        match result {
            Ok(sample) => {
                self.confirm_us.push(micros(sample.confirm_to_payload));
                self.whole_us.push(micros(sample.whole));
                if let Some(seal) = sample.seal {
                    self.sealed += 1;
                    self.seal_ns += seal.as_nanos();
                }
                if let Some(open) = sample.open {
                    self.opened += 1;
                    self.open_ns += open.as_nanos();
                }
            }
            Err(reason) => *self.errors.entry(reason).or_default() += 1,
        }
    }

    fn completed(&self) -> u64 {
        self.confirm_us.len() as u64
    }

    fn failures(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Runs `what` within the step time limit.
async fn step<T>(
    ctx: &Ctx,
    what: &str,
    future: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(ctx.step, future).await {
        Ok(result) => result,
        Err(_) => Err(format!("timeout: {what}")),
    }
}

/// A widget socket, opened as a browser page on the tenant's origin would.
async fn connect(ctx: &Ctx) -> Result<Ws, String> {
    let tcp = TcpStream::connect(ctx.addr).await.map_err(|e| format!("widget connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let mut request = ctx.ws_url.as_str().into_client_request().map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    headers.insert("origin", ctx.origin.parse().map_err(|_| "bad --origin".to_owned())?);
    headers.insert("user-agent", USER_AGENT.parse().map_err(|_| "bad user agent".to_owned())?);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(ctx.ws_config))
        .await
        .map_err(|e| format!("widget upgrade: {}", ws_error(&e)))?;
    Ok(ws)
}

fn ws_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => format!("HTTP {}", response.status().as_u16()),
        tungstenite::Error::Io(io) => io.kind().to_string(),
        other => other.to_string(),
    }
}

/// The next protocol frame; pings are answered by the socket itself.
async fn next_frame(ws: &mut Ws, waiting_for: &str) -> Result<WidgetOut, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str())
                    .map_err(|e| format!("widget: not a protocol frame ({e})"));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Binary(_))) => return Err("widget: binary frame".into()),
            Some(Ok(Message::Close(_))) | None => {
                return Err(format!("widget: socket closed while waiting for {waiting_for}"));
            }
            Some(Err(e)) => return Err(format!("widget: {} ({waiting_for})", ws_error(&e))),
        }
    }
}

fn unexpected(frame: &WidgetOut, waiting_for: &str) -> String {
    match frame {
        WidgetOut::Error { error, .. } => format!("widget: error {error} instead of {waiting_for}"),
        other => {
            let kind = format!("{other:?}");
            let kind = kind.split([' ', '{', '(']).next().unwrap_or("?").to_owned();
            format!("widget: {kind} instead of {waiting_for}")
        }
    }
}

/// Says hello with the widget's key and returns the session it is given.
async fn hello(ctx: &Ctx, ws: &mut Ws, key: &WidgetKey) -> Result<SessionId, String> {
    step(ctx, "widget hello", async {
        ws.send(Message::text(key.hello.clone()))
            .await
            .map_err(|e| format!("widget: hello not sent: {}", ws_error(&e)))?;
        match next_frame(ws, "session").await? {
            WidgetOut::Session { session_id, .. } => SessionId::parse(&session_id)
                .ok_or_else(|| "widget: session id of the wrong form".to_owned()),
            other => Err(unexpected(&other, "session")),
        }
    })
    .await
}

fn http_error(what: &str, e: reqwest::Error) -> String {
    let kind = match () {
        () if e.is_timeout() => "timeout".to_owned(),
        () if e.is_connect() => "cannot connect".to_owned(),
        () => e.without_url().to_string(),
    };
    format!("{what}: {kind}")
}

/// A non-200 answer as "<what>: <status> <error code>".
fn refusal(what: &str, status: reqwest::StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => format!("{what}: {} {}", status.as_u16(), body.error),
        Err(_) => format!("{what}: HTTP {}", status.as_u16()),
    }
}

/// The phone's `GET /v1/sessions/{id}`.
async fn fetch_session(ctx: &Ctx, url: &str) -> Result<SessionView, String> {
    let what = "phone GET session";
    let response = ctx
        .http
        .get(url)
        .header("x-app-key", &ctx.app_key)
        .send()
        .await
        .map_err(|e| http_error(what, e))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| http_error(what, e))?;
    if status != reqwest::StatusCode::OK {
        return Err(refusal(what, status, &body));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{what}: unexpected body ({e})"))
}

/// The phone's `POST /v1/sessions/{id}/confirm`.
async fn confirm(ctx: &Ctx, url: &str, body: Vec<u8>) -> Result<(), String> {
    let what = "phone POST confirm";
    let response = ctx
        .http
        .post(url)
        .header("x-app-key", &ctx.app_key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| http_error(what, e))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| http_error(what, e))?;
    if status != reqwest::StatusCode::OK {
        return Err(refusal(what, status, &body));
    }
    match serde_json::from_slice::<StatusResponse>(&body) {
        Ok(answer) if answer.status == "confirmed" => Ok(()),
        _ => Err(format!("{what}: unexpected body")),
    }
}

/// The widget's side after the scan: `scanned`, then `payload`; returns when
/// the payload frame arrived and what it held.
async fn await_payload(ws: &mut Ws) -> Result<(Instant, String), String> {
    match next_frame(ws, "scanned").await? {
        WidgetOut::Scanned => {}
        other => return Err(unexpected(&other, "scanned")),
    }
    match next_frame(ws, "payload").await? {
        WidgetOut::Payload { sealed } => Ok((Instant::now(), sealed)),
        other => Err(unexpected(&other, "payload")),
    }
}

/// Reads until the server has closed the socket, as it must after a payload.
/// Like a browser, gives up and closes it from this side after 2 s.
async fn await_close(ws: &mut Ws) -> Result<(), String> {
    let closed = async {
        while let Some(message) = ws.next().await {
            if message.is_err() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), closed)
        .await
        .map_err(|_| "widget: socket still open 2 s after the payload".to_owned())
}

/// One complete login: widget connects and says hello, phone fetches the
/// session, seals and confirms, widget receives the payload.
async fn login(ctx: &Arc<Ctx>, key: &WidgetKey, check: Check) -> Result<Sample, String> {
    let started = Instant::now();
    let mut ws = step(ctx, "widget connect", connect(ctx)).await?;
    let session = hello(ctx, &mut ws, key).await?;
    let url = format!("{}/v1/sessions/{session}", ctx.base);

    let view = step(ctx, "phone GET session", fetch_session(ctx, &url)).await?;
    // The phone's key check: the code carries the fingerprint of this key.
    if view.public_key != key.public_b64 {
        return Err("phone: the session's key is not the widget's".into());
    }
    let info = payload_info(&session);
    let seal_started = Instant::now();
    let sealed = match check.seal {
        true => {
            b64::encode(hpke::seal(&key.public, &info, &ctx.payload).map_err(|e| e.to_string())?)
        }
        false => ctx.presealed.clone(),
    };
    let body = serde_json::to_vec(&ConfirmRequest { sealed: sealed.clone() })
        .map_err(|e| e.to_string())?;
    let seal = check.seal.then(|| seal_started.elapsed());

    let widget = step(ctx, "widget payload", await_payload(&mut ws));
    let phone = async {
        let sent = Instant::now();
        step(ctx, "phone POST confirm", confirm(ctx, &format!("{url}/confirm"), body))
            .await
            .map(|()| sent)
    };
    let ((arrived, received), sent) = tokio::try_join!(widget, phone)?;

    if received != sealed {
        return Err("widget: payload differs from what the phone sent".into());
    }
    let open = match check.open {
        false => None,
        true => {
            let opening = Instant::now();
            let bytes = b64::decode(&received).map_err(|_| "widget: payload not base64url")?;
            let opened = hpke::open(&key.secret, &info, &bytes)
                .map_err(|e| format!("widget: payload does not open: {e}"))?;
            if opened != ctx.payload {
                return Err("widget: opened payload differs from the phone's".into());
            }
            Some(opening.elapsed())
        }
    };
    let whole = arrived - started;
    // The page has its payload; the socket winds down on its own time.
    ctx.closing.fetch_add(1, Ordering::Relaxed);
    let closer = ctx.clone();
    tokio::spawn(async move {
        let result = await_close(&mut ws).await;
        let mut closes = lock(&closer.closes);
        match result {
            Ok(()) => closes.close_us.push(micros(arrived.elapsed())),
            Err(reason) => *closes.problems.entry(reason).or_default() += 1,
        }
        drop(closes);
        closer.closing.fetch_sub(1, Ordering::Relaxed);
    });
    Ok(Sample { confirm_to_payload: arrived.saturating_duration_since(sent), whole, seal, open })
}

/// Which logins seal their payload for real, and which of those the widget opens.
#[derive(Clone, Copy)]
struct Sampling {
    seal_every: u64,
    open_every: u64,
}

#[derive(Clone, Copy)]
struct Check {
    seal: bool,
    open: bool,
}

impl Sampling {
    const ALL: Self = Self { seal_every: 1, open_every: 1 };

    fn of(options: &Options) -> Self {
        Self { seal_every: options.seal_every, open_every: options.open_every }
    }

    /// For login number `i`; --open-every is a multiple of --seal-every, so
    /// every login opened was sealed for real.
    fn check(self, i: u64) -> Check {
        Check { seal: i.is_multiple_of(self.seal_every), open: i.is_multiple_of(self.open_every) }
    }
}

/// Logins back to back from `concurrency` workers, until `total` have been
/// started or `until` has passed.
async fn closed_loop(
    ctx: &Arc<Ctx>,
    keys: &Arc<Vec<WidgetKey>>,
    sampling: Sampling,
    concurrency: usize,
    total: u64,
    until: Instant,
) -> Tally {
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (ctx, keys, next, tally) = (ctx.clone(), keys.clone(), next.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= until {
                    break;
                }
                let key = &keys[(i % keys.len() as u64) as usize];
                let result = login(&ctx, key, sampling.check(i)).await;
                lock(&tally).record(result);
            }
        }));
    }
    for worker in workers {
        if let Err(e) = worker.await {
            lock(&tally).record(Err(format!("generator task failed: {e}")));
        }
    }
    std::mem::take(&mut *lock(&tally))
}

/// Logins started on a fixed schedule of `rate` per second, at most
/// `concurrency` in progress; a login that cannot start on time starts late
/// and its lateness is recorded.
async fn open_loop(
    ctx: &Arc<Ctx>,
    keys: &Arc<Vec<WidgetKey>>,
    options: &Options,
    rate: f64,
    total: u64,
    until: Instant,
) -> Tally {
    let permits = Arc::new(Semaphore::new(options.concurrency));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = tokio::time::Instant::now();
    let sampling = Sampling::of(options);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        if Instant::now() >= until {
            break;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let lag = tokio::time::Instant::now().saturating_duration_since(due);
        lock(&tally).lag_us.push(micros(lag));
        let (ctx, keys, tally) = (ctx.clone(), keys.clone(), tally.clone());
        tokio::spawn(async move {
            let key = &keys[(i % keys.len() as u64) as usize];
            let result = login(&ctx, key, sampling.check(i)).await;
            lock(&tally).record(result);
            drop(permit);
        });
    }
    // Every login ends within its step limits; wait for the last ones.
    let all = u32::try_from(options.concurrency).unwrap_or(u32::MAX);
    let wait = ctx.step * 4 + Duration::from_secs(5);
    if tokio::time::timeout(wait, permits.acquire_many(all)).await.is_err() {
        lock(&tally).record(Err("generator: logins still running at the end".into()));
    }
    std::mem::take(&mut *lock(&tally))
}

// ---------------------------------------------------------------------------
// Idle sessions: widgets showing a code that nobody scans.

struct Idle {
    wanted: usize,
    held: Arc<AtomicUsize>,
    reopened: Arc<AtomicU64>,
    errors: Arc<Mutex<BTreeMap<String, u64>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    opened_in: Duration,
    rss_before_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    server_ticks: Option<u64>,
}

/// Opens `wanted` widget sessions and keeps them open, answering pings, until
/// stopped; a widget whose code expires fetches a new one, as the real
/// widget does.
async fn hold_idle(ctx: &Arc<Ctx>, keys: Vec<WidgetKey>, pid: Option<u32>) -> Idle {
    let wanted = keys.len();
    let held = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let reopened = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(BTreeMap::new()));
    let (stop, stop_rx) = watch::channel(false);
    let opening = Arc::new(Semaphore::new(IDLE_OPENING_AT_ONCE));

    let before = Snapshot::take(pid);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(wanted);
    for key in keys {
        let ctx = ctx.clone();
        let (held, failed, reopened) = (held.clone(), failed.clone(), reopened.clone());
        let (errors, mut stop, opening) = (errors.clone(), stop_rx.clone(), opening.clone());
        tasks.push(tokio::spawn(async move {
            let mut first = true;
            for _ in 0..=IDLE_REOPENS {
                let opened = {
                    let _permit = opening.acquire().await;
                    open_idle(&ctx, &key).await
                };
                let mut ws = match opened {
                    Ok(ws) => ws,
                    Err(reason) => {
                        *lock(&errors).entry(format!("idle: {reason}")).or_default() += 1;
                        if first {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                };
                if !first {
                    reopened.fetch_add(1, Ordering::Relaxed);
                }
                first = false;
                held.fetch_add(1, Ordering::Relaxed);
                let ended = idle_until(&mut ws, &mut stop).await;
                held.fetch_sub(1, Ordering::Relaxed);
                match ended {
                    IdleEnd::Stopped => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                        return;
                    }
                    IdleEnd::Expired => {}
                    IdleEnd::Dropped(reason) => {
                        *lock(&errors).entry(format!("idle: {reason}")).or_default() += 1;
                    }
                }
                if *stop.borrow() {
                    return;
                }
            }
        }));
    }

    // Wait until every widget holds its session or gave up.
    let deadline = Instant::now() + IDLE_OPEN_LIMIT;
    while held.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < wanted
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let opened_in = started.elapsed();
    // Let the server settle (allocations of the last handshakes returned).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Snapshot::take(pid);
    Idle {
        wanted,
        held,
        reopened,
        errors,
        stop,
        tasks,
        opened_in,
        rss_before_kib: before.server_rss_kib,
        rss_after_kib: after.server_rss_kib,
        server_ticks: after.server_ticks.zip(before.server_ticks).map(|(a, b)| a - b),
    }
}

async fn open_idle(ctx: &Ctx, key: &WidgetKey) -> Result<Ws, String> {
    let mut ws = step(ctx, "widget connect", connect(ctx)).await?;
    hello(ctx, &mut ws, key).await?;
    Ok(ws)
}

enum IdleEnd {
    Stopped,
    Expired,
    Dropped(String),
}

async fn idle_until(ws: &mut Ws, stop: &mut watch::Receiver<bool>) -> IdleEnd {
    tokio::select! {
        _ = stop.changed() => IdleEnd::Stopped,
        frame = next_frame(ws, "nothing") => match frame {
            Ok(WidgetOut::Expired) => IdleEnd::Expired,
            Ok(other) => IdleEnd::Dropped(unexpected(&other, "nothing")),
            Err(reason) => IdleEnd::Dropped(reason),
        },
    }
}

impl Idle {
    async fn release(self) -> usize {
        let still_held = self.held.load(Ordering::Relaxed);
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        still_held
    }
}

// ---------------------------------------------------------------------------
// The run.

struct Measured {
    keys_made: usize,
    keys_took: Duration,
    warm: Tally,
    warm_closes: Closes,
    load: Tally,
    closes: Closes,
    before: Snapshot,
    /// When the last payload arrived.
    after: Snapshot,
    /// When the last socket had wound down.
    settled: Snapshot,
    server_hwm_kib: Option<u64>,
    idle: Option<IdleFigures>,
}

struct IdleFigures {
    wanted: usize,
    held_at_start: usize,
    held_at_end: usize,
    reopened: u64,
    errors: BTreeMap<String, u64>,
    opened_in: Duration,
    rss_before_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    server_ticks: Option<u64>,
}

impl Measured {
    fn idle_failures(&self) -> u64 {
        self.idle.as_ref().map_or(0, |i| i.errors.values().sum())
    }

    fn close_failures(&self) -> u64 {
        let closes = [&self.warm_closes, &self.closes];
        closes.iter().map(|c| c.problems.values().sum::<u64>()).sum()
    }
}

async fn drive(options: &Options, target: &Target) -> Result<Measured, String> {
    let ctx = Arc::new(Ctx::new(options, target)?);
    let total = options.total_flows();

    // Key pairs for every login (up to a pool size) and every idle widget,
    // made now so that the generator's own key generation is not timed.
    let made = Instant::now();
    let pool = total.saturating_add(options.warmup).clamp(1, MAX_KEY_POOL) as usize;
    let keys: Arc<Vec<WidgetKey>> = Arc::new((0..pool).map(|_| WidgetKey::generate()).collect());
    let idle_keys: Vec<WidgetKey> = (0..options.idle).map(|_| WidgetKey::generate()).collect();
    let keys_made = pool + options.idle;
    let keys_took = made.elapsed();

    let far = Instant::now() + Duration::from_secs(options.max_seconds);
    let warm_concurrency = options.concurrency.min(16);
    let all = Sampling::ALL;
    let warm = closed_loop(&ctx, &keys, all, warm_concurrency, options.warmup, far).await;
    let warm_closes = settle(&ctx).await;

    let idle = match options.idle {
        0 => None,
        _ => Some(hold_idle(&ctx, idle_keys, target.pid).await),
    };
    let held_at_start = idle.as_ref().map_or(0, |i| i.held.load(Ordering::Relaxed));

    let before = Snapshot::take(target.pid);
    let mut until = before.at + Duration::from_secs(options.max_seconds);
    if let Some(secs) = options.duration {
        until = until.min(before.at + Duration::from_secs_f64(secs));
    }
    let load = match options.rate {
        Some(rate) => open_loop(&ctx, &keys, options, rate, total, until).await,
        None => {
            let c = options.concurrency;
            closed_loop(&ctx, &keys, Sampling::of(options), c, total, until).await
        }
    };
    let after = Snapshot::take(target.pid);
    let closes = settle(&ctx).await;
    // CPU counts until the last socket has wound down, time until the last payload.
    let settled = Snapshot::take(target.pid);
    let server_hwm_kib = target.pid.and_then(|pid| status_kib(pid, "VmHWM:"));

    let idle = match idle {
        None => None,
        Some(idle) => {
            let (wanted, reopened) = (idle.wanted, idle.reopened.clone());
            let errors = idle.errors.clone();
            let (opened_in, rss_before_kib, rss_after_kib, server_ticks) =
                (idle.opened_in, idle.rss_before_kib, idle.rss_after_kib, idle.server_ticks);
            let held_at_end = idle.release().await;
            let errors = std::mem::take(&mut *lock(&errors));
            Some(IdleFigures {
                wanted,
                held_at_start,
                held_at_end,
                reopened: reopened.load(Ordering::Relaxed),
                errors,
                opened_in,
                rss_before_kib,
                rss_after_kib,
                server_ticks,
            })
        }
    };
    Ok(Measured {
        keys_made,
        keys_took,
        warm,
        warm_closes,
        load,
        closes,
        before,
        after,
        settled,
        server_hwm_kib,
        idle,
    })
}

/// Waits for the sockets of finished logins to wind down; returns how they did.
async fn settle(ctx: &Ctx) -> Closes {
    let deadline = Instant::now() + Duration::from_secs(5);
    while ctx.closing.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::mem::take(&mut *lock(&ctx.closes))
}

// ---------------------------------------------------------------------------
// The report.

struct Setup<'a> {
    argv: &'a [String],
    fd_limit: u64,
    threads: usize,
    target: &'a Target,
    server: Option<&'a Server>,
}

/// The value at fraction `q` of sorted samples (nearest rank).
fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ms(us: Option<u32>) -> String {
    us.map_or_else(|| "n/a".into(), |us| format!("{:.3} ms", f64::from(us) / 1000.0))
}

fn shell_quote(arg: &str) -> String {
    let plain = arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_=.,:/@+".contains(c));
    match plain && !arg.is_empty() {
        true => arg.to_owned(),
        false => format!("'{}'", arg.replace('\'', r"'\''")),
    }
}

fn git_state() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        None => "unknown (not a git checkout)".into(),
        Some(commit) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if !changes.is_empty() => {
                let files = changes.lines().count();
                format!("{commit} (working tree: {files} tracked files with uncommitted changes)")
            }
            _ => format!("{commit} (clean)"),
        },
    }
}

fn render(
    options: &Options,
    setup: &Setup,
    m: &Measured,
    (died, ended): (Option<ExitStatus>, Option<ExitStatus>),
) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let args: Vec<String> =
        setup.argv.iter().skip(1).filter(|a| *a != "--bench").map(|a| shell_quote(a)).collect();
    line("== keyri login load report".into());
    line(format!("command: cargo bench --bench login_load -- {}", args.join(" ")));
    line(format!("source: {}", git_state()));
    match setup.server {
        Some(server) => {
            line(format!("server: started by this run, pid {}: {}", server.pid, server.command));
        }
        None => line(format!("server: {} (already running)", setup.target.url)),
    }
    let pinned = options
        .taskset_client
        .as_deref()
        .map_or("not pinned".into(), |c| format!("pinned to CPU {c}"));
    line(format!("generator: {pinned}, {} runtime threads", setup.threads));
    line(format!("generator open-file limit: {}", setup.fd_limit));
    let mode = match (options.rate, options.duration) {
        (Some(rate), _) => format!(
            "open loop, {rate} logins/s scheduled, at most {} in progress",
            options.concurrency
        ),
        (None, Some(secs)) => {
            format!("closed loop, {} at once, for {secs} s", options.concurrency)
        }
        (None, None) => {
            format!(
                "closed loop, {} at once, {} logins",
                options.concurrency,
                options.total_flows()
            )
        }
    };
    line(format!("mode: {mode}; {} warm-up logins before, not counted", options.warmup));
    line(format!(
        "key pairs: {} widget key pairs made before the timed phase ({:.2} s){}",
        m.keys_made,
        m.keys_took.as_secs_f64(),
        match options.total_flows().saturating_add(options.warmup) > MAX_KEY_POOL {
            true => format!(", reused in turn past {MAX_KEY_POOL}"),
            false => String::new(),
        }
    ));
    let sealing = match options.seal_every {
        1 => "on every login".to_owned(),
        n => format!(
            "on every {} ({} of them); the others send one payload of the same size sealed \
             in advance, which the server cannot tell apart",
            ordinal(n),
            m.load.sealed
        ),
    };
    line(format!(
        "payload: {} bytes, sealed with HPKE by the phone to the widget's key {sealing}; \
         opened and checked by the widget on every {} (opened {}); every payload compared \
         byte for byte with what the phone sent",
        options.payload_bytes,
        ordinal(options.open_every),
        m.load.opened
    ));

    let load = &m.load;
    let done = load.completed();
    let elapsed = m.after.at - m.before.at;
    line("-- figures".into());
    line(format!("logins completed: {done}"));
    line(format!("logins failed: {}", load.failures()));
    line(format!("elapsed: {:.3} s", elapsed.as_secs_f64()));
    line(format!("throughput: {:.1} logins/s", done as f64 / elapsed.as_secs_f64()));
    let mut confirm = load.confirm_us.clone();
    confirm.sort_unstable();
    let mut whole = load.whole_us.clone();
    whole.sort_unstable();
    line(format!("confirm→payload p50: {}", ms(percentile(&confirm, 0.50))));
    line(format!("confirm→payload p99: {}", ms(percentile(&confirm, 0.99))));
    line(format!(
        "confirm→payload p99.9: {} (from {} samples)",
        ms(percentile(&confirm, 0.999)),
        confirm.len()
    ));
    line(format!("confirm→payload max: {}", ms(confirm.last().copied())));
    line(format!("whole login p50: {}", ms(percentile(&whole, 0.50))));
    line(format!("whole login p99: {}", ms(percentile(&whole, 0.99))));
    let mut close = m.closes.close_us.clone();
    close.sort_unstable();
    line(format!(
        "payload→socket closed by the server p50: {}, p99: {}",
        ms(percentile(&close, 0.50)),
        ms(percentile(&close, 0.99))
    ));
    if options.rate.is_some() {
        let mut lag = load.lag_us.clone();
        lag.sort_unstable();
        let late = lag.iter().filter(|&&l| l > 1000).count();
        line(format!(
            "start lag behind schedule p99: {}, max: {} ({} of {} started over 1 ms late)",
            ms(percentile(&lag, 0.99)),
            ms(lag.last().copied()),
            late,
            lag.len()
        ));
    }

    let ticks = clock_ticks_per_second() as f64;
    // CPU is counted until the last socket wound down, so it is shared over
    // that time.
    let settled_secs = (m.settled.at - m.before.at).as_secs_f64();
    let cpu = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| (a - b) as f64 / ticks);
    match cpu(m.settled.server_ticks, m.before.server_ticks) {
        Some(server) if done > 0 => {
            let share = 100.0 * server / settled_secs;
            line(format!("server CPU: {server:.2} s ({share:.0}% of one core)"));
            line(format!("server CPU per login: {:.0} µs", 1e6 * server / done as f64));
        }
        _ => line("server CPU per login: not measured (no server pid)".into()),
    }
    if let Some(client) = cpu(m.settled.client_ticks, m.before.client_ticks)
        && done > 0
    {
        line(format!(
            "generator CPU: {client:.2} s ({:.0}% of one core), {:.0} µs per login, of which \
             sealing {:.0} µs and opening {:.0} µs (averaged over all logins)",
            100.0 * client / settled_secs,
            1e6 * client / done as f64,
            load.seal_ns as f64 / 1e3 / done as f64,
            load.open_ns as f64 / 1e3 / done as f64,
        ));
    }
    let kib = |v: Option<u64>| {
        v.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    };
    line(format!(
        "server RSS: {} before the timed phase, {} after, peak {}",
        kib(m.before.server_rss_kib),
        kib(m.after.server_rss_kib),
        kib(m.server_hwm_kib)
    ));

    match &m.idle {
        None => line("server memory per idle session: not measured (use --idle N)".into()),
        Some(idle) => render_idle(&mut line, idle, ticks),
    }

    line("-- errors".into());
    let mut any = false;
    let phases = [
        ("warm-up", &m.warm.errors),
        ("warm-up socket end", &m.warm_closes.problems),
        ("timed", &load.errors),
        ("timed socket end", &m.closes.problems),
    ];
    for (phase, errors) in phases {
        for (reason, count) in errors {
            any = true;
            line(format!("{phase}: {count} × {reason}"));
        }
    }
    if let Some(idle) = &m.idle {
        for (reason, count) in &idle.errors {
            any = true;
            line(format!("idle: {count} × {reason}"));
        }
    }
    if !any {
        line("none: every login completed and every payload arrived intact".into());
    }
    if let Some(server) = setup.server {
        let log = &server.log;
        line(format!(
            "server log: {} lines, {} warnings, {} errors{}",
            log.lines.load(Ordering::Relaxed),
            log.warnings.load(Ordering::Relaxed),
            log.errors.load(Ordering::Relaxed),
            server.kept.as_ref().map_or(String::new(), |d| {
                format!(" (kept in {})", d.join("server.log").display())
            }),
        ));
        for problem in lock(&log.problems).iter() {
            line(format!("  {problem}"));
        }
        match (died, ended) {
            (Some(status), _) => line(format!("server exited during the run: {status}")),
            (None, Some(status)) if status.success() => line("server stopped cleanly".into()),
            (None, Some(status)) => line(format!("server ended with {status} when stopped")),
            (None, None) => line("server: exit status unknown".into()),
        }
    }
    out
}

fn render_idle(line: &mut impl FnMut(String), idle: &IdleFigures, ticks: f64) {
    line(format!(
        "idle sessions held: {} of {} (opened in {:.1} s; {} at the end; {} codes renewed \
         after expiry or a drop)",
        idle.held_at_start,
        idle.wanted,
        idle.opened_in.as_secs_f64(),
        idle.held_at_end,
        idle.reopened
    ));
    match idle.rss_before_kib.zip(idle.rss_after_kib) {
        Some((before, after)) if idle.held_at_start > 0 => {
            let per = (after as f64 - before as f64) / idle.held_at_start as f64;
            line(format!(
                "server memory per idle session: {per:.1} KiB (RSS {:.1} MiB before opening, \
                 {:.1} MiB with {} open)",
                before as f64 / 1024.0,
                after as f64 / 1024.0,
                idle.held_at_start
            ));
        }
        _ => line("server memory per idle session: not measured (no server pid)".into()),
    }
    if let Some(t) = idle.server_ticks
        && idle.held_at_start > 0
    {
        let per = 1e6 * t as f64 / ticks / idle.held_at_start as f64;
        line(format!("server CPU per idle session opened: {per:.0} µs"));
    }
}

fn ordinal(n: u64) -> String {
    match n {
        1 => "login".into(),
        2 => "2nd login".into(),
        3 => "3rd login".into(),
        n => format!("{n}th login"),
    }
}
