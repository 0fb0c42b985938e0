//! Bucketing and conditions against GrowthBook's own SDK test cases.
//!
//! `tests/data/growthbook-cases.json` is `packages/sdk-js/test/cases.json`
//! from the public growthbook/growthbook repository: the vectors every
//! GrowthBook SDK must pass, so passing them is what makes our assignments and
//! targeting agree with the browser's. It is MIT-licensed, Copyright (c)
//! GrowthBook, Inc.; the notice is `tests/data/growthbook-cases.LICENSE` and
//! must stay beside the file.
//!
//! Each section is one test that checks every case and reports all
//! mismatches at once, and asserts that it checked as many cases as the
//! section holds, so a case can never be skipped silently.

use std::sync::OnceLock;

use experiments::bucketing::{
    self, Namespace, bucket_ranges, choose_variation, equal_weights, in_namespace,
};
use experiments::condition::{Condition, SavedGroups};
use serde_json::Value;

fn cases() -> &'static Value {
    static CASES: OnceLock<Value> = OnceLock::new();
    CASES.get_or_init(|| {
        let text = include_str!("../data/growthbook-cases.json");
        serde_json::from_str(text).expect("growthbook-cases.json is JSON")
    })
}

fn section(name: &str) -> &'static [Value] {
    cases()[name]
        .as_array()
        .unwrap_or_else(|| panic!("section {name} is an array"))
}

/// The fields of a case, which cases.json stores as an array.
fn fields(case: &Value) -> &[Value] {
    case.as_array().expect("a case is an array")
}

fn float(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{value} is a number"))
}

/// cases.json expects ranges and weights rounded to 8 decimals, as the SDK
/// tests compare them.
fn round8(x: f64) -> f64 {
    (x * 1e8).round() / 1e8
}

/// Fails with every mismatch listed, after checking that all `total` cases
/// were looked at.
fn report(section: &str, checked: usize, total: usize, failures: &[String]) {
    assert_eq!(
        checked, total,
        "{section}: checked {checked} of {total} cases"
    );
    assert!(
        failures.is_empty(),
        "{section}: {} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hash() {
    let cases = section("hash");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (index, case) in cases.iter().enumerate() {
        let [seed, value, version, expected] = fields(case) else {
            panic!("hash case {index} has four fields: {case}");
        };
        let version = u32::try_from(version.as_u64().expect("version")).expect("small version");
        let actual = bucketing::hash(
            seed.as_str().expect("seed"),
            value.as_str().expect("value"),
            version,
        );
        let expected = expected.as_f64();
        if actual != expected {
            failures.push(format!("#{index} {case}: got {actual:?}"));
        }
        checked += 1;
    }
    report("hash", checked, cases.len(), &failures);
}

#[test]
#[allow(non_snake_case)] // named after the cases.json section
fn getBucketRange() {
    let cases = section("getBucketRange");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases {
        let [name, args, expected] = fields(case) else {
            panic!("getBucketRange case has three fields: {case}");
        };
        let [variations, coverage, weights] = fields(args) else {
            panic!("getBucketRange arguments are three: {args}");
        };
        let variations = usize::try_from(variations.as_u64().expect("count")).expect("small");
        let weights: Option<Vec<f64>> = weights
            .as_array()
            .map(|weights| weights.iter().map(float).collect());
        let actual: Vec<(f64, f64)> =
            bucket_ranges(variations, float(coverage), weights.as_deref())
                .into_iter()
                .map(|(start, end)| (round8(start), round8(end)))
                .collect();
        let expected: Vec<(f64, f64)> = fields(expected)
            .iter()
            .map(|range| {
                let [start, end] = fields(range) else {
                    panic!("a range has two ends: {range}");
                };
                (float(start), float(end))
            })
            .collect();
        if actual != expected {
            failures.push(format!("{name}: got {actual:?}, expected {expected:?}"));
        }
        checked += 1;
    }
    report("getBucketRange", checked, cases.len(), &failures);
}

#[test]
#[allow(non_snake_case)] // named after the cases.json section
fn chooseVariation() {
    let cases = section("chooseVariation");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases {
        let [name, n, ranges, expected] = fields(case) else {
            panic!("chooseVariation case has four fields: {case}");
        };
        let ranges: Vec<(f64, f64)> = fields(ranges)
            .iter()
            .map(|range| {
                let [start, end] = fields(range) else {
                    panic!("a range has two ends: {range}");
                };
                (float(start), float(end))
            })
            .collect();
        // The SDK's -1 is our None.
        let expected = usize::try_from(expected.as_i64().expect("index")).ok();
        let actual = choose_variation(float(n), &ranges);
        if actual != expected {
            failures.push(format!("{name}: got {actual:?}, expected {expected:?}"));
        }
        checked += 1;
    }
    report("chooseVariation", checked, cases.len(), &failures);
}

#[test]
#[allow(non_snake_case)] // named after the cases.json section
fn inNamespace() {
    let cases = section("inNamespace");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases {
        let [name, value, namespace, expected] = fields(case) else {
            panic!("inNamespace case has four fields: {case}");
        };
        let [id, start, end] = fields(namespace) else {
            panic!("a namespace has three fields: {namespace}");
        };
        let namespace = Namespace {
            id: id.as_str().expect("id").to_owned(),
            start: float(start),
            end: float(end),
        };
        let actual = in_namespace(value.as_str().expect("value"), &namespace);
        if Some(actual) != expected.as_bool() {
            failures.push(format!("{name}: got {actual}"));
        }
        checked += 1;
    }
    report("inNamespace", checked, cases.len(), &failures);
}

#[test]
#[allow(non_snake_case)] // named after the cases.json section
fn getEqualWeights() {
    let cases = section("getEqualWeights");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases {
        let [n, expected] = fields(case) else {
            panic!("getEqualWeights case has two fields: {case}");
        };
        // The SDK takes any number and gives [] for n <= 0.
        let variations = usize::try_from(n.as_i64().expect("count")).unwrap_or(0);
        let actual: Vec<f64> = equal_weights(variations).into_iter().map(round8).collect();
        let expected: Vec<f64> = fields(expected).iter().map(float).collect();
        if actual != expected {
            failures.push(format!("n = {n}: got {actual:?}, expected {expected:?}"));
        }
        checked += 1;
    }
    report("getEqualWeights", checked, cases.len(), &failures);
}

/// Cases our strict parser refuses although GrowthBook evaluates them, with
/// why; each expects `false`, which is what a refused condition amounts to
/// (GrowthBook also evaluates these to false). The test asserts this list is
/// exactly the set of refused cases, so it cannot go stale.
const REFUSED: &[(&str, &str)] = &[
    (
        "$in - not array",
        "`$in` takes an array; GrowthBook evaluates a non-array to false",
    ),
    ("$nin - not array", "`$nin` takes an array; likewise"),
    ("$ini - not array", "`$ini` takes an array; likewise"),
    ("$nini - not array", "`$nini` takes an array; likewise"),
    (
        "unknown operator - pass",
        "`$regx` is no operator; GrowthBook evaluates it to false",
    ),
    (
        "$regex invalid - pass",
        "`/???***[)` is no regular expression in JavaScript either",
    ),
    (
        "$regex invalid - fail",
        "the same invalid regular expression",
    ),
];

#[test]
#[allow(non_snake_case)] // named after the cases.json section
fn evalCondition() {
    let cases = section("evalCondition");
    let mut failures = Vec::new();
    let mut refused = Vec::new();
    let mut checked = 0;
    for case in cases {
        let (name, condition, attributes, expected, groups) = match fields(case) {
            [name, condition, attributes, expected] => {
                (name, condition, attributes, expected, None)
            }
            [name, condition, attributes, expected, groups] => {
                (name, condition, attributes, expected, Some(groups))
            }
            _ => panic!("evalCondition case has four or five fields: {case}"),
        };
        let name = name.as_str().expect("case name");
        let expected = expected.as_bool().expect("expected result");
        let groups: SavedGroups = groups
            .and_then(Value::as_object)
            .map(|groups| {
                groups
                    .iter()
                    .map(|(id, members)| (id.clone(), fields(members).to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        match Condition::parse(condition) {
            Ok(parsed) => {
                let actual = parsed.matches_with_saved_groups(attributes, &groups);
                if actual != expected {
                    failures.push(format!("{name}: got {actual}, expected {expected}"));
                }
            }
            Err(error) => {
                refused.push(name);
                if expected {
                    failures.push(format!("{name}: refused ({error}) but expected true"));
                }
            }
        }
        checked += 1;
    }
    report("evalCondition", checked, cases.len(), &failures);
    let expected_refusals: Vec<&str> = REFUSED.iter().map(|(name, _)| *name).collect();
    assert_eq!(refused, expected_refusals, "the refused cases changed");
}
