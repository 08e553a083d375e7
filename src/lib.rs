//! keyri: a self-hosted QR-login server, its widget and its phone SDK.

pub mod admin;
pub mod admin_socket;
pub mod audit;
pub mod auth;
pub mod backend_api;
pub mod cli;
pub mod config;
pub mod directory;
#[doc(hidden)]
pub mod fuzzing;
pub mod geo;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod netmask;
pub mod ops;
pub mod phone;
pub mod protocol;
pub mod relay;
pub mod risk;
pub mod server;
pub mod store;
pub mod tenants;
pub mod tls;
