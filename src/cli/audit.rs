//! `keyri audit verify|export` and `keyri backup`.

use std::io::Write;
use std::path::Path;

use clap::Subcommand;
use serde_json::Value;

use super::execute;
use crate::config::Config;
use crate::ops::{Command, MAX_EXPORT_PAGE, parse_duration};
use crate::protocol::now_ms;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and report the first break, if any.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Write records as JSON lines to standard output, oldest first.
    Export {
        /// Only records this recent (24h, 7d) or since a date (2026-12-01).
        #[arg(long)]
        since: Option<String>,
        /// Only one tenant's records: its name or id (a deleted tenant's by id).
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub fn run(config: &Config, command: AuditCommand) -> Result<(), String> {
    match command {
        AuditCommand::Verify { json } => {
            let report = execute(config, Command::AuditVerify)?;
            if json {
                say!("{report}");
            } else if report["ok"] == true {
                // Retention moves the start: say so, or a shorter log goes unnoticed.
                let from = match report["fromSeq"].as_u64() {
                    Some(0) | None => "from the start".to_owned(),
                    Some(seq) => format!("from the retention checkpoint at sequence {seq}"),
                };
                say!(
                    "audit log intact: {} records checked {from}, up to sequence {}; head hash {}",
                    report["records"],
                    report["headSeq"],
                    report["headHash"].as_str().unwrap_or("")
                );
            } else {
                let found = &report["firstBreak"];
                return Err(format!(
                    "audit log broken at sequence {}: {}",
                    found["seq"],
                    found["reason"].as_str().unwrap_or("")
                ));
            }
            if report["ok"] != true {
                return Err("audit log broken".into());
            }
            Ok(())
        }
        AuditCommand::Export { since, tenant } => {
            let since_ms = since.as_deref().map(parse_since).transpose()?;
            let mut out = std::io::stdout().lock();
            let mut from = 1;
            let mut written = 0usize;
            let mut unreadable = Vec::new();
            loop {
                let command = Command::AuditExport {
                    from,
                    limit: MAX_EXPORT_PAGE,
                    tenant: tenant.clone(),
                    since_ms,
                };
                let page = execute(config, command)?;
                for record in page["records"].as_array().into_iter().flatten() {
                    if let Err(e) = writeln!(out, "{record}") {
                        super::output_failed(&e);
                    }
                    written += 1;
                }
                let skipped = page["unreadable"].as_array().into_iter().flatten();
                unreadable.extend(skipped.filter_map(Value::as_u64));
                match page["next"].as_u64() {
                    Some(next) => from = next,
                    None => break,
                }
            }
            if written == 0 && unreadable.is_empty() {
                eprintln!("no audit records matched");
            }
            match unreadable.as_slice() {
                [] => Ok(()),
                seqs => {
                    let mut named: Vec<String> = seqs.iter().take(10).map(u64::to_string).collect();
                    if seqs.len() > 10 {
                        named.push("…".into());
                    }
                    Err(format!(
                        "{} unreadable audit record(s) left out: sequence {} \
                         (run `keyri audit verify`)",
                        seqs.len(),
                        named.join(", ")
                    ))
                }
            }
        }
    }
}

pub fn backup(config: &Config, file: &Path) -> Result<(), String> {
    // The running server resolves paths from its own directory: send it an
    // absolute one.
    let path = std::path::absolute(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let done = execute(config, Command::Backup { path })?;
    say!("backup written to {} ({} rows)", file.display(), done["rows"]);
    Ok(())
}

/// `24h`-style ages, or a `YYYY-MM-DD` date (UTC midnight), as Unix ms.
fn parse_since(text: &str) -> Result<i64, String> {
    if let Some(ms) = parse_date(text) {
        return Ok(ms);
    }
    let secs = parse_duration(text)
        .map_err(|_| format!("--since {text:?}: use an age such as 24h or a date 2026-12-01"))?;
    let ms = i64::try_from(secs).ok().and_then(|s| s.checked_mul(1000));
    // An age older than the clock itself means everything.
    Ok(ms.map_or(i64::MIN, |ms| now_ms().saturating_sub(ms)))
}

fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&m) || !(1..=days).contains(&d) {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after H. Hinnant.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ages_parse_and_garbage_does_not() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-12-04"), Some(1_796_342_400_000));
        assert_eq!(parse_date("2000-03-01"), Some(951_868_800_000));
        assert!(parse_date("2026-13-01").is_none());
        assert!(parse_date("2026-02-29").is_none());
        assert!(parse_date("2026-04-31").is_none());
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800_000));
        assert!(parse_date("26-12-01").is_none());
        let day_ago = parse_since("24h").expect("age");
        assert!((now_ms() - day_ago - 86_400_000).abs() < 1000);
        assert!(parse_since("yesterday").is_err());
    }
}
