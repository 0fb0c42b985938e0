//! Observed fares (`bundle.observed_fares`), what the price model learns
//! from: synced from visitors' fare events, or imported from CSV.
//!
//! A fare event is an `analytics_events` row of type `results_view` or
//! `fare_observed` whose `eventData` holds
//! `{"origin": "LHR", "destination": "JFK", "departDate": "2026-12-24",
//! "returnDate": "2027-01-02" (optional, or null), "price": 412.5,
//! "currency": "EUR"}`: IATA codes of three letters (any case), ISO dates,
//! a positive number below 1,000,000 and a three-letter currency code;
//! other fields are ignored. The event's `timestamp` is when the fare was
//! seen. An event that does not match is skipped and counted, never fails
//! the run: the data comes from visitors' browsers.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::GenericClient;

/// The event types that carry a fare.
pub const FARE_EVENT_TYPES: &[&str] = &["results_view", "fare_observed"];
/// How far before its watermark a scheduled sync reads again: events that
/// arrive late (a browser's retry, a queued beacon) with an earlier
/// timestamp are picked up; the events' ids keep them from counting twice.
pub const LATE_EVENTS: Duration = Duration::hours(48);
/// Events read per query.
const BATCH: i64 = 5_000;
/// New events (at or after the watermark) read per event type by one run at
/// most: a first run over years of `results_view` events would not end
/// within the jobs function's 300 s, and the watermark moves only at the
/// end of a run. The next run goes on from where this one stopped.
pub const MAX_NEW_EVENTS_PER_RUN: usize = 500_000;
/// Highest price taken: anything above is a typo or a unit mistake.
const MAX_PRICE: f64 = 1_000_000.0;
/// Most data lines one import takes.
pub const MAX_IMPORT_LINES: usize = 500_000;

/// A fare checked and ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedFare {
    pub origin: String,
    pub destination: String,
    pub depart_date: NaiveDate,
    pub return_date: Option<NaiveDate>,
    pub price: f64,
    pub currency: String,
    pub observed_at: NaiveDateTime,
}

/// The field at fault and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldFault {
    pub field: &'static str,
    pub rule: &'static str,
}

fn fault(field: &'static str, rule: &'static str) -> FieldFault {
    FieldFault { field, rule }
}

fn airport(field: &'static str, text: Option<&str>) -> Result<String, FieldFault> {
    let code = text.map(str::trim).unwrap_or_default().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(fault(field, "must be a three-letter IATA code"))
    }
}

fn date(field: &'static str, text: Option<&str>) -> Result<NaiveDate, FieldFault> {
    text.and_then(|t| NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").ok())
        .filter(|d| (1970..=9999).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| fault(field, "must be a YYYY-MM-DD date"))
}

fn price(value: Option<f64>) -> Result<f64, FieldFault> {
    value
        .filter(|p| p.is_finite() && *p > 0.0 && *p < MAX_PRICE)
        .ok_or_else(|| fault("price", "must be a number above 0 and below 1000000"))
}

fn currency(text: Option<&str>) -> Result<String, FieldFault> {
    let code = text.map(str::trim).unwrap_or_default().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(fault("currency", "must be a three-letter currency code"))
    }
}

/// Checks a fare's parts; `return_date` empty means one-way.
fn check(
    origin: Option<&str>,
    destination: Option<&str>,
    depart_date: Option<&str>,
    return_date: Option<&str>,
    amount: Option<f64>,
    money: Option<&str>,
    observed_at: NaiveDateTime,
) -> Result<ObservedFare, FieldFault> {
    let origin = airport("origin", origin)?;
    let destination = airport("destination", destination)?;
    if origin == destination {
        return Err(fault("destination", "must differ from origin"));
    }
    let depart_date = date("departDate", depart_date)?;
    if depart_date < observed_at.date() {
        return Err(fault("departDate", "must not be before the fare was seen"));
    }
    let return_date = match return_date.map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => Some(date("returnDate", Some(text))?),
    };
    if return_date.is_some_and(|r| r < depart_date) {
        return Err(fault("returnDate", "must not be before departDate"));
    }
    Ok(ObservedFare {
        origin,
        destination,
        depart_date,
        return_date,
        price: price(amount)?,
        currency: currency(money)?,
        observed_at,
    })
}

/// A fare event's data, or why it is not one.
pub fn from_event(data: &Value, observed_at: NaiveDateTime) -> Result<ObservedFare, FieldFault> {
    if !data.is_object() {
        return Err(fault("eventData", "must be an object"));
    }
    let text = |key: &str| data.get(key).and_then(Value::as_str);
    let return_date = match data.get("returnDate") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(fault("returnDate", "must be a YYYY-MM-DD date")),
    };
    check(
        text("origin"),
        text("destination"),
        text("departDate"),
        return_date,
        data.get("price").and_then(Value::as_f64),
        text("currency"),
        observed_at,
    )
}

/// Stores `fares` (one statement), skipping event ids already stored and,
/// for imports, fares identical to one imported before. Returns the count
/// inserted.
async fn insert(
    client: &impl GenericClient,
    fares: &[ObservedFare],
    source: &str,
    event_ids: Option<&[String]>,
) -> Result<u64, tokio_postgres::Error> {
    if fares.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = fares.iter().map(|_| platform::ids::new_id()).collect();
    let origins: Vec<&str> = fares.iter().map(|f| f.origin.as_str()).collect();
    let destinations: Vec<&str> = fares.iter().map(|f| f.destination.as_str()).collect();
    let departs: Vec<NaiveDate> = fares.iter().map(|f| f.depart_date).collect();
    let returns: Vec<Option<NaiveDate>> = fares.iter().map(|f| f.return_date).collect();
    let prices: Vec<f64> = fares.iter().map(|f| f.price).collect();
    let currencies: Vec<&str> = fares.iter().map(|f| f.currency.as_str()).collect();
    let observed: Vec<NaiveDateTime> = fares.iter().map(|f| f.observed_at).collect();
    let event_ids: Vec<Option<&str>> = match event_ids {
        Some(ids) => ids.iter().map(|i| Some(i.as_str())).collect(),
        None => vec![None; fares.len()],
    };
    // An import run twice must not count its fares twice: the same fare
    // (all columns) imported before is skipped, found by the index on
    // (origin, destination, departDate, observedAt).
    client
        .execute(
            r#"INSERT INTO "bundle"."observed_fares" ("id", "origin", "destination", "departDate",
                   "returnDate", "price", "currency", "observedAt", "source", "eventId")
               SELECT f.id, f.origin, f.destination, f.depart, f.back, f.price, f.currency, f.observed, $10, f.event
               FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[], $6::float8[],
                           $7::text[], $8::timestamp[], $9::text[])
                    AS f(id, origin, destination, depart, back, price, currency, observed, event)
               WHERE $10 <> 'import' OR NOT EXISTS (
                   SELECT 1 FROM "bundle"."observed_fares" o
                   WHERE o."origin" = f.origin AND o."destination" = f.destination
                     AND o."departDate" = f.depart AND o."observedAt" = f.observed
                     AND o."returnDate" IS NOT DISTINCT FROM f.back AND o."price" = f.price
                     AND o."currency" = f.currency AND o."source" = 'import')
               ON CONFLICT ("eventId") DO NOTHING"#,
            &[
                &ids,
                &origins,
                &destinations,
                &departs,
                &returns,
                &prices,
                &currencies,
                &observed,
                &event_ids,
                &source,
            ],
        )
        .await
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    #[serde(serialize_with = "iso")]
    pub from: NaiveDateTime,
    #[serde(serialize_with = "iso")]
    pub to: NaiveDateTime,
    /// Fare events read.
    pub events: u64,
    /// New fares stored (events stored by an earlier run are not).
    pub inserted: u64,
    /// Events skipped, by the field at fault.
    pub malformed: BTreeMap<String, u64>,
    /// Whether the watermark moved (a scheduled run, not a backfill).
    pub watermark_moved: bool,
    /// The run stopped at its limit of new events before `to`: run it again
    /// (a scheduled run goes on from its watermark; a backfill starts over,
    /// storing nothing twice).
    pub more: bool,
}

fn iso<S: serde::Serializer>(at: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// Which events a sync reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncWindow {
    /// From the watermark (less [`LATE_EVENTS`]) to now; moves the watermark.
    Scheduled,
    /// `[from, to)`; leaves the watermark.
    Backfill {
        from: NaiveDateTime,
        to: NaiveDateTime,
    },
}

/// Copies fare events into `bundle.observed_fares`. Rerunning a window
/// stores nothing twice (the event id is unique).
pub async fn sync(
    client: &mut deadpool_postgres::Client,
    window: SyncWindow,
) -> anyhow::Result<SyncReport> {
    sync_at_most(client, window, MAX_NEW_EVENTS_PER_RUN).await
}

/// [`sync`], reading at most `max_new_events` events of each type at or
/// after the watermark (the re-read late-event overlap before it does not
/// count, so that each run gets further than the one before).
pub async fn sync_at_most(
    client: &mut deadpool_postgres::Client,
    window: SyncWindow,
    max_new_events: usize,
) -> anyhow::Result<SyncReport> {
    let now = platform::clock::now_millis();
    let max_new_events = max_new_events.max(1);
    let mut fresh_from = None;
    let (from, to, scheduled) = match window {
        SyncWindow::Backfill { from, to } => (from, to, false),
        SyncWindow::Scheduled => {
            let watermark: Option<NaiveDateTime> = client
                .query_opt(
                    r#"SELECT "syncedUntil" FROM "bundle"."fare_sync_watermark""#,
                    &[],
                )
                .await?
                .map(|row| row.get(0));
            fresh_from = watermark;
            let from = watermark.map_or(chrono::DateTime::UNIX_EPOCH.naive_utc(), |w| {
                w - LATE_EVENTS
            });
            (from, now, true)
        }
    };
    let mut report = SyncReport {
        from,
        to,
        ..SyncReport::default()
    };
    // Where the watermark may move: `to`, or where a type's read stopped.
    let mut reached = to;
    for event_type in FARE_EVENT_TYPES {
        let mut after: Option<(NaiveDateTime, String)> = None;
        let mut new_events = 0usize;
        loop {
            let (after_time, after_id) = after.clone().unzip();
            let batch = i64::try_from(max_new_events - new_events)
                .unwrap_or(BATCH)
                .clamp(1, BATCH);
            // By the index on ("eventType", "timestamp"), in its order.
            let rows = client
                .query(
                    r#"SELECT "id", "eventData", "timestamp" FROM "analytics_events"
                       WHERE "eventType" = $1 AND "timestamp" >= $2 AND "timestamp" < $3
                         AND ($4::timestamp IS NULL OR ("timestamp", "id") > ($4, $5))
                       ORDER BY "timestamp", "id" LIMIT $6"#,
                    &[event_type, &from, &to, &after_time, &after_id, &batch],
                )
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.get(2), last.get(0)));
            new_events += rows
                .iter()
                .filter(|row| fresh_from.is_none_or(|mark| row.get::<_, NaiveDateTime>(2) >= mark))
                .count();
            let mut fares = Vec::with_capacity(rows.len());
            let mut ids = Vec::with_capacity(rows.len());
            for row in &rows {
                let data: Value = row.get(1);
                match from_event(&data, row.get(2)) {
                    Ok(fare) => {
                        fares.push(fare);
                        ids.push(row.get::<_, String>(0));
                    }
                    Err(fault) => {
                        *report.malformed.entry(fault.field.to_owned()).or_default() += 1;
                    }
                }
            }
            report.events += rows.len() as u64;
            report.inserted += insert(&***client, &fares, "event", Some(&ids)).await?;
            if i64::try_from(rows.len()).unwrap_or(i64::MAX) < batch {
                break;
            }
            if new_events >= max_new_events {
                report.more = true;
                reached = reached.min(last.get(2));
                break;
            }
        }
    }
    if scheduled {
        client
            .execute(
                r#"INSERT INTO "bundle"."fare_sync_watermark" ("singleton", "syncedUntil", "updatedAt")
                   VALUES (true, $1, $2)
                   ON CONFLICT ("singleton") DO UPDATE SET "syncedUntil" = greatest(
                       "bundle"."fare_sync_watermark"."syncedUntil", excluded."syncedUntil"),
                       "updatedAt" = excluded."updatedAt""#,
                &[&reached, &now],
            )
            .await?;
        report.watermark_moved = true;
    }
    let malformed: u64 = report.malformed.values().sum();
    if malformed > 0 {
        tracing::warn!(malformed, faults = ?report.malformed, "fare events skipped");
    }
    Ok(report)
}

/// A refused import: nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
pub enum ImportError {
    #[error("the CSV has no header line; expected {expected}")]
    NoHeader { expected: &'static str },
    #[error("the header must be {expected}, found {found}")]
    WrongHeader {
        expected: &'static str,
        found: String,
    },
    #[error("more than {max} data lines; split the file")]
    TooLong { max: usize },
    #[error("{count} line(s) refused, nothing imported: {}", first_lines(.lines))]
    Lines { count: usize, lines: Vec<LineError> },
}

/// A data line's fault (lines count from 1, the header being line 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub field: String,
    pub rule: String,
}

/// The first refusals, for the message; all are in `lines`.
fn first_lines(lines: &[LineError]) -> String {
    let mut text: Vec<String> = lines
        .iter()
        .take(20)
        .map(|l| format!("line {}: {} {}", l.line, l.field, l.rule))
        .collect();
    if lines.len() > 20 {
        text.push(format!("and {} more", lines.len() - 20));
    }
    text.join("; ")
}

pub const CSV_HEADER: &str = "origin,destination,departDate,returnDate,price,currency,observedAt";
const CSV_COLUMNS: [&str; 7] = [
    "origin",
    "destination",
    "departDate",
    "returnDate",
    "price",
    "currency",
    "observedAt",
];
/// Line errors listed at most (the count stays exact).
const MAX_LISTED_LINE_ERRORS: usize = 1_000;

/// Reads a fares CSV: every line must be valid, or none is taken.
pub fn parse_csv(text: &str) -> Result<Vec<ObservedFare>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        _ => {
            return Err(ImportError::NoHeader {
                expected: CSV_HEADER,
            });
        }
    };
    if header.iter().collect::<Vec<_>>() != CSV_COLUMNS {
        return Err(ImportError::WrongHeader {
            expected: CSV_HEADER,
            found: header.iter().collect::<Vec<_>>().join(","),
        });
    }
    let mut fares = Vec::new();
    let mut errors = Vec::new();
    let mut count = 0usize;
    let mut refuse = |line: u64, field: &str, rule: &str| {
        count += 1;
        if errors.len() < MAX_LISTED_LINE_ERRORS {
            errors.push(LineError {
                line,
                field: field.to_owned(),
                rule: rule.to_owned(),
            });
        }
    };
    for (index, record) in records.enumerate() {
        if index >= MAX_IMPORT_LINES {
            return Err(ImportError::TooLong {
                max: MAX_IMPORT_LINES,
            });
        }
        let line = index as u64 + 2;
        let record = match record {
            Ok(record) => record,
            Err(_) => {
                refuse(line, "line", "is not valid CSV");
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != CSV_COLUMNS.len() {
            refuse(line, "line", "must have 7 columns");
            continue;
        }
        let observed_at = match crate::analytics::range::instant("observedAt", record.get(6)) {
            Ok(at) => at,
            Err(_) => {
                refuse(
                    line,
                    "observedAt",
                    "must be an RFC 3339 instant or a YYYY-MM-DD date",
                );
                continue;
            }
        };
        let amount = match record.get(4).map(str::parse::<f64>) {
            Some(Ok(amount)) => Some(amount),
            _ => None,
        };
        match check(
            record.get(0),
            record.get(1),
            record.get(2),
            record.get(3),
            amount,
            record.get(5),
            observed_at,
        ) {
            Ok(fare) => fares.push(fare),
            Err(fault) => refuse(line, fault.field, fault.rule),
        }
    }
    if count > 0 {
        return Err(ImportError::Lines {
            count,
            lines: errors,
        });
    }
    Ok(fares)
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Data lines read.
    pub lines: usize,
    /// Fares stored.
    pub imported: u64,
    /// Fares identical to ones imported before, not stored again.
    pub already_imported: u64,
}

/// Imports a fares CSV in one transaction: all its lines or none.
pub async fn import(
    client: &mut deadpool_postgres::Client,
    text: &str,
) -> anyhow::Result<Result<ImportReport, ImportError>> {
    let fares = match parse_csv(text) {
        Ok(fares) => fares,
        Err(refused) => return Ok(Err(refused)),
    };
    let tx = client.transaction().await?;
    let mut imported = 0;
    for chunk in fares.chunks(5_000) {
        imported += insert(&*tx, chunk, "import", None).await?;
    }
    tx.commit().await?;
    Ok(Ok(ImportReport {
        lines: fares.len(),
        imported,
        already_imported: fares.len() as u64 - imported,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seen() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .expect("time")
    }

    #[test]
    fn a_fare_event_is_read_with_codes_in_capitals_and_an_optional_return() {
        let fare = from_event(
            &json!({"origin": "lhr", "destination": "JFK", "departDate": "2026-12-24",
                    "returnDate": null, "price": 412.5, "currency": "eur", "country": "GB"}),
            seen(),
        )
        .expect("valid");
        assert_eq!(
            (
                fare.origin.as_str(),
                fare.destination.as_str(),
                fare.currency.as_str()
            ),
            ("LHR", "JFK", "EUR")
        );
        assert_eq!(fare.return_date, None);
        assert_eq!(fare.price, 412.5);
    }

    #[test]
    fn a_malformed_fare_event_names_the_field_at_fault() {
        let base = json!({"origin": "LHR", "destination": "JFK", "departDate": "2026-12-24",
                          "price": 412.5, "currency": "EUR"});
        let faulty = |key: &str, value: Value| {
            let mut data = base.clone();
            data[key] = value;
            from_event(&data, seen()).map(|_| ()).map_err(|f| f.field)
        };
        assert_eq!(faulty("origin", json!("LONDON")), Err("origin"));
        assert_eq!(faulty("destination", json!("LHR")), Err("destination"));
        assert_eq!(faulty("departDate", json!("24/12/2026")), Err("departDate"));
        assert_eq!(faulty("departDate", json!("2026-11-30")), Err("departDate"));
        assert_eq!(faulty("returnDate", json!("2026-12-20")), Err("returnDate"));
        assert_eq!(faulty("returnDate", json!(5)), Err("returnDate"));
        assert_eq!(faulty("price", json!("412")), Err("price"));
        assert_eq!(faulty("price", json!(-1)), Err("price"));
        assert_eq!(faulty("currency", json!("euro")), Err("currency"));
        assert_eq!(
            from_event(&json!([1, 2]), seen()).map_err(|f| f.field),
            Err("eventData")
        );
    }

    #[test]
    fn a_csv_with_one_bad_line_is_refused_whole_with_every_bad_line_named() {
        let csv = format!(
            "{CSV_HEADER}\nLHR,JFK,2026-12-24,,412.5,EUR,2026-12-01\nLHR,JFK,2026-12-24,,abc,EUR,2026-12-01\nLHR,XX,2026-12-24,2027-01-02,412.5,EUR,2026-12-01T10:00:00Z\n"
        );
        let Err(ImportError::Lines { count, lines }) = parse_csv(&csv) else {
            panic!("refused");
        };
        assert_eq!(count, 2);
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.line, l.field.as_str()))
                .collect::<Vec<_>>(),
            [(3, "price"), (4, "destination")]
        );
    }

    #[test]
    fn a_csv_needs_the_documented_header() {
        assert!(matches!(
            parse_csv("from,to\nLHR,JFK"),
            Err(ImportError::WrongHeader { .. })
        ));
        assert!(matches!(parse_csv(""), Err(ImportError::NoHeader { .. })));
    }

    #[test]
    fn a_valid_csv_reads_every_line() {
        let csv = format!(
            "{CSV_HEADER}\nLHR,JFK,2026-12-24,,412.5,EUR,2026-12-01\n\ncdg,bcn,2027-01-10,2027-01-14,99,eur,2026-12-02T08:30:00+01:00\n"
        );
        let fares = parse_csv(&csv).expect("valid");
        assert_eq!(fares.len(), 2);
        assert_eq!(fares[1].origin, "CDG");
        assert_eq!(
            fares[1].observed_at,
            NaiveDate::from_ymd_opt(2026, 12, 2)
                .and_then(|d| d.and_hms_opt(7, 30, 0))
                .expect("time")
        );
    }
}
