//! `keyri serve`: runs until SIGINT or SIGTERM, then stops gracefully;
//! SIGHUP reloads the TLS certificate.

use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

use super::runtime;
use crate::config::Config;
use crate::server;

pub fn run(config: Config) -> Result<(), String> {
    let filter = EnvFilter::try_new(&config.log.level)
        .map_err(|e| format!("log.level {:?}: {e}", config.log.level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a journal or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    raise_open_file_limit();

    runtime()?.block_on(async {
        // Handlers first, so a signal sent as soon as the server says it runs
        // is handled rather than fatal.
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let mut hangup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
        let addr = config.bind_addr().map_err(|e| e.to_string())?;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let running = server::start(config, listener).await.map_err(|e| e.to_string())?;
        let url = &running.public_url;
        match &running.demo_app_key {
            Some(app_key) => {
                say(&format!("keyri is running. Demo: {url}/demo (app key {app_key})"))
            }
            None => say(&format!("keyri is running at {url}")),
        }
        if let Some(secret) = &running.demo_secret {
            // Printed, never logged: like `keyri tenant create`, the one time
            // the secret is shown.
            let secret = secret.expose();
            say(&format!("Demo tenant created. Its API secret, shown only now: {secret}"));
        }
        if let Some(link) = &running.setup_link {
            // Printed, never logged: whoever has the link chooses the first
            // admin's password.
            use std::io::Write;
            let line = "No admin yet. Choose the first admin's password here (works once)";
            if let Err(e) = writeln!(std::io::stdout().lock(), "{line}: {link}") {
                let hint = "the setup link could not be printed; use `keyri admin create`";
                tracing::warn!(error = %e, "{hint}");
            }
        }

        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = hangup.recv() => reload(&running),
            }
        }
        tracing::info!("stopping");
        running.stop().await;
        Ok(())
    })
}

/// SIGHUP: reads the TLS certificate and key again.
fn reload(running: &server::Running) {
    match running.reload_tls() {
        Ok(()) => tracing::info!("tls certificate reloaded"),
        Err(e) => tracing::error!(error = %e, "tls reload failed; keeping the current one"),
    }
}

/// Prints a line for the operator. A closed standard output must not stop a
/// running server, so a failed write is ignored.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Each widget holds a socket open for as long as its code is shown, so the
/// number of waiting logins is bounded by the open-file limit. Raises the soft
/// limit to the hard one; if that fails the server still runs, with less room.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(
            "open-file limit {limit}: can hold about {limit} sockets, waiting widgets and \
             phone connections together"
        ),
        Err(e) => tracing::warn!("cannot raise the open-file limit, keeping the current one: {e}"),
    }
}
