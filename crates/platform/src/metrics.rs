//! Metrics without an SDK: lines in CloudWatch's Embedded Metric Format
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>)
//! on stdout, which CloudWatch Logs turns into metrics of the namespace
//! [`NAMESPACE`], by function. No API call, no credential, no latency: a
//! line in the function's own log stream.
//!
//! Only where `METRICS=emf` (the template sets it): tests, benchmarks and
//! local runs print nothing.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The namespace of every metric of the bundle.
pub const NAMESPACE: &str = "TravelDeals";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// One value of one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: Unit,
}

impl Metric {
    pub fn count(name: &'static str, value: usize) -> Self {
        Self {
            name,
            value: value as f64,
            unit: Unit::Count,
        }
    }

    pub fn millis(name: &'static str, elapsed: std::time::Duration) -> Self {
        Self {
            name,
            value: elapsed.as_secs_f64() * 1000.0,
            unit: Unit::Milliseconds,
        }
    }
}

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("METRICS").is_ok_and(|v| v == "emf"))
}

/// Records `metrics` of `function`, by the dimension `Function` and, when
/// given, `(name, value)` of one more (a service, a route).
pub fn emit(function: &str, dimension: Option<(&str, &str)>, metrics: &[Metric]) {
    if enabled() && !metrics.is_empty() {
        println!("{}", render(function, dimension, metrics, now_millis()));
    }
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The EMF line: the values as members, and the `_aws` metadata naming
/// them as metrics.
fn render(
    function: &str,
    dimension: Option<(&str, &str)>,
    metrics: &[Metric],
    timestamp: i64,
) -> String {
    let mut dimensions = vec!["Function"];
    let mut line = Map::new();
    line.insert("Function".into(), Value::from(function));
    if let Some((name, value)) = dimension {
        dimensions.push(name);
        line.insert(name.into(), Value::from(value));
    }
    for metric in metrics {
        line.insert(metric.name.into(), json!(metric.value));
    }
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
        .collect();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_embedded_metric_format_with_the_function_dimension() {
        let line = render(
            "events",
            None,
            &[
                Metric::count("EventsStored", 50),
                Metric::count("Http5xx", 0),
            ],
            1_764_500_000_000,
        );
        let parsed: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(parsed["Function"], "events");
        assert_eq!(parsed["EventsStored"], 50.0);
        let definition = &parsed["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(definition["Namespace"], NAMESPACE);
        assert_eq!(definition["Dimensions"], json!([["Function"]]));
        assert_eq!(
            definition["Metrics"],
            json!([{"Name": "EventsStored", "Unit": "Count"}, {"Name": "Http5xx", "Unit": "Count"}])
        );
        assert_eq!(parsed["_aws"]["Timestamp"], 1_764_500_000_000_i64);
    }

    #[test]
    fn a_second_dimension_is_named_and_set() {
        let line = render(
            "health",
            Some(("Service", "database")),
            &[Metric::count("HealthCheckDown", 1)],
            0,
        );
        let parsed: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(parsed["Service"], "database");
        assert_eq!(
            parsed["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Service"]])
        );
    }
}
