//! The `keyri` command line: the server, operator commands and the phone
//! simulator.

mod phone;
mod serve;
mod tenant;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

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
    /// Act as a phone: approve or deny a login shown by a widget.
    #[command(subcommand)]
    Phone(phone::PhoneCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // The phone simulator talks to a server; it needs no configuration.
        Top::Phone(command) => phone::run(command),
        other => match Config::load(cli.config.as_deref(), std::env::vars()) {
            Err(e) => Err(format!("configuration: {e}")),
            Ok(config) => match other {
                Top::Serve => serve::run(config),
                Top::Tenant(command) => tenant::run(&config, command),
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

/// A multi-threaded runtime for the commands that need one.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))
}
