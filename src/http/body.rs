//! Reading request bodies with a size limit, and parsing JSON with the
//! protocol's error shape.

use actix_web::web;
use futures_util::StreamExt;

use std::time::Duration;

use super::AppState;
use super::error::ApiError;

/// Reads a body of at most `max` bytes; a longer one is `too_large`, and
/// one that takes longer than `limits.request_body_timeout_secs` to arrive is
/// `timeout`, so a client trickling a body cannot hold a connection open.
pub async fn read_body(
    body: web::Payload,
    max: usize,
    state: &AppState,
) -> Result<Vec<u8>, ApiError> {
    read_body_reporting(body, max, max, state).await
}

/// Like `read_body`, but a refusal names `limit` as the limit, for callers
/// whose limit applies to a decoded value inside the body.
pub async fn read_body_reporting(
    body: web::Payload,
    max: usize,
    limit: usize,
    state: &AppState,
) -> Result<Vec<u8>, ApiError> {
    let deadline = Duration::from_secs(state.config.limits.request_body_timeout_secs);
    match tokio::time::timeout(deadline, collect(body, max, limit)).await {
        Ok(read) => read,
        Err(_) => Err(ApiError::Timeout),
    }
}

async fn collect(mut body: web::Payload, max: usize, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("unreadable body: {e}")))?;
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::TooLarge(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
}
