//! JSON shapes of every message on the wire. Field names are camelCase and
//! times are Unix milliseconds, as the contract says.

use serde::{Deserialize, Serialize};

/// Frames a widget may send.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum WidgetIn {
    #[serde(rename_all = "camelCase")]
    Hello { public_key: String },
}

/// Frames the server sends to a widget.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq, Clone)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum WidgetOut {
    #[serde(rename_all = "camelCase")]
    Session {
        session_id: String,
        expires_at: i64,
        scan_url: String,
    },
    Scanned,
    Payload {
        sealed: String,
    },
    Denied,
    Expired,
    Error {
        error: String,
        message: String,
    },
}

/// Whether a phone has looked at the session yet.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Pending,
    Scanned,
}

/// What the phone shows the user before asking for confirmation.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub session_id: String,
    pub status: SessionStatus,
    pub public_key: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub widget: WidgetInfo,
    pub mobile: MobileInfo,
    /// Signals the app must warn the user about.
    pub risk: Vec<String>,
    /// Signals the tenant chose only to show, not to warn about.
    #[serde(default)]
    pub notices: Vec<String>,
    /// Distance between the browser and the phone, when both are located.
    #[serde(default)]
    pub distance_km: Option<u32>,
}

/// Where the login comes from, as seen by the server.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct WidgetInfo {
    pub origin: Option<String>,
    pub ip: String,
    pub user_agent: String,
    pub browser: String,
    pub os: String,
    pub location: Option<Location>,
}

#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub country: Option<String>,
    pub city: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct MobileInfo {
    pub ip: String,
    #[serde(default)]
    pub location: Option<Location>,
}

/// Body of `POST /v1/sessions/{id}/confirm`.
#[derive(Debug, Deserialize, Serialize)]
pub struct ConfirmRequest {
    pub sealed: String,
}

/// Body of a successful confirm or deny.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct StatusResponse {
    pub status: String,
}

/// Body of every error answer.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// Risk warnings the phone must show.
pub mod risk {
    pub const DIFFERENT_NETWORK: &str = "different_network";
    pub const DIFFERENT_COUNTRY: &str = "different_country";
    pub const NATIVE_CLIENT: &str = "native_client";
}
