//! A small WebDriver client for headless Chromium through chromedriver: just
//! the commands the browser tests use.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    base: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn find(binary: &str, fallbacks: &[&str]) -> String {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|p| p.join(binary)).find(|p| p.is_file())
    });
    let fallback = fallbacks.iter().find(|p| std::path::Path::new(p).is_file());
    on_path
        .map(|p| p.display().to_string())
        .or_else(|| fallback.map(|p| p.to_string()))
        .unwrap_or_else(|| {
            panic!(
                "{binary} is not installed: scripts/test installs it \
                 (Debian: apt-get install chromium chromium-driver)"
            )
        })
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless session.
    pub async fn start() -> Self {
        let driver_bin = find("chromedriver", &["/usr/bin/chromedriver"]);
        let chromium = find("chromium", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut browser = Self {
            driver,
            http: keyri::phone::http_client(),
            base: format!("http://127.0.0.1:{port}"),
            _profile: profile,
        };
        browser.wait_ready().await;

        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=900,1100",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let session = browser.call("POST", "/session", Some(caps)).await;
        let id = session["sessionId"].as_str().expect("session id").to_owned();
        browser.base = format!("{}/session/{id}", browser.base);
        browser
    }

    async fn wait_ready(&self) {
        for _ in 0..100 {
            let status = self.http.get(format!("{}/status", self.base)).send().await;
            if status.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let value: Value = response.json().await.expect("JSON from chromedriver");
        assert!(status.is_success(), "WebDriver {method} {path}: {value}");
        value["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// Runs a script in the page and returns what it returned.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// Runs an async script; it must call `arguments[arguments.length - 1]`.
    pub async fn eval_async(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/async", Some(json!({"script": script, "args": args}))).await
    }

    /// Polls `script` until it returns something other than null, false or "".
    pub async fn wait_for(&self, script: &str, what: &str) -> Value {
        for _ in 0..100 {
            let value = self.eval(script, json!([])).await;
            let empty = value.is_null() || value == json!(false) || value == json!("");
            if !empty {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// The WebDriver id of the first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> String {
        let found = self
            .call("POST", "/element", Some(json!({"using": "css selector", "value": css})))
            .await;
        let id = found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str);
        id.expect("element reference").to_owned()
    }

    /// Clicks an element as a person would (it must be visible).
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call("POST", &format!("/element/{id}/click"), None).await;
    }

    /// Types into a field after clearing it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call("POST", &format!("/element/{id}/clear"), None).await;
        self.call("POST", &format!("/element/{id}/value"), Some(json!({"text": text}))).await;
    }

    /// Continues inside the page's `index`-th frame.
    pub async fn enter_frame(&self, index: u32) {
        self.call("POST", "/frame", Some(json!({"id": index}))).await;
    }

    /// Back to the top-level page.
    pub async fn leave_frame(&self) {
        self.call("POST", "/frame/parent", None).await;
    }

    pub async fn screenshot(&self) -> Vec<u8> {
        let value = self.call("GET", "/screenshot", None).await;
        use base64::Engine;
        let text = value.as_str().expect("base64 PNG");
        base64::engine::general_purpose::STANDARD.decode(text).expect("PNG bytes")
    }

    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.base).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
