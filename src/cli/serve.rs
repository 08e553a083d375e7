//! `keyri serve`: runs until SIGINT or SIGTERM, then stops gracefully.

use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

use super::runtime;
use crate::config::Config;
use crate::server;

pub fn run(config: Config) -> Result<(), String> {
    let filter = EnvFilter::try_new(&config.log.level)
        .map_err(|e| format!("log.level {:?}: {e}", config.log.level))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();

    runtime()?.block_on(async {
        let addr = config.bind_addr().map_err(|e| e.to_string())?;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let running = server::start(config, listener).await.map_err(|e| e.to_string())?;
        match &running.demo_app_key {
            Some(app_key) => {
                println!("keyri is running. Demo: {}/demo (app key {app_key})", running.public_url)
            }
            None => println!("keyri is running at {}", running.public_url),
        }
        if let Some(secret) = &running.demo_secret {
            // Printed, never logged: like `keyri tenant create`, the one time
            // the secret is shown.
            println!("Demo tenant created. Its API secret, shown only now: {}", secret.expose());
        }
        if let Some(link) = &running.setup_link {
            // Printed, never logged: whoever has the link chooses the first
            // admin's password.
            println!("No admin yet. Choose the first admin's password here (works once): {link}");
        }

        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        running.stop().await;
        Ok(())
    })
}
