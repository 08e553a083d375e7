//! The dashboard's form bodies, read like the API's: at most `FORM_LIMIT`
//! bytes, within `limits.request_body_timeout_secs`, so a client trickling
//! a form cannot hold a connection open.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::AppState;
use super::admin_session::PageError;
use super::body::read_body;
use super::error::ApiError;

/// The largest form the dashboard takes; its longest field is a tenant's
/// list of origins.
pub const FORM_LIMIT: usize = 16 * 1024;

/// A URL-encoded form, extracted with a size limit and a read deadline.
pub struct Form<T>(pub T);

impl<T> Form<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Form<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let urlencoded = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = web::Payload::from_request(req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if !urlencoded {
                let message = "a form must be sent as application/x-www-form-urlencoded";
                return Err(ApiError::BadRequest(message.into()).into());
            }
            let state = state.ok_or_else(|| ApiError::internal("no server state"))?;
            let bytes = read_body(body, FORM_LIMIT, &state).await?;
            serde_urlencoded::from_bytes(&bytes)
                .map(Form)
                .map_err(|e| ApiError::BadRequest(format!("malformed form: {e}")).into())
        })
    }
}
