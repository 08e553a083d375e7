//! The audit log in the dashboard: filters, newest-first pages, and export
//! as JSON lines or CSV.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin_session::{PageError, page, secure_headers, signed_in};
use super::admin_tenants::RecordRow;
use super::client::client_ip;
use super::error::ApiError;
use crate::admin::audit_query::{self, AuditFilter};
use crate::audit::{Actor, Event, action};

/// Records per dashboard page.
const PAGE: usize = 50;
/// Most records one export holds.
const MAX_EXPORT: usize = 100_000;

/// The filter as the form sends it; times as `YYYY-MM-DD` or
/// `YYYY-MM-DDTHH:MM`, in UTC.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default, skip_serializing)]
    pub before: Option<u64>,
    #[serde(default, skip_serializing)]
    pub format: String,
}

impl AuditQuery {
    pub fn filter(&self) -> Result<AuditFilter, ApiError> {
        let time = |text: &str, end: bool| -> Result<Option<i64>, ApiError> {
            if text.trim().is_empty() {
                return Ok(None);
            }
            parse_utc(text.trim(), end).map(Some).ok_or_else(|| {
                ApiError::BadRequest(format!("{text:?} is not a date like 2026-12-31T23:59"))
            })
        };
        Ok(AuditFilter {
            tenant: self.tenant.trim().to_owned(),
            action: self.action.trim().to_owned(),
            actor: self.actor.trim().to_owned(),
            since: time(&self.since, false)?,
            until: time(&self.until, true)?,
        })
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    admin: &'a str,
    csrf: &'a str,
    q: &'a AuditQuery,
    actions: &'a [&'a str],
    rows: Vec<RecordRow>,
    next: String,
    query: String,
}

pub async fn show(
    req: HttpRequest,
    query: web::Query<AuditQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = signed_in(&req, &state)?;

    let filter = query.filter()?;
    let (records, next) = state
        .directory
        .with_store(|s| audit_query::page(s, &filter, query.before, PAGE))
        .map_err(ApiError::from)?;

    let names: HashMap<String, String> = state
        .directory
        .list()
        .map_err(ApiError::from)?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let encoded = serde_urlencoded::to_string(&*query).map_err(ApiError::internal)?;
    let next = next.map(|seq| format!("?{encoded}&before={seq}")).unwrap_or_default();
    let body = AuditPage {
        admin: &admin.admin,
        csrf: &admin.csrf,
        q: &query,
        actions: &action::ALL,
        rows: records.iter().map(|r| RecordRow::of(r).named(&names)).collect(),
        next,
        query: encoded,
    };
    Ok(page(body.render().map_err(ApiError::internal)?))
}

pub async fn export(
    req: HttpRequest,
    query: web::Query<AuditQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let admin = signed_in(&req, &state)?;

    let filter = query.filter()?;
    let csv = match query.format.as_str() {
        "csv" => true,
        "jsonl" | "" => false,
        _ => return Err(ApiError::BadRequest("format must be jsonl or csv".into()).into()),
    };
    let mut records = Vec::new();
    let mut before = None;
    while records.len() < MAX_EXPORT {
        let (page, next) = state
            .directory
            .with_store(|s| audit_query::page(s, &filter, before, audit_query::MAX_PAGE))
            .map_err(ApiError::from)?;
        records.extend(page);
        match next {
            Some(seq) => before = Some(seq),
            None => break,
        }
    }
    records.reverse();

    let event = Event::new(None, Actor::Admin { name: admin.admin.clone() }, action::AUDIT_EXPORT)
        .detail("ip", client_ip(&req).to_string())
        .detail("format", if csv { "csv" } else { "jsonl" })
        .detail("records", records.len());
    state.audit.record(event).await.map_err(ApiError::internal)?;

    let (body, kind, name) = match csv {
        true => (audit_query::to_csv(&records), "text/csv; charset=utf-8", "keyri-audit.csv"),
        false => (audit_query::to_jsonl(&records), "application/x-ndjson", "keyri-audit.jsonl"),
    };
    Ok(secure_headers(HttpResponse::Ok())
        .content_type(kind)
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .body(body))
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]` in UTC as Unix ms; a bare date
/// means its start, or its end when `end`.
pub fn parse_utc(text: &str, end: bool) -> Option<i64> {
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let secs = match time {
        Some(t) => {
            let mut hms = t.split(':').map(|p| p.parse::<i64>().ok());
            let (h, mi) = (hms.next()??, hms.next()??);
            let s = hms.next().flatten().unwrap_or(0);
            if h > 23 || mi > 59 || s > 59 {
                return None;
            }
            h * 3600 + mi * 60 + s
        }
        None if end => 86_399,
        None => 0,
    };
    // Days from civil date (proleptic Gregorian), the inverse of format_time.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = (days * 86_400 + secs) * 1000;
    Some(if end { ms + 999 } else { ms })
}

#[cfg(test)]
mod tests {
    use super::parse_utc;
    use crate::cli::format_time;

    #[test]
    fn dates_parse_as_utc_and_round_trip_with_the_display() {
        let at = parse_utc("2026-12-04T16:28:54", false).expect("parses");
        assert_eq!(format_time(at), "2026-12-04 16:28:54 UTC");
        assert_eq!(
            format_time(parse_utc("2000-03-01", false).expect("d")),
            "2000-03-01 00:00:00 UTC"
        );
        assert_eq!(
            format_time(parse_utc("2000-02-29", true).expect("d")),
            "2000-02-29 23:59:59 UTC"
        );
        assert!(parse_utc("2026-13-01", false).is_none());
        assert!(parse_utc("yesterday", false).is_none());
    }
}
