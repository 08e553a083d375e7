//! The local admin socket: while `keyri serve` holds the database, operator
//! commands reach it here instead of opening the file. The socket lives in the
//! data dir with owner-only permissions, and the server also checks that each
//! caller runs as the same user.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::audit::AuditLog;
use crate::config::Config;
use crate::directory::Directory;
use crate::ops::{self, Command, Live};

/// Longest request line; commands are small.
const MAX_REQUEST: u64 = 64 * 1024;
/// Pause after a failed accept before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// How long a command may take before the client gives up.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    ok: Option<Value>,
    error: Option<String>,
}

pub struct Listener {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub fn start(
        config: &Config,
        directory: Arc<Directory>,
        audit: AuditLog,
        live: Arc<Live>,
    ) -> std::io::Result<Self> {
        let path = config.admin_socket_path();
        // The caller holds the database lock, so no other server owns this
        // socket: a file left here is from a server that died.
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;

        let config = config.clone();
        let task = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, for example: the socket
                        // must outlive it, so wait and accept again.
                        tracing::warn!(error = %e, "admin socket cannot accept; retrying");
                        tokio::time::sleep(ACCEPT_RETRY).await;
                        continue;
                    }
                };
                let (directory, config, audit) = (directory.clone(), config.clone(), audit.clone());
                let live = live.clone();
                tokio::spawn(
                    async move { serve_one(stream, directory, audit, live, config).await },
                );
            }
        });
        Ok(Self { path, task })
    }

    /// Stops accepting and waits until the listener has let go of the
    /// directory, so the database closes when the server's last handle drops.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve_one(
    stream: UnixStream,
    directory: Arc<Directory>,
    audit: AuditLog,
    live: Arc<Live>,
    config: Config,
) {
    let same_user = stream.peer_cred().is_ok_and(|c| c.uid() == current_uid());
    let (read, mut write) = stream.into_split();
    let reply = if !same_user {
        Reply { ok: None, error: Some("the admin socket only serves its owner".into()) }
    } else {
        let mut line = String::new();
        let mut reader =
            tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
        match reader.read_line(&mut line).await {
            Ok(_) => match serde_json::from_str::<Command>(&line) {
                Ok(command) => {
                    let run =
                        move || ops::execute(&directory, &audit, &config, Some(&live), command);
                    match tokio::task::spawn_blocking(run).await {
                        Ok(Ok(value)) => Reply { ok: Some(value), error: None },
                        Ok(Err(message)) => Reply { ok: None, error: Some(message) },
                        Err(_) => Reply { ok: None, error: Some("command failed".into()) },
                    }
                }
                Err(e) => Reply { ok: None, error: Some(format!("bad command: {e}")) },
            },
            Err(e) => Reply { ok: None, error: Some(format!("unreadable command: {e}")) },
        }
    };
    let mut text = serde_json::to_string(&reply).unwrap_or_default();
    text.push('\n');
    let _ = write.write_all(text.as_bytes()).await;
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The uid that owns our own process entry is the uid we run as.
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the running server at {path}: {source}")]
    Connect { path: String, source: std::io::Error },
    #[error("the running server did not answer: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Refused(String),
}

/// Sends one command to the running server and returns its result.
pub fn request(path: &Path, command: &Command) -> Result<Value, ClientError> {
    let mut stream = std::os::unix::net::UnixStream::connect(path)
        .map_err(|source| ClientError::Connect { path: path.display().to_string(), source })?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;

    let mut line = serde_json::to_string(command).map_err(std::io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;

    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    let reply: Reply = serde_json::from_str(&answer).map_err(std::io::Error::other)?;
    match (reply.ok, reply.error) {
        (Some(value), _) => Ok(value),
        (None, Some(error)) => Err(ClientError::Refused(error)),
        (None, None) => Err(ClientError::Refused("empty answer".into())),
    }
}
