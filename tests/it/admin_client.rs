//! A dashboard user over plain HTTP: keeps the sign-in cookie by hand (so
//! tests can steal and replay it) and reads CSRF tokens off the pages.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::support::TestApp;

pub const ADMIN: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct AdminClient {
    pub http: reqwest::Client,
    pub base: String,
    /// `name=value` pairs sent as the Cookie header.
    pub cookies: Vec<(String, String)>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The first CSRF token on the page.
    pub fn csrf(&self) -> String {
        hidden(&self.body, "csrf").expect("the page has a CSRF field")
    }
}

/// The value of a hidden input by name.
pub fn hidden(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    Some(body[start..].split('"').next()?.to_owned())
}

/// The text of the element with this id, up to the next tag.
pub fn by_id(body: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let start = body.find(&marker)?;
    let open = body[start..].find('>')? + start + 1;
    Some(body[open..].split('<').next()?.trim().to_owned())
}

impl AdminClient {
    pub fn new(app: &TestApp) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { http, base: app.url.clone(), cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        let pairs: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Some((name, rest)) = text.split_once('=') else { continue };
            let value = rest.split(';').next().unwrap_or("").to_owned();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value));
            }
        }
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        self.keep_cookies(&response);
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Page { status, headers, body }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        let response = request.header(COOKIE, self.cookie_header()).send().await.expect("answers");
        self.read(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with_origin(path, form, None).await
    }

    pub async fn post_with_origin(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("form"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.expect("answers");
        self.read(response).await
    }

    /// Uses the printed setup link to create the first admin.
    pub async fn set_up(app: &TestApp) -> Self {
        let mut client = Self::new(app);
        let link = app.setup_link.clone().expect("a setup link on first start");
        let token = link.split("token=").nth(1).expect("token").to_owned();
        let form = client.get(&format!("/admin/setup?token={token}")).await;
        assert_eq!(form.status, StatusCode::OK);
        let done = client
            .post(
                "/admin/setup",
                &[
                    ("token", &token),
                    ("name", ADMIN),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert!(client.cookies.iter().any(|(k, _)| k == "keyri_admin"), "signed in");
        client
    }

    /// Signs in; returns the answer to the sign-in post.
    pub async fn sign_in(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/admin/login").await;
        let csrf = form.csrf();
        self.post("/admin/login", &[("csrf", &csrf), ("name", name), ("password", password)]).await
    }

    /// A fresh CSRF token from a signed-in page.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/admin/tenants").await;
        assert_eq!(page.status, StatusCode::OK, "signed in");
        page.csrf()
    }

    /// Creates a tenant through the form; returns (tenant id, api secret).
    pub async fn create_tenant(&mut self, name: &str, origins: &str) -> (String, String) {
        let csrf = self.csrf().await;
        let page = self
            .post("/admin/tenants", &[("csrf", &csrf), ("name", name), ("origins", origins)])
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let secret = by_id(&page.body, "new-secret").expect("the secret is shown");
        let link = page.body.split("href=\"/admin/tenants/").nth(1).expect("link");
        (link.split('"').next().expect("id").to_owned(), secret)
    }
}
