//! Web Vitals: `performance_metrics` rows from the existing front end's
//! payload or from the `Metric` objects the `web-vitals` library (v4 to v6)
//! hands its callback, sent as they are, one or an array.
//!
//! - The metric is `metricName` or `name`: CLS, FCP, INP, LCP or TTFB (FID
//!   left the library in v5 and is refused).
//! - A missing `rating` is computed with the library's thresholds.
//! - The session is `sessionId` (body or `?sessionId=`), else the metric's
//!   page-load `id`: a `Metric` sent as is carries no session.
//! - web-vitals reports a metric again as it changes (CLS and INP on
//!   visibility change, all of them with `reportAllChanges`), with the same
//!   `id`; the row is keyed on that id, so the latest report replaces the
//!   earlier one instead of counting twice.
//!
//! Thresholds: <https://web.dev/articles/vitals>, as in web-vitals'
//! `*Thresholds` exports.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use deadpool_postgres::GenericClient;
use platform::{ApiError, clock};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    client::{ClientContext, MAX_URL_CHARS},
    device::{self, Device},
    fields::{MAX_SESSION_ID_CHARS, MAX_USER_ID_CHARS, derived_id, text},
};

pub const MAX_METRICS_PER_REQUEST: usize = 50;
const MAX_LABEL_CHARS: usize = 64;
/// Ten minutes: no page takes longer to paint or answer and still reports.
const MAX_MILLISECONDS: f64 = 600_000.0;
/// Layout shift scores above this are not a page, they are a bug.
const MAX_CLS: f64 = 100.0;

/// (good up to, poor above) per metric.
fn thresholds(metric: &str) -> Option<(f64, f64)> {
    Some(match metric {
        "LCP" => (2500.0, 4000.0),
        "FCP" => (1800.0, 3000.0),
        "INP" => (200.0, 500.0),
        "TTFB" => (800.0, 1800.0),
        "CLS" => (0.1, 0.25),
        _ => return None,
    })
}

pub fn rating(metric: &str, value: f64) -> Option<&'static str> {
    let (good, poor) = thresholds(metric)?;
    Some(if value <= good {
        "good"
    } else if value <= poor {
        "needs-improvement"
    } else {
        "poor"
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewMetric {
    pub id: String,
    pub metric_name: String,
    pub value: f64,
    pub rating: String,
    pub url: String,
    pub user_id: Option<String>,
    pub session_id: String,
    pub device: Device,
    pub connection_type: Option<String>,
    pub timestamp: NaiveDateTime,
}

fn one(
    item: &Map<String, Value>,
    path: &dyn Fn(&str) -> String,
    query_session: Option<&str>,
    client: &ClientContext,
    now: DateTime<Utc>,
) -> Result<NewMetric, ApiError> {
    let name_key = if item.contains_key("metricName") {
        "metricName"
    } else {
        "name"
    };
    let raw_name = text(item, name_key, &path(name_key), 16, true)?.unwrap_or_default();
    let metric_name = raw_name.to_ascii_uppercase();
    if thresholds(&metric_name).is_none() {
        return Err(ApiError::invalid_field(
            path(name_key),
            format!("must be one of CLS, FCP, INP, LCP, TTFB; {raw_name:?} is not"),
        ));
    }
    let value = item
        .get("value")
        .and_then(Value::as_f64)
        .ok_or_else(|| ApiError::invalid_field(path("value"), "must be a number"))?;
    let max = if metric_name == "CLS" {
        MAX_CLS
    } else {
        MAX_MILLISECONDS
    };
    if !value.is_finite() || value < 0.0 || value > max {
        return Err(ApiError::invalid_field(
            path("value"),
            format!("must be between 0 and {max} for {metric_name}"),
        ));
    }
    let rating = match text(item, "rating", &path("rating"), 32, false)? {
        Some(r @ ("good" | "needs-improvement" | "poor")) => r.to_owned(),
        Some(other) => {
            return Err(ApiError::invalid_field(
                path("rating"),
                format!("must be good, needs-improvement or poor, not {other:?}"),
            ));
        }
        None => rating(&metric_name, value).unwrap_or("poor").to_owned(),
    };
    let metric_id = text(item, "id", &path("id"), 128, false)?;
    let session_id = text(
        item,
        "sessionId",
        &path("sessionId"),
        MAX_SESSION_ID_CHARS,
        false,
    )?
    .or(query_session)
    .or(metric_id)
    .ok_or_else(|| {
        ApiError::invalid_field(
            path("sessionId"),
            "is required (or ?sessionId=, or the metric's id)",
        )
    })?;
    let url = text(item, "url", &path("url"), MAX_URL_CHARS, false)?
        .map(str::to_owned)
        .or_else(|| client.page.clone())
        .ok_or_else(|| {
            ApiError::invalid_field(path("url"), "is required when the request has no Referer")
        })?;
    let label = |key: &str| {
        text(item, key, &path(key), MAX_LABEL_CHARS, false).map(|v| v.map(str::to_owned))
    };
    let device = match client.user_agent.as_deref().map(device::parse) {
        Some(parsed) if parsed.browser.is_some() => parsed,
        _ => Device {
            device_type: label("deviceType")?,
            browser: label("browser")?,
            browser_version: label("browserVersion")?,
            os: label("os")?,
        },
    };
    let id = match metric_id {
        Some(metric_id) => derived_id(
            None,
            format!("vital\0{session_id}\0{metric_name}\0{metric_id}").as_bytes(),
        ),
        None => platform::ids::new_id(),
    };
    Ok(NewMetric {
        id,
        metric_name,
        value,
        rating,
        url,
        user_id: text(item, "userId", &path("userId"), MAX_USER_ID_CHARS, false)?
            .map(str::to_owned),
        session_id: session_id.to_owned(),
        device,
        connection_type: label("connectionType")?,
        timestamp: clock::to_db_timestamp(now),
    })
}

/// The request bodies [`parse_metrics`] reads, for the API description.
pub mod wire {
    use serde::Deserialize;
    use utoipa::ToSchema;

    /// One metric, or an array of 1 to 50.
    #[derive(Deserialize, ToSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub enum VitalsRequest {
        One(Box<Metric>),
        Many(Vec<Metric>),
    }

    /// The existing front end's payload, or a `web-vitals` `Metric` sent as
    /// it is (its `entries` and `attribution` are ignored).
    #[derive(Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    pub struct Metric {
        /// The front end's name for `name`; one of the two is required.
        metric_name: Option<MetricName>,
        /// web-vitals' name for `metricName`.
        name: Option<MetricName>,
        /// Milliseconds (0 to 600,000), or the CLS score (0 to 100).
        #[schema(minimum = 0, maximum = 600000)]
        value: f64,
        /// Computed with the library's thresholds when absent.
        rating: Option<Rating>,
        /// web-vitals' page-load id: a later report with the same id replaces
        /// the earlier one.
        #[schema(max_length = 128)]
        id: Option<String>,
        /// Else `?sessionId=`, else `id`.
        #[schema(max_length = 128)]
        session_id: Option<String>,
        #[schema(max_length = 128)]
        user_id: Option<String>,
        /// Else the `Referer` header; one of the two is required.
        #[schema(max_length = 2048)]
        url: Option<String>,
        device_type: Option<String>,
        browser: Option<String>,
        browser_version: Option<String>,
        os: Option<String>,
        connection_type: Option<String>,
        delta: Option<f64>,
        navigation_type: Option<String>,
    }

    /// The metrics web-vitals reports (FID left it in v5 and is refused);
    /// any letter case is read.
    #[derive(Deserialize, ToSchema)]
    #[allow(clippy::upper_case_acronyms, dead_code)]
    pub enum MetricName {
        CLS,
        FCP,
        INP,
        LCP,
        TTFB,
    }

    #[derive(Deserialize, ToSchema)]
    #[serde(rename_all = "kebab-case")]
    #[allow(dead_code)]
    pub enum Rating {
        Good,
        NeedsImprovement,
        Poor,
    }
}

/// Validates one metric or an array of them, naming the first bad field.
pub fn parse_metrics(
    body: &Value,
    query_session: Option<&str>,
    client: &ClientContext,
    now: DateTime<Utc>,
) -> Result<Vec<NewMetric>, ApiError> {
    let metrics = match body {
        Value::Object(item) => vec![one(
            item,
            &|k: &str| k.to_owned(),
            query_session,
            client,
            now,
        )?],
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_METRICS_PER_REQUEST {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    format!("send 1 to {MAX_METRICS_PER_REQUEST} metrics per request"),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let item = item.as_object().ok_or_else(|| {
                        ApiError::invalid_field(format!("[{i}]"), "must be an object")
                    })?;
                    one(
                        item,
                        &|k: &str| format!("[{i}].{k}"),
                        query_session,
                        client,
                        now,
                    )
                })
                .collect::<Result<_, _>>()?
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "the body must be a metric object or an array of them",
            ));
        }
    };
    // A request may repeat a metric as it changed; the last report wins
    // (and one statement may not update a row twice).
    let mut last: HashMap<String, NewMetric> = HashMap::new();
    let mut order = Vec::new();
    for metric in metrics {
        if !last.contains_key(&metric.id) {
            order.push(metric.id.clone());
        }
        last.insert(metric.id.clone(), metric);
    }
    Ok(order
        .into_iter()
        .filter_map(|id| last.remove(&id))
        .collect())
}

/// What a request of Web Vitals stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = VitalsRecorded)]
pub struct Recorded {
    pub received: usize,
    pub stored: usize,
}

pub async fn store(
    client: &impl GenericClient,
    metrics: &[NewMetric],
) -> Result<u64, tokio_postgres::Error> {
    let col =
        |f: fn(&NewMetric) -> Option<&str>| metrics.iter().map(f).collect::<Vec<Option<&str>>>();
    let ids = col(|m| Some(m.id.as_str()));
    let names = col(|m| Some(m.metric_name.as_str()));
    let values: Vec<f64> = metrics.iter().map(|m| m.value).collect();
    let ratings = col(|m| Some(m.rating.as_str()));
    let urls = col(|m| Some(m.url.as_str()));
    let users = col(|m| m.user_id.as_deref());
    let sessions = col(|m| Some(m.session_id.as_str()));
    let devices = col(|m| m.device.device_type.as_deref());
    let browsers = col(|m| m.device.browser.as_deref());
    let versions = col(|m| m.device.browser_version.as_deref());
    let systems = col(|m| m.device.os.as_deref());
    let connections = col(|m| m.connection_type.as_deref());
    let stamps: Vec<NaiveDateTime> = metrics.iter().map(|m| m.timestamp).collect();
    let statement = client
        .prepare_cached(
            r#"INSERT INTO "performance_metrics" ("id", "metricName", "value", "rating", "url", "userId", "sessionId",
                   "deviceType", "browser", "browserVersion", "os", "connectionType", "timestamp")
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::text[], $5::text[], $6::text[], $7::text[],
                   $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamp[])
               ON CONFLICT ("id") DO UPDATE SET "value" = EXCLUDED."value", "rating" = EXCLUDED."rating", "timestamp" = EXCLUDED."timestamp""#,
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &ids,
                &names,
                &values,
                &ratings,
                &urls,
                &users,
                &sessions,
                &devices,
                &browsers,
                &versions,
                &systems,
                &connections,
                &stamps,
            ],
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_follow_the_library_thresholds_at_their_edges() {
        let cases = [
            ("LCP", 2500.0, "good"),
            ("LCP", 2500.1, "needs-improvement"),
            ("LCP", 4000.0, "needs-improvement"),
            ("LCP", 4000.1, "poor"),
            ("FCP", 1800.0, "good"),
            ("FCP", 3001.0, "poor"),
            ("INP", 200.0, "good"),
            ("INP", 500.0, "needs-improvement"),
            ("INP", 501.0, "poor"),
            ("TTFB", 800.0, "good"),
            ("TTFB", 1800.5, "poor"),
            ("CLS", 0.1, "good"),
            ("CLS", 0.25, "needs-improvement"),
            ("CLS", 0.26, "poor"),
        ];
        for (metric, value, expected) in cases {
            assert_eq!(rating(metric, value), Some(expected), "{metric} {value}");
        }
    }

    #[test]
    fn fid_is_not_a_metric_any_more() {
        assert_eq!(rating("FID", 10.0), None);
    }
}
