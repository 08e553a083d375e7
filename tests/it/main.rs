//! Integration tests: real servers on 127.0.0.1 port 0, real redb files in
//! temporary directories, real WebSockets, and headless Chromium.

mod abuse;
mod admin;
mod admin_browser;
mod admin_cli;
mod admin_client;
mod audit;
mod browser;
mod cli;
mod flow;
mod fuzz_regressions;
mod hostile_input;
mod hpke_vectors;
mod mmdb;
mod openapi;
mod races;
mod random_input;
mod risk;
mod server_auth;
mod support;
mod tls;
mod webdriver;
