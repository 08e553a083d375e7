//! `keyri admin …`: dashboard accounts and admin API tokens. Like `keyri
//! tenant …`, works on the database file or through the running server.

use std::io::{BufRead, IsTerminal, Write};

use clap::Subcommand;

use super::execute;
use crate::config::Config;
use crate::ops::{Command, Redacted};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a dashboard admin; the password is read from a prompt or stdin.
    Create { name: String },
    /// Set a new password for an admin (for a lost password); ends the
    /// admin's dashboard sign-ins.
    ResetPassword { name: String },
    /// Admin API tokens for automation.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token that acts as admin NAME; printed only once.
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List tokens by id (the tokens themselves are not kept).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id at once.
    Revoke { id: String },
}

pub fn run(config: &Config, command: AdminCommand) -> Result<(), String> {
    match command {
        AdminCommand::Create { name } => {
            let password = read_password()?;
            execute(config, Command::AdminCreate { name: name.clone(), password })?;
            say!("admin {name} created");
        }
        AdminCommand::ResetPassword { name } => {
            let password = read_password()?;
            execute(config, Command::AdminResetPassword { name: name.clone(), password })?;
            say!("password of admin {name} reset; their dashboard sign-ins ended");
        }
        AdminCommand::Token(TokenCommand::Create { name, json }) => {
            let value = execute(config, Command::AdminTokenCreate { name })?;
            match json {
                true => say!("{value}"),
                false => {
                    let text = |key: &str| value[key].as_str().unwrap_or("").to_owned();
                    say!("admin API token {} (shown only now, store it safely):", text("id"));
                    say!("{}", text("token"));
                }
            }
        }
        AdminCommand::Token(TokenCommand::List { json }) => {
            let value = execute(config, Command::AdminTokenList)?;
            if json {
                say!("{value}");
                return Ok(());
            }
            let rows = value.as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                say!("no admin tokens");
            }
            for row in rows {
                let created = row["createdAt"].as_i64().map(super::format_time).unwrap_or_default();
                let (id, name) =
                    (row["id"].as_str().unwrap_or(""), row["name"].as_str().unwrap_or(""));
                say!("{id}  acts as {name}  created {created}");
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { id }) => {
            execute(config, Command::AdminTokenRevoke { id: id.clone() })?;
            say!("admin token {id} revoked");
        }
    }
    Ok(())
}

/// Reads a password: from a prompt without echo on a terminal (asked
/// twice), or the first line of stdin otherwise.
fn read_password() -> Result<Redacted, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| format!("cannot read stdin: {e}"))?;
        let password = line.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            return Err("no password read: give it as the first line of stdin".into());
        }
        return Ok(Redacted(password.to_owned()));
    }
    let first = prompt("Password (at least 12 characters): ")?;
    let second = prompt("Password again: ")?;
    if first != second {
        return Err("the two passwords differ".into());
    }
    Ok(Redacted(first))
}

fn prompt(text: &str) -> Result<String, String> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let echo_off =
        std::process::Command::new("stty").arg("-echo").status().is_ok_and(|s| s.success());
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
