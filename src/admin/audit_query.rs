//! Reading the audit log for people: filters, newest-first pages, and export
//! as JSON lines or CSV.

use serde::Deserialize;

use crate::audit::Record;
use crate::store::{Store, StoreError};

/// Most records one page shows.
pub const MAX_PAGE: usize = 500;
/// Most rows read to fill one page, so a rare filter cannot make one request
/// read the whole log; the next page continues where this one stopped.
const MAX_SCAN: usize = 50_000;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditFilter {
    /// Tenant id.
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub action: String,
    /// Part of the actor's label, such as `admin:alice` or `operator`.
    #[serde(default)]
    pub actor: String,
    /// Earliest time, Unix ms.
    #[serde(default)]
    pub since: Option<i64>,
    /// Latest time, Unix ms.
    #[serde(default)]
    pub until: Option<i64>,
}

impl AuditFilter {
    pub fn wants(&self, record: &Record) -> bool {
        (self.tenant.is_empty() || record.tenant.as_deref() == Some(self.tenant.as_str()))
            && (self.action.is_empty() || record.action == self.action)
            && (self.actor.is_empty() || record.actor.label().contains(&self.actor))
            && self.since.is_none_or(|t| record.at >= t)
            && self.until.is_none_or(|t| record.at <= t)
    }
}

/// One page, newest first, of records below sequence `before`; and where
/// the next page starts, if there may be more.
pub fn page(
    store: &Store,
    filter: &AuditFilter,
    before: Option<u64>,
    limit: usize,
) -> Result<(Vec<Record>, Option<u64>), StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut cursor = before.unwrap_or(u64::MAX);
    let mut found = Vec::new();
    let mut scanned = 0;
    while found.len() < limit && scanned < MAX_SCAN {
        let rows = store.audit_newest(cursor, 1000)?;
        let Some(last) = rows.last() else { return Ok((found, None)) };
        cursor = last.0;
        scanned += rows.len();
        for (seq, body) in rows {
            let Ok(record) = serde_json::from_slice::<Record>(&body) else { continue };
            if filter.wants(&record) {
                found.push(record);
                if found.len() == limit {
                    return Ok((found, Some(seq)));
                }
            }
        }
    }
    let more = cursor > 1;
    Ok((found, more.then_some(cursor)))
}

/// Records as JSON lines.
pub fn to_jsonl(records: &[Record]) -> String {
    let mut out = String::new();
    for record in records {
        out.push_str(&serde_json::to_string(record).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Records as CSV with a header row.
pub fn to_csv(records: &[Record]) -> String {
    let mut out = String::from("seq,at,tenant,actor,action,outcome,details\r\n");
    for r in records {
        let fields = [
            r.seq.to_string(),
            crate::cli::format_time(r.at),
            r.tenant.clone().unwrap_or_default(),
            r.actor.label(),
            r.action.clone(),
            r.outcome.clone(),
            r.details.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Quotes a field, doubling quotes, and defuses a leading `= + - @` (or tab
/// and carriage return) that spreadsheets would run as a formula.
pub fn csv_field(text: &str) -> String {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let text = if risky { format!("'{text}") } else { text.to_owned() };
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("say \"hi\", ok"), "\"say \"\"hi\"\", ok\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for risky in ["+1", "-1", "@SUM(A1)", "\tx"] {
            assert!(csv_field(risky).starts_with("\"'"), "{risky}");
        }
    }
}
