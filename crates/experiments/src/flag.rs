//! A feature flag as the service evaluates it, and the rules a flag must
//! satisfy to be saved.
//!
//! A flag without variants is a boolean: on (`true`) for the visitors its
//! targeting and rollout let in, off (`false`) for the others. A flag with
//! variants serves one variant's `config` (or, without one, its `id`); its
//! first variant is its default (an experiment's control), served to the
//! visitors it does not reach, so every answer carries a value. (OFREP
//! allows leaving the value out for the caller's code default, but the
//! official Node provider, 0.1.3, reports such an answer as an error.) The
//! visitor's variant is GrowthBook's: hash v2 of the targeting key with the
//! flag key as seed, bucket ranges from the rollout (coverage) and the
//! weights ([`crate::bucketing`]). An experiment is a flag with
//! `isExperiment` whose variants are its arms; it serves variants only while
//! it runs, and its winner to everyone once stopped with one.
//!
//! Reasons are OFREP's (STATIC, TARGETING_MATCH, SPLIT, DISABLED): OFREP
//! 0.3 has no DEFAULT, so a visitor the targeting shuts out gets
//! TARGETING_MATCH with the off value, and one outside a rollout SPLIT.

use serde::Serialize;
use serde_json::Value;

use crate::bucketing;
use crate::condition::Condition;

/// One variant (an arm, for an experiment).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// As stored: a share of 100 or of 1 (all variants of a flag alike).
    #[serde(serialize_with = "whole_as_integer")]
    pub weight: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// `50` stays `50` when a flag is saved again, not `50.0`.
fn whole_as_integer<S: serde::Serializer>(weight: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if weight.fract() == 0.0 && weight.abs() < EXACT {
        #[allow(clippy::cast_possible_truncation)]
        serializer.serialize_i64(*weight as i64)
    } else {
        serializer.serialize_f64(*weight)
    }
}

impl Variant {
    /// What the variant serves: its `config`, or its id when it has none.
    pub fn value(&self) -> Value {
        match &self.config {
            Some(config) if !config.is_null() => config.clone(),
            _ => Value::String(self.id.clone()),
        }
    }
}

/// Where an experiment is in its lifecycle (`experimentStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentStatus {
    Draft,
    Running,
    Paused,
    Stopped,
}

impl ExperimentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        }
    }

    /// The stored text; `completed`, which the application's own code
    /// wrote for a finished experiment, reads as stopped. Absent or
    /// unknown text is a draft: it serves nobody a variant.
    pub fn from_stored(text: Option<&str>) -> Self {
        match text {
            Some("running") => Self::Running,
            Some("paused") => Self::Paused,
            Some("stopped" | "completed") => Self::Stopped,
            _ => Self::Draft,
        }
    }
}

/// A flag ready to evaluate: its targeting parsed once.
#[derive(Debug, Clone)]
pub struct Flag {
    pub id: String,
    pub key: String,
    pub enabled: bool,
    /// 0-100: the share of visitors (by hash) the flag's variants reach.
    pub rollout_percentage: i32,
    pub variants: Vec<Variant>,
    pub targeting: Option<Condition>,
    pub is_experiment: bool,
    pub status: ExperimentStatus,
    pub winning_variant: Option<String>,
}

/// Why a visitor got what they got, in OpenFeature's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The same for everyone: no targeting, no split.
    Static,
    /// The targeting decided: it matched and there was nothing to split,
    /// or it did not match and the visitor gets the flag's off value.
    TargetingMatch,
    /// The visitor's hash decided: a variant, or in or out of a rollout.
    Split,
    /// The flag is off, or the experiment is not running.
    Disabled,
}

/// A flag evaluated for one visitor. It borrows from the flag: evaluating
/// every flag of a bulk request copies nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    pub reason: Reason,
    /// The variant served; `None` for a boolean flag.
    pub variant: Option<&'a Variant>,
    /// A boolean flag's value; `None` for a flag with variants.
    pub on: Option<bool>,
    /// The split placed the visitor in `variant`: for an experiment, the
    /// visitor takes part. False where the default was served.
    pub chosen: bool,
}

impl<'a> Evaluation<'a> {
    /// What is served, as an owned value.
    pub fn value(&self) -> Option<Value> {
        match (self.variant, self.on) {
            (Some(variant), _) => Some(variant.value()),
            (None, on) => on.map(Value::Bool),
        }
    }

    /// The variant's name for OpenFeature: a boolean flag's `on`/`off`.
    pub fn variant_name(&self) -> Option<&'a str> {
        match (self.variant, self.on) {
            (Some(variant), _) => Some(&variant.id),
            (None, Some(true)) => Some("on"),
            (None, Some(false)) => Some("off"),
            (None, None) => None,
        }
    }
}

/// The flag needed the visitor's targeting key to split and had none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetingKeyMissing;

impl Flag {
    pub fn is_boolean(&self) -> bool {
        self.variants.is_empty()
    }

    /// What a visitor gets when the flag does not serve them a chosen
    /// variant: `false` for a boolean flag, else the first variant.
    fn off(&self, reason: Reason) -> Evaluation<'_> {
        match self.variants.first() {
            Some(default) => Evaluation {
                reason,
                variant: Some(default),
                on: None,
                chosen: false,
            },
            None => Evaluation {
                reason,
                variant: None,
                on: Some(false),
                chosen: false,
            },
        }
    }

    /// The weights as shares of 1, in variant order.
    pub fn weights(&self) -> Vec<f64> {
        let total: f64 = self.variants.iter().map(|v| v.weight).sum();
        let scale = if total > 1.0 + WEIGHT_TOLERANCE {
            100.0
        } else {
            1.0
        };
        self.variants.iter().map(|v| v.weight / scale).collect()
    }

    /// Whether serving this flag takes a hash of the visitor: a partial
    /// rollout, or more than one variant to choose from.
    fn splits(&self) -> bool {
        self.rollout_percentage < 100 || self.variants.len() > 1 || self.is_experiment
    }

    /// The flag for the visitor with `attributes` (an object, the targeting
    /// key among them as `targetingKey`) and `targeting_key`.
    pub fn evaluate<'a>(
        &'a self,
        attributes: &Value,
        targeting_key: Option<&str>,
    ) -> Result<Evaluation<'a>, TargetingKeyMissing> {
        if !self.enabled {
            return Ok(self.off(Reason::Disabled));
        }
        if self.is_experiment {
            match self.status {
                ExperimentStatus::Running => {}
                ExperimentStatus::Stopped => {
                    return Ok(match self.winner() {
                        Some(winner) => Evaluation {
                            reason: Reason::Static,
                            variant: Some(winner),
                            on: None,
                            chosen: false,
                        },
                        None => self.off(Reason::Disabled),
                    });
                }
                ExperimentStatus::Draft | ExperimentStatus::Paused => {
                    return Ok(self.off(Reason::Disabled));
                }
            }
        }
        let targeted = match &self.targeting {
            Some(condition) if !condition.matches(attributes) => {
                return Ok(self.off(Reason::TargetingMatch));
            }
            Some(_) => true,
            None => false,
        };
        if !self.splits() {
            let reason = if targeted {
                Reason::TargetingMatch
            } else {
                Reason::Static
            };
            return Ok(match self.variants.first() {
                Some(variant) => Evaluation {
                    reason,
                    variant: Some(variant),
                    on: None,
                    chosen: true,
                },
                None => Evaluation {
                    reason,
                    variant: None,
                    on: Some(true),
                    chosen: true,
                },
            });
        }
        let key = targeting_key
            .filter(|k| !k.is_empty())
            .ok_or(TargetingKeyMissing)?;
        let coverage = f64::from(self.rollout_percentage.clamp(0, 100)) / 100.0;
        if self.is_boolean() {
            let on = bucketing::assign(&self.key, key, coverage, &[1.0]).is_some();
            return Ok(Evaluation {
                reason: Reason::Split,
                variant: None,
                on: Some(on),
                chosen: on,
            });
        }
        Ok(
            match bucketing::assign(&self.key, key, coverage, &self.weights())
                .and_then(|index| self.variants.get(index))
            {
                Some(variant) => Evaluation {
                    reason: Reason::Split,
                    variant: Some(variant),
                    on: None,
                    chosen: true,
                },
                None => self.off(Reason::Split),
            },
        )
    }

    fn winner(&self) -> Option<&Variant> {
        let winner = self.winning_variant.as_deref()?;
        self.variants.iter().find(|v| v.id == winner)
    }
}

/// How far weights may sum from 1 (or 100) and still count as summing to
/// it: GrowthBook's own tolerance.
pub const WEIGHT_TOLERANCE: f64 = 0.01;

/// A rule a submitted flag broke, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct FieldError {
    pub field: String,
    pub rule: String,
}

fn field_error(field: impl Into<String>, rule: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        rule: rule.into(),
    }
}

/// A flag key: lower-case letters, digits, `-`, `_` and `.`, starting with a
/// letter or digit, at most 100 characters. Keys go into URLs, SDK calls and
/// the bucketing seed, so they stay plain.
pub fn check_key(key: &str) -> Result<(), FieldError> {
    let plain = key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    let starts_well = key
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(plain && starts_well && key.len() <= 100) {
        return Err(field_error(
            "key",
            "must be 1-100 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit",
        ));
    }
    Ok(())
}

/// Variants as submitted (`[{id, name?, weight, config?}]`), checked: ids
/// unique and non-empty, weights non-negative and summing to 100 or to 1.
pub fn parse_variants(value: &Value) -> Result<Vec<Variant>, FieldError> {
    let items = value
        .as_array()
        .ok_or_else(|| field_error("variants", "must be an array"))?;
    let mut variants: Vec<Variant> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |name: &str| format!("variants[{i}].{name}");
        let object = item
            .as_object()
            .ok_or_else(|| field_error(format!("variants[{i}]"), "must be an object"))?;
        if let Some(unknown) = object
            .keys()
            .find(|k| !["id", "name", "weight", "config"].contains(&k.as_str()))
        {
            return Err(field_error(at(unknown), "is not a variant field"));
        }
        let id = match object.get("id") {
            Some(Value::String(id)) if !id.trim().is_empty() && id.chars().count() <= 100 => {
                id.clone()
            }
            Some(Value::String(_)) => {
                return Err(field_error(at("id"), "must be 1-100 characters"));
            }
            Some(_) => return Err(field_error(at("id"), "must be a string")),
            None => return Err(field_error(at("id"), "is required")),
        };
        if variants.iter().any(|v| v.id == id) {
            return Err(field_error(
                at("id"),
                format!("repeats {id:?}: ids must be unique"),
            ));
        }
        let name = match object.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) if name.chars().count() <= 200 => Some(name.clone()),
            Some(_) => {
                return Err(field_error(
                    at("name"),
                    "must be a string of at most 200 characters",
                ));
            }
        };
        let weight = match object.get("weight").and_then(Value::as_f64) {
            Some(w) if w.is_finite() && w >= 0.0 => w,
            Some(_) => return Err(field_error(at("weight"), "must not be negative")),
            None if object.contains_key("weight") => {
                return Err(field_error(at("weight"), "must be a number"));
            }
            None => return Err(field_error(at("weight"), "is required")),
        };
        variants.push(Variant {
            id,
            name,
            weight,
            config: object.get("config").filter(|c| !c.is_null()).cloned(),
        });
    }
    if !variants.is_empty() {
        let total: f64 = variants.iter().map(|v| v.weight).sum();
        let sums_to = |target: f64| (total - target).abs() <= WEIGHT_TOLERANCE * target;
        if !(sums_to(1.0) || sums_to(100.0)) {
            return Err(field_error(
                "variants",
                format!("weights must sum to 100 or to 1 (they sum to {total})"),
            ));
        }
    }
    Ok(variants)
}

/// A targeting condition as submitted: `null`/absent for everyone, else a
/// GrowthBook condition, refused here (naming where it is wrong) rather
/// than when a visitor is evaluated.
pub fn parse_targeting(value: &Value) -> Result<Option<Condition>, FieldError> {
    if value.is_null() {
        return Ok(None);
    }
    Condition::parse(value).map(Some).map_err(|error| {
        let field = if error.path.is_empty() {
            "targetSegments".to_owned()
        } else {
            format!("targetSegments.{}", error.path)
        };
        field_error(field, error.message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag(variants: Value, rollout: i32) -> Flag {
        Flag {
            id: "f1".into(),
            key: "new-checkout".into(),
            enabled: true,
            rollout_percentage: rollout,
            variants: parse_variants(&variants).expect("variants"),
            targeting: None,
            is_experiment: false,
            status: ExperimentStatus::Draft,
            winning_variant: None,
        }
    }

    #[test]
    fn a_disabled_boolean_flag_is_off_for_everyone() {
        let mut flag = flag(json!([]), 100);
        flag.enabled = false;
        let evaluation = flag.evaluate(&json!({}), None).expect("evaluates");
        assert_eq!(evaluation.reason, Reason::Disabled);
        assert_eq!(evaluation.value(), Some(json!(false)));
    }

    #[test]
    fn a_full_rollout_without_targeting_is_static_and_needs_no_key() {
        let flag = flag(json!([]), 100);
        let evaluation = flag.evaluate(&json!({}), None).expect("evaluates");
        assert_eq!(evaluation.reason, Reason::Static);
        assert_eq!(evaluation.value(), Some(json!(true)));
        assert_eq!(evaluation.variant_name(), Some("on"));
    }

    #[test]
    fn a_partial_rollout_needs_the_targeting_key() {
        let flag = flag(json!([]), 50);
        assert_eq!(flag.evaluate(&json!({}), None), Err(TargetingKeyMissing));
    }

    #[test]
    fn a_partial_rollout_lets_in_about_its_share() {
        let flag = flag(json!([]), 30);
        let on = (0..10_000)
            .filter(|i| {
                flag.evaluate(&json!({}), Some(&format!("visitor-{i}")))
                    .expect("evaluates")
                    .value()
                    == Some(json!(true))
            })
            .count();
        assert!((2_800..3_200).contains(&on), "{on} of 10000 at 30%");
    }

    #[test]
    fn weights_of_100_and_of_1_choose_the_same_variant() {
        let of_100 = flag(
            json!([{"id": "a", "weight": 20}, {"id": "b", "weight": 80}]),
            100,
        );
        let of_1 = flag(
            json!([{"id": "a", "weight": 0.2}, {"id": "b", "weight": 0.8}]),
            100,
        );
        for i in 0..500 {
            let key = format!("v{i}");
            let chosen = |f: &Flag| {
                f.evaluate(&json!({}), Some(&key))
                    .expect("evaluates")
                    .variant_name()
                    .map(str::to_owned)
            };
            assert_eq!(chosen(&of_100), chosen(&of_1), "{key}");
        }
    }

    #[test]
    fn a_variant_serves_its_config_or_else_its_id() {
        let flag = flag(
            json!([{"id": "blue", "weight": 1, "config": {"color": "#00f"}}]),
            100,
        );
        let evaluation = flag.evaluate(&json!({}), None).expect("evaluates");
        assert_eq!(evaluation.value(), Some(json!({"color": "#00f"})));
        let plain = super::tests::flag(json!([{"id": "blue", "weight": 1}]), 100);
        assert_eq!(
            plain.evaluate(&json!({}), None).expect("evaluates").value(),
            Some(json!("blue"))
        );
    }

    #[test]
    fn an_experiment_that_is_not_running_serves_nobody_a_variant() {
        let mut flag = flag(
            json!([{"id": "control", "weight": 50}, {"id": "treatment", "weight": 50}]),
            100,
        );
        flag.is_experiment = true;
        for status in [ExperimentStatus::Draft, ExperimentStatus::Paused] {
            flag.status = status;
            let evaluation = flag.evaluate(&json!({}), Some("v1")).expect("evaluates");
            assert_eq!(evaluation.reason, Reason::Disabled);
            assert_eq!(evaluation.value(), Some(json!("control")));
            assert!(!evaluation.chosen);
        }
    }

    #[test]
    fn a_stopped_experiment_serves_its_winner_to_everyone() {
        let mut flag = flag(
            json!([{"id": "control", "weight": 50}, {"id": "treatment", "weight": 50}]),
            100,
        );
        flag.is_experiment = true;
        flag.status = ExperimentStatus::Stopped;
        flag.winning_variant = Some("treatment".into());
        let evaluation = flag.evaluate(&json!({}), None).expect("evaluates");
        assert_eq!(evaluation.reason, Reason::Static);
        assert_eq!(evaluation.value(), Some(json!("treatment")));
    }

    #[test]
    fn targeting_that_does_not_match_serves_the_first_variant_unchosen() {
        let mut flag = flag(json!([{"id": "a", "weight": 1}]), 100);
        flag.targeting = parse_targeting(&json!({"country": "PT"})).expect("parses");
        let miss = flag
            .evaluate(&json!({"country": "ES"}), None)
            .expect("evaluates");
        assert_eq!(
            (miss.reason, miss.value()),
            (Reason::TargetingMatch, Some(json!("a")))
        );
        assert!(!miss.chosen);
        let hit = flag
            .evaluate(&json!({"country": "PT"}), None)
            .expect("evaluates");
        assert_eq!(hit.reason, Reason::TargetingMatch);
    }

    #[test]
    fn a_visitor_outside_the_rollout_gets_the_default_and_is_not_chosen() {
        let flag = flag(
            json!([{"id": "control", "weight": 50}, {"id": "treatment", "weight": 50}]),
            10,
        );
        let outside = (0..100)
            .map(|i| {
                flag.evaluate(&json!({}), Some(&format!("v{i}")))
                    .expect("evaluates")
            })
            .find(|e| !e.chosen)
            .expect("most visitors are outside a 10% rollout");
        assert_eq!(outside.reason, Reason::Split);
        assert_eq!(outside.value(), Some(json!("control")));
    }

    #[test]
    fn weights_must_sum_to_100_or_to_1() {
        let error = parse_variants(&json!([{"id": "a", "weight": 50}, {"id": "b", "weight": 40}]))
            .expect_err("refused");
        assert_eq!(error.field, "variants");
        assert!(
            parse_variants(&json!([{"id": "a", "weight": 0.5}, {"id": "b", "weight": 0.5}]))
                .is_ok()
        );
    }

    #[test]
    fn variant_errors_name_the_variant_and_field() {
        let cases = [
            (json!([{"weight": 1}]), "variants[0].id"),
            (json!([{"id": "a", "weight": -1}]), "variants[0].weight"),
            (
                json!([{"id": "a", "weight": 50}, {"id": "a", "weight": 50}]),
                "variants[1].id",
            ),
            (
                json!([{"id": "a", "weight": 1, "colour": "red"}]),
                "variants[0].colour",
            ),
            (json!({"id": "a"}), "variants"),
        ];
        for (submitted, field) in cases {
            assert_eq!(
                parse_variants(&submitted).expect_err("refused").field,
                field,
                "{submitted}"
            );
        }
    }

    #[test]
    fn keys_are_plain_slugs() {
        assert!(check_key("new-checkout.v2_b").is_ok());
        for bad in ["", "New", "-x", "a b", "ä", &"k".repeat(101)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
