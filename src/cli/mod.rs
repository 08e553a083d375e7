//! The `keyri` command line: the server, operator commands and the phone
//! simulator.

/// `println!` for a command's output: when the reader has gone away, as with
/// `keyri tenant list | head -1`, the command ends quietly instead of panicking.
macro_rules! say {
    () => {
        $crate::cli::say_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::say_line(format_args!($($arg)*))
    };
}

mod admin;
mod audit;
mod phone;
mod serve;
mod tenant;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::sync::Arc;

use serde_json::Value;

use crate::admin_socket;
use crate::audit::AuditLog;
use crate::config::Config;
use crate::directory::Directory;
use crate::ops::{self, Command};
use crate::store::{Store, StoreError};

#[derive(Parser)]
#[command(name = "keyri", version, about = "Self-hosted QR login")]
struct Cli {
    /// Configuration file [default: ./keyri.toml, if present]
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Run the server.
    Serve,
    /// Manage tenants (works while the server runs).
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Manage dashboard admins and admin API tokens (works while the server
    /// runs).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Check or export the audit log (works while the server runs).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write a consistent copy of the database to FILE (works while the
    /// server runs). To restore, stop the server and put the copy in place
    /// of data/keyri.redb.
    Backup { file: PathBuf },
    /// Act as a phone: approve or deny a login shown by a widget.
    #[command(subcommand)]
    Phone(phone::PhoneCommand),
}

pub fn main() -> ExitCode {
    crate::tls::install_crypto_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        // The phone simulator talks to a server; it needs no configuration.
        Top::Phone(command) => phone::run(command),
        other => match settings_from_env()
            .and_then(|vars| Config::load(cli.config.as_deref(), vars).map_err(|e| e.to_string()))
        {
            Err(e) => Err(format!("configuration: {e}")),
            Ok(config) => match other {
                Top::Serve => serve::run(config),
                Top::Tenant(command) => tenant::run(&config, command),
                Top::Admin(command) => admin::run(&config, command),
                Top::Audit(command) => audit::run(&config, command),
                Top::Backup { file } => audit::backup(&config, &file),
                Top::Phone(_) => unreachable!("handled above"),
            },
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyri: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Writes one line of output; see `say!`.
pub(crate) fn say_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let written = writeln!(std::io::stdout().lock(), "{line}");
    if let Err(e) = written {
        output_failed(&e);
    }
}

/// Set once a command has changed something, whose output may then be the
/// only copy of a new secret or token.
static CHANGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ends the command after its output could not be written. A reader that
/// closed the pipe of a look-only command took what it wanted: that ends
/// quietly. After a change it is an error, since a secret shown once is lost.
pub(crate) fn output_failed(e: &std::io::Error) -> ! {
    if CHANGED.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "keyri: the change was made, but its output could not be written ({e}); a secret \
             or token it showed is lost: rotate or revoke it"
        );
        std::process::exit(1);
    }
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("keyri: cannot write the output: {e}");
    std::process::exit(1);
}

/// Runs an operator command on the database file, or through the running
/// server's admin socket when the server holds the file.
pub fn execute(config: &Config, command: Command) -> Result<Value, String> {
    let changes = command.records();
    let result = execute_here_or_there(config, command);
    if changes && result.is_ok() {
        CHANGED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    result
}

fn execute_here_or_there(config: &Config, command: Command) -> Result<Value, String> {
    let path = config.db_path();
    // Only a command that changes something may create the database; a
    // look at a mistyped data dir must not leave an empty one behind.
    if !command.records() && !path.exists() {
        return Err(format!("no database at {} (is storage.data_dir right?)", path.display()));
    }
    let fresh = !path.exists();
    match Store::open(&path) {
        Ok(store) => {
            if command.records() && config.audit.enabled {
                store.check_audit_head().map_err(|e| e.to_string())?;
            }
            let directory = Arc::new(Directory::new(store).map_err(|e| e.to_string())?);
            let (audit, writer) = match command.records() && config.audit.enabled {
                true => {
                    let (log, writer) = AuditLog::start(directory.clone(), &config.audit);
                    (log, Some(writer))
                }
                false => (AuditLog::disabled(), None),
            };
            let result = ops::execute(&directory, &audit, config, None, command);
            if let Some(writer) = writer {
                writer.close_blocking();
            }
            if fresh && result.is_ok() {
                // A command run from the wrong folder would otherwise fill a
                // database nobody serves, without a word.
                eprintln!("keyri: created a new database at {}", path.display());
            }
            result
        }
        Err(StoreError::Locked) => admin_socket::request(&config.admin_socket_path(), &command)
            .map_err(|e| match e {
                admin_socket::ClientError::Connect { .. } => format!(
                    "the database is held by another process and its admin socket does not \
                     answer ({e})"
                ),
                other => other.to_string(),
            }),
        Err(e) => Err(e.to_string()),
    }
}

/// The environment as text. Variables that are not UTF-8 are skipped, unless
/// they are settings (`KEYRI_…`), which are then refused by name.
fn settings_from_env() -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (key, value) in std::env::vars_os() {
        match (key.into_string(), value.into_string()) {
            (Ok(key), Ok(value)) => vars.push((key, value)),
            (Ok(key), Err(_)) if key.starts_with("KEYRI_") => {
                return Err(format!("{key}: the value is not UTF-8 text"));
            }
            _ => {}
        }
    }
    Ok(vars)
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

/// A multi-threaded runtime for the commands that need one.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::format_time(1_796_401_734_859), "2026-12-04 16:28:54 UTC");
        assert_eq!(super::format_time(951_868_800_000), "2000-03-01 00:00:00 UTC");
    }
}
