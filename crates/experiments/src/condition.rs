//! Whether a visitor matches a flag's targeting: GrowthBook's MongoDB-style
//! condition language (`{"country": {"$in": ["FR", "BE"]}, "age": {"$gte": 18}}`).
//!
//! Why GrowthBook's language and GrowthBook's exact semantics: the same
//! conditions are evaluated by GrowthBook SDKs in the browser, so a visitor
//! must match here exactly when they match there. Evaluation therefore follows
//! the JavaScript SDK's `evalCondition`
//! (<https://github.com/growthbook/growthbook/blob/main/packages/sdk-js/src/mongrule.ts>),
//! JavaScript coercions included (`"8"` is greater than `5`, a missing
//! attribute equals `0` and the string `"null"`, `$regex` tests the attribute's
//! string form), and is checked against the SDK's shared test cases
//! (`tests/spec/growthbook_cases.rs`).
//!
//! Where GrowthBook is lenient, [`Condition::parse`] is strict: an unknown
//! operator, an operand of the wrong type or a regular expression that cannot
//! be compiled is refused with the path where it occurs, so the admin API can
//! refuse a bad condition when it is saved instead of silently never matching
//! (GrowthBook evaluates such a condition to `false`). Parsing also refuses the
//! few constructs whose GrowthBook result cannot be reproduced faithfully:
//!
//! - a literal object with more than one key (`{"device": {"os": "ios", "v": 3}}`):
//!   GrowthBook compares `JSON.stringify` output, which depends on key order,
//!   and `serde_json` does not keep key order; dotted paths (`device.os`)
//!   express the same test without the trap;
//! - a `__proto__` path segment, which reaches JavaScript's object prototype;
//! - regular expressions the Rust `regex` crate cannot run: lookaround and
//!   backreferences (and the legacy octal escapes that share their syntax).
//!
//! Every condition that parses evaluates as GrowthBook does. JavaScript
//! regular expressions are translated rather than passed through, because the
//! two dialects differ in meaning, not only in syntax (see `js_regex` below):
//! in JavaScript `\d`, `\w`, `\s` and `\b` are ASCII- or JS-specific, `.`
//! excludes `\r` and U+2028/U+2029, matching is per UTF-16 code unit (so `.`
//! matches half of an emoji), `\a` means `a`, `a{,5}` is literal text, and
//! `$regexi` uses JavaScript's upper-case canonicalisation (under which `ſ`
//! does not match `s` and the Kelvin sign does not match `k`), not Unicode
//! case folding.
//!
//! Two limits lie outside this module: case mappings (`$ini`, `$regexi`) are
//! those of Rust's Unicode version, which may trail or lead the browser's;
//! and numbers are the `f64` serde_json parsed, which without its
//! `float_roundtrip` feature can be one ULP away from JavaScript's
//! `JSON.parse` for numbers with 16 or more significant digits.
//!
//! `$inGroup`/`$notInGroup` (saved groups) are supported: the groups are
//! passed at match time ([`Condition::matches_with_saved_groups`]), since they
//! change without the conditions that use them changing.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use js_regex::JsRegex;

/// Saved groups by id: the lists of attribute values `$inGroup` tests
/// membership of (GrowthBook's `savedGroups`).
pub type SavedGroups = HashMap<String, Vec<Value>>;

/// Why a condition was refused, and where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", at(.path))]
pub struct ConditionError {
    /// Where in the condition, e.g. `$or[1].country.$regex`; empty for the
    /// condition itself.
    pub path: String,
    /// What is wrong, for a human.
    pub message: String,
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

fn refuse(path: &str, message: impl Into<String>) -> ConditionError {
    ConditionError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// A parsed, validated targeting condition, with its regular expressions
/// compiled once.
#[derive(Debug, Clone)]
pub struct Condition {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone)]
enum Clause {
    Or(Vec<Condition>),
    Nor(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    Attribute { path: Vec<String>, test: ValueTest },
}

/// What one value is tested against (GrowthBook's `ConditionValue`).
#[derive(Debug, Clone)]
enum ValueTest {
    Text(String),
    Number(f64),
    Bool(bool),
    Null,
    /// An array, or an object without operators, compared as JSON.
    Literal(Value),
    Operators(Vec<Operator>),
}

#[derive(Debug, Clone)]
enum Operator {
    StrictEqual(Value),
    NotStrictEqual(Value),
    Compare(Relation, Operand),
    Version(Relation, String),
    Exists(bool),
    In {
        values: Vec<Value>,
        insensitive: bool,
        negated: bool,
    },
    InGroup {
        id: String,
        negated: bool,
    },
    Not(Box<ValueTest>),
    Size(Box<ValueTest>),
    ElemMatch(ElemMatch),
    All {
        tests: Vec<ValueTest>,
        insensitive: bool,
    },
    Regex(JsRegex),
    Type(JsType),
}

#[derive(Debug, Clone)]
enum ElemMatch {
    /// `{"$elemMatch": {"$gt": 10}}`: each element is the value tested.
    Value(Vec<Operator>),
    /// `{"$elemMatch": {"name": "x"}}`: each element is an attribute object.
    Condition(Condition),
}

#[derive(Debug, Clone)]
enum Operand {
    Text(String),
    Number(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Relation {
    /// Whether `actual <relation> expected`, given how they compare; `None`
    /// (a NaN was involved) fails every relation, as in JavaScript.
    fn holds(self, ordering: Option<Ordering>) -> bool {
        let Some(ordering) = ordering else {
            return false;
        };
        match self {
            Self::Equal => ordering.is_eq(),
            Self::NotEqual => ordering.is_ne(),
            Self::Less => ordering.is_lt(),
            Self::LessOrEqual => ordering.is_le(),
            Self::Greater => ordering.is_gt(),
            Self::GreaterOrEqual => ordering.is_ge(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsType {
    String,
    Number,
    Boolean,
    Array,
    Object,
    Null,
}

/// The operators that test a value, refused at condition level where
/// GrowthBook would silently read them as an attribute named `$in`.
const VALUE_OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$lt",
    "$lte",
    "$gt",
    "$gte",
    "$veq",
    "$vne",
    "$vgt",
    "$vgte",
    "$vlt",
    "$vlte",
    "$regex",
    "$regexi",
    "$in",
    "$nin",
    "$ini",
    "$nini",
    "$all",
    "$alli",
    "$elemMatch",
    "$size",
    "$exists",
    "$type",
    "$inGroup",
    "$notInGroup",
];

impl Condition {
    /// Parses and validates a condition, refusing anything GrowthBook would
    /// not evaluate meaningfully (see the module documentation).
    ///
    /// # Errors
    ///
    /// A [`ConditionError`] naming the first offending place, such as
    /// `$or[1].country.$regex`.
    pub fn parse(condition: &Value) -> Result<Self, ConditionError> {
        parse_condition(condition, "")
    }

    /// Whether `attributes` (the visitor's attribute object) satisfies the
    /// condition, exactly as GrowthBook's `evalCondition` decides; saved
    /// groups count as empty.
    #[must_use]
    pub fn matches(&self, attributes: &Value) -> bool {
        self.matches_with_saved_groups(attributes, &SavedGroups::new())
    }

    /// [`Condition::matches`] with the saved groups `$inGroup` and
    /// `$notInGroup` refer to; an unknown group id counts as an empty group,
    /// as in GrowthBook.
    #[must_use]
    pub fn matches_with_saved_groups(
        &self,
        attributes: &Value,
        saved_groups: &SavedGroups,
    ) -> bool {
        eval_condition(self, attributes, saved_groups)
    }
}

// ---------------------------------------------------------------- parsing

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn indexed(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn number(value: &serde_json::Number) -> f64 {
    // Always `Some` without serde_json's arbitrary_precision; JavaScript
    // would read an unrepresentable number as NaN.
    value.as_f64().unwrap_or(f64::NAN)
}

fn parse_condition(value: &Value, path: &str) -> Result<Condition, ConditionError> {
    let Value::Object(map) = value else {
        return Err(refuse(
            path,
            format!("expected a condition object, found {}", kind(value)),
        ));
    };
    let mut clauses = Vec::with_capacity(map.len());
    for (key, operand) in map {
        let here = child(path, key);
        let clause = match key.as_str() {
            "$or" => Clause::Or(parse_condition_list(operand, &here, key)?),
            "$nor" => Clause::Nor(parse_condition_list(operand, &here, key)?),
            "$and" => Clause::And(parse_condition_list(operand, &here, key)?),
            "$not" => Clause::Not(Box::new(parse_condition(operand, &here)?)),
            operator if VALUE_OPERATORS.contains(&operator) => {
                return Err(refuse(
                    &here,
                    format!(
                        "`{operator}` tests a value and belongs under an attribute, \
                         as in {{\"attribute\": {{\"{operator}\": …}}}}"
                    ),
                ));
            }
            // Any other key, `$groups` included, names an attribute.
            attribute => Clause::Attribute {
                path: parse_attribute_path(attribute, &here)?,
                test: parse_value_test(operand, &here)?,
            },
        };
        clauses.push(clause);
    }
    Ok(Condition { clauses })
}

fn parse_condition_list(
    value: &Value,
    path: &str,
    operator: &str,
) -> Result<Vec<Condition>, ConditionError> {
    let Value::Array(items) = value else {
        return Err(refuse(
            path,
            format!(
                "`{operator}` takes an array of conditions, found {}",
                kind(value)
            ),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_condition(item, &indexed(path, index)))
        .collect()
}

fn parse_attribute_path(key: &str, path: &str) -> Result<Vec<String>, ConditionError> {
    let segments: Vec<String> = key.split('.').map(str::to_owned).collect();
    if segments.iter().any(|segment| segment == "__proto__") {
        return Err(refuse(
            path,
            "`__proto__` reaches JavaScript's object prototype in GrowthBook, not an attribute",
        ));
    }
    Ok(segments)
}

fn is_operator_object(map: &Map<String, Value>) -> bool {
    !map.is_empty() && map.keys().all(|key| key.starts_with('$'))
}

fn parse_value_test(value: &Value, path: &str) -> Result<ValueTest, ConditionError> {
    Ok(match value {
        Value::String(text) => ValueTest::Text(text.clone()),
        Value::Number(n) => ValueTest::Number(number(n)),
        Value::Bool(flag) => ValueTest::Bool(*flag),
        Value::Null => ValueTest::Null,
        Value::Array(_) => {
            validate_literal(value, path)?;
            ValueTest::Literal(value.clone())
        }
        Value::Object(map) if is_operator_object(map) => {
            ValueTest::Operators(parse_operators(map, path)?)
        }
        Value::Object(map) => {
            if map.keys().any(|key| key.starts_with('$')) {
                return Err(refuse(
                    path,
                    "an object mixing operators (`$…` keys) with plain keys is compared \
                     literally by GrowthBook, operators included: use only operators, \
                     or only plain keys",
                ));
            }
            validate_literal(value, path)?;
            ValueTest::Literal(value.clone())
        }
    })
}

/// Refuses literal objects whose comparison would depend on key order.
fn validate_literal(value: &Value, path: &str) -> Result<(), ConditionError> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(index, item)| validate_literal(item, &indexed(path, index))),
        Value::Object(map) => {
            if map.len() > 1 {
                return Err(refuse(
                    path,
                    "a literal object may have at most one key: GrowthBook compares \
                     JSON text, so the result would depend on key order; test each key \
                     with a dotted path instead (`attribute.key`)",
                ));
            }
            map.iter()
                .try_for_each(|(key, item)| validate_literal(item, &child(path, key)))
        }
        _ => Ok(()),
    }
}

fn parse_operators(map: &Map<String, Value>, path: &str) -> Result<Vec<Operator>, ConditionError> {
    map.iter()
        .map(|(name, operand)| parse_operator(name, operand, &child(path, name)))
        .collect()
}

#[allow(clippy::too_many_lines)] // one arm per operator reads best as a table
fn parse_operator(name: &str, operand: &Value, path: &str) -> Result<Operator, ConditionError> {
    let relation = |suffix: &str| match suffix {
        "eq" => Relation::Equal,
        "ne" => Relation::NotEqual,
        "lt" => Relation::Less,
        "lte" => Relation::LessOrEqual,
        "gt" => Relation::Greater,
        _ => Relation::GreaterOrEqual,
    };
    Ok(match name {
        "$eq" | "$ne" => {
            if matches!(operand, Value::Array(_) | Value::Object(_)) {
                return Err(refuse(
                    path,
                    format!(
                        "`{name}` takes a string, number, boolean or null: GrowthBook \
                         compares with ===, which never holds for an array or object"
                    ),
                ));
            }
            if name == "$eq" {
                Operator::StrictEqual(operand.clone())
            } else {
                Operator::NotStrictEqual(operand.clone())
            }
        }
        "$lt" | "$lte" | "$gt" | "$gte" => {
            let operand = match operand {
                Value::String(text) => Operand::Text(text.clone()),
                Value::Number(n) => Operand::Number(number(n)),
                other => {
                    return Err(refuse(
                        path,
                        format!("`{name}` takes a number or a string, found {}", kind(other)),
                    ));
                }
            };
            Operator::Compare(relation(&name[1..]), operand)
        }
        "$veq" | "$vne" | "$vlt" | "$vlte" | "$vgt" | "$vgte" => {
            if !matches!(operand, Value::String(_) | Value::Number(_)) {
                return Err(refuse(
                    path,
                    format!(
                        "`{name}` takes a version string such as \"1.2.3\", found {}",
                        kind(operand)
                    ),
                ));
            }
            Operator::Version(relation(&name[2..]), padded_version(Actual::Json(operand)))
        }
        "$exists" => match operand {
            Value::Bool(flag) => Operator::Exists(*flag),
            other => {
                return Err(refuse(
                    path,
                    format!("`$exists` takes true or false, found {}", kind(other)),
                ));
            }
        },
        "$in" | "$nin" | "$ini" | "$nini" => {
            let Value::Array(items) = operand else {
                return Err(refuse(
                    path,
                    format!("`{name}` takes an array of values, found {}", kind(operand)),
                ));
            };
            let insensitive = name.ends_with("ini");
            let values = items
                .iter()
                .enumerate()
                .map(|(index, item)| match item {
                    Value::Array(_) | Value::Object(_) => Err(refuse(
                        &indexed(path, index),
                        format!(
                            "{} in `{name}` never matches: GrowthBook compares elements with ===",
                            kind(item)
                        ),
                    )),
                    Value::String(text) if insensitive => Ok(Value::String(js_lower(text))),
                    _ => Ok(item.clone()),
                })
                .collect::<Result<_, _>>()?;
            Operator::In {
                values,
                insensitive,
                negated: name.starts_with("$n"),
            }
        }
        "$inGroup" | "$notInGroup" => match operand {
            Value::String(id) if OBJECT_PROTOTYPE.contains(&id.as_str()) || id == "__proto__" => {
                return Err(refuse(
                    path,
                    format!("`{id}` names a JavaScript object member, not a saved group"),
                ));
            }
            Value::String(id) => Operator::InGroup {
                id: id.clone(),
                negated: name == "$notInGroup",
            },
            other => {
                return Err(refuse(
                    path,
                    format!("`{name}` takes a saved group id, found {}", kind(other)),
                ));
            }
        },
        "$not" => Operator::Not(Box::new(parse_value_test(operand, path)?)),
        "$size" => match operand {
            Value::Number(n) => Operator::Size(Box::new(ValueTest::Number(number(n)))),
            Value::Object(map) if is_operator_object(map) => {
                Operator::Size(Box::new(ValueTest::Operators(parse_operators(map, path)?)))
            }
            other => {
                return Err(refuse(
                    path,
                    format!(
                        "`$size` takes a number or operators such as {{\"$gt\": 2}}, found {}",
                        kind(other)
                    ),
                ));
            }
        },
        "$elemMatch" => match operand {
            Value::Object(map) if is_operator_object(map) => {
                Operator::ElemMatch(ElemMatch::Value(parse_operators(map, path)?))
            }
            Value::Object(_) => {
                Operator::ElemMatch(ElemMatch::Condition(parse_condition(operand, path)?))
            }
            other => {
                return Err(refuse(
                    path,
                    format!(
                        "`$elemMatch` takes operators or a condition object, found {}",
                        kind(other)
                    ),
                ));
            }
        },
        "$all" | "$alli" => {
            let Value::Array(items) = operand else {
                return Err(refuse(
                    path,
                    format!("`{name}` takes an array, found {}", kind(operand)),
                ));
            };
            let tests = items
                .iter()
                .enumerate()
                .map(|(index, item)| parse_value_test(item, &indexed(path, index)))
                .collect::<Result<_, _>>()?;
            Operator::All {
                tests,
                insensitive: name == "$alli",
            }
        }
        "$regex" | "$regexi" => {
            let Value::String(pattern) = operand else {
                return Err(refuse(
                    path,
                    format!(
                        "`{name}` takes a regular expression string, found {}",
                        kind(operand)
                    ),
                ));
            };
            let regex = JsRegex::new(pattern, name == "$regexi").map_err(|reason| {
                refuse(
                    path,
                    format!("invalid or unsupported regular expression: {reason}"),
                )
            })?;
            Operator::Regex(regex)
        }
        "$type" => {
            let js_type = match operand.as_str() {
                Some("string") => JsType::String,
                Some("number") => JsType::Number,
                Some("boolean") => JsType::Boolean,
                Some("array") => JsType::Array,
                Some("object") => JsType::Object,
                Some("null") => JsType::Null,
                Some("undefined") => {
                    return Err(refuse(
                        path,
                        "`undefined` never matches: a missing attribute has type `null`",
                    ));
                }
                _ => {
                    return Err(refuse(
                        path,
                        format!(
                            "`$type` takes one of \"string\", \"number\", \"boolean\", \
                             \"array\", \"object\", \"null\", found {operand}"
                        ),
                    ));
                }
            };
            Operator::Type(js_type)
        }
        "$or" | "$nor" | "$and" => {
            return Err(refuse(
                path,
                format!(
                    "`{name}` combines conditions and belongs at condition level, not under an attribute"
                ),
            ));
        }
        unknown => {
            return Err(refuse(path, format!("unknown operator `{unknown}`")));
        }
    })
}

// ------------------------------------------------------------- evaluation

/// A value as GrowthBook's JavaScript sees it after a path lookup: JSON,
/// or one of the two non-JSON things `in`-based lookups can reach.
#[derive(Debug, Clone, Copy)]
enum Actual<'a> {
    Json(&'a Value),
    /// An array's `length`.
    Number(f64),
    /// An inherited method such as `toString` or `map`, by its name.
    Function(&'static str),
}

static NULL: Value = Value::Null;

/// Members every plain object inherits from `Object.prototype` (V8, Node
/// 20), which GrowthBook's `in`-based lookup finds on any attribute object.
const OBJECT_PROTOTYPE: &[&str] = &[
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
    "constructor",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "toString",
    "valueOf",
];

/// Methods arrays inherit from `Array.prototype` (V8, Node 20).
const ARRAY_PROTOTYPE: &[&str] = &[
    "at",
    "concat",
    "copyWithin",
    "entries",
    "every",
    "fill",
    "filter",
    "find",
    "findIndex",
    "findLast",
    "findLastIndex",
    "flat",
    "flatMap",
    "forEach",
    "includes",
    "indexOf",
    "join",
    "keys",
    "lastIndexOf",
    "map",
    "pop",
    "push",
    "reduce",
    "reduceRight",
    "reverse",
    "shift",
    "slice",
    "some",
    "sort",
    "splice",
    "toLocaleString",
    "toReversed",
    "toSorted",
    "toSpliced",
    "toString",
    "unshift",
    "values",
    "with",
];

fn inherited(name: &str, candidates: &[&'static str]) -> Option<&'static str> {
    candidates
        .iter()
        .copied()
        .find(|candidate| *candidate == name)
}

/// A canonical array index (`"0"`, `"12"`, not `"01"`), as JavaScript's `in`
/// recognises one.
fn array_index(segment: &str) -> Option<usize> {
    let canonical = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    canonical.then(|| segment.parse().ok()).flatten()
}

/// GrowthBook's `getPath`: follows `parts` through objects and arrays with
/// JavaScript's `in`, and gives null as soon as a step is missing.
fn get_path<'a>(attributes: &'a Value, parts: &[String]) -> Actual<'a> {
    let mut current = Actual::Json(attributes);
    for part in parts {
        current = match current {
            Actual::Json(Value::Object(map)) => match map.get(part) {
                Some(value) => Actual::Json(value),
                None => match inherited(part, OBJECT_PROTOTYPE) {
                    Some("constructor") => Actual::Function("Object"),
                    Some(method) => Actual::Function(method),
                    None => return Actual::Json(&NULL),
                },
            },
            Actual::Json(Value::Array(items)) => {
                if let Some(item) = array_index(part).and_then(|index| items.get(index)) {
                    Actual::Json(item)
                } else if part == "length" {
                    Actual::Number(len_as_f64(items.len()))
                } else if part == "constructor" {
                    Actual::Function("Array")
                } else if let Some(method) =
                    inherited(part, ARRAY_PROTOTYPE).or_else(|| inherited(part, OBJECT_PROTOTYPE))
                {
                    Actual::Function(method)
                } else {
                    return Actual::Json(&NULL);
                }
            }
            _ => return Actual::Json(&NULL),
        };
    }
    current
}

#[allow(clippy::cast_precision_loss)] // exact below 2^53 elements
fn len_as_f64(len: usize) -> f64 {
    len as f64
}

fn eval_condition(condition: &Condition, attributes: &Value, groups: &SavedGroups) -> bool {
    condition.clauses.iter().all(|clause| match clause {
        Clause::Or(conditions) => eval_or(conditions, attributes, groups),
        Clause::Nor(conditions) => !eval_or(conditions, attributes, groups),
        Clause::And(conditions) => conditions
            .iter()
            .all(|condition| eval_condition(condition, attributes, groups)),
        Clause::Not(condition) => !eval_condition(condition, attributes, groups),
        Clause::Attribute { path, test } => {
            eval_value(test, get_path(attributes, path), groups, false)
        }
    })
}

/// GrowthBook's `evalOr`, under which an empty `$or` holds (and so an empty
/// `$nor` does not).
fn eval_or(conditions: &[Condition], attributes: &Value, groups: &SavedGroups) -> bool {
    conditions.is_empty()
        || conditions
            .iter()
            .any(|condition| eval_condition(condition, attributes, groups))
}

/// GrowthBook's `evalConditionValue`.
fn eval_value(
    test: &ValueTest,
    actual: Actual<'_>,
    groups: &SavedGroups,
    insensitive: bool,
) -> bool {
    match test {
        ValueTest::Text(expected) if insensitive => {
            js_lower(&to_js_string(actual)) == js_lower(expected)
        }
        ValueTest::Text(expected) => to_js_string(actual) == expected.as_str(),
        // `value * 1 === condition`
        ValueTest::Number(expected) => to_number(actual) == *expected,
        ValueTest::Bool(expected) => !is_null(actual) && truthy(actual) == *expected,
        ValueTest::Null => is_null(actual),
        // `JSON.stringify(value) === JSON.stringify(condition)`; literals
        // are arrays and objects, which only JSON can equal.
        ValueTest::Literal(expected) => match actual {
            Actual::Json(value) => json_equal(value, expected),
            Actual::Number(_) | Actual::Function(_) => false,
        },
        ValueTest::Operators(operators) => operators
            .iter()
            .all(|operator| eval_operator(operator, actual, groups)),
    }
}

/// GrowthBook's `evalOperatorCondition`.
fn eval_operator(operator: &Operator, actual: Actual<'_>, groups: &SavedGroups) -> bool {
    match operator {
        Operator::StrictEqual(expected) => strict_equal(actual, expected, false),
        Operator::NotStrictEqual(expected) => !strict_equal(actual, expected, false),
        Operator::Compare(relation, expected) => {
            let expected = match expected {
                Operand::Text(text) => Primitive::Text(Cow::Borrowed(text)),
                Operand::Number(n) => Primitive::Number(*n),
            };
            relation.holds(js_compare(&to_primitive(actual), &expected))
        }
        Operator::Version(relation, expected) => {
            relation.holds(Some(cmp_utf16(&padded_version(actual), expected)))
        }
        // `!= null` / `== null`: attributes are never undefined here.
        Operator::Exists(expected) => is_null(actual) != *expected,
        Operator::In {
            values,
            insensitive,
            negated,
        } => is_in(actual, values, *insensitive) != *negated,
        Operator::InGroup { id, negated } => {
            let members = groups.get(id).map_or(&[][..], Vec::as_slice);
            is_in(actual, members, false) != *negated
        }
        Operator::Not(test) => !eval_value(test, actual, groups, false),
        Operator::Size(test) => match actual {
            Actual::Json(Value::Array(items)) => {
                eval_value(test, Actual::Number(len_as_f64(items.len())), groups, false)
            }
            _ => false,
        },
        Operator::ElemMatch(expected) => match actual {
            Actual::Json(Value::Array(items)) => items
                .iter()
                .filter(|item| truthy(Actual::Json(item)))
                .any(|item| match expected {
                    ElemMatch::Value(operators) => operators
                        .iter()
                        .all(|operator| eval_operator(operator, Actual::Json(item), groups)),
                    ElemMatch::Condition(condition) => eval_condition(condition, item, groups),
                }),
            _ => false,
        },
        Operator::All { tests, insensitive } => match actual {
            Actual::Json(Value::Array(items)) => tests.iter().all(|test| {
                items
                    .iter()
                    .any(|item| eval_value(test, Actual::Json(item), groups, *insensitive))
            }),
            _ => false,
        },
        // `RegExp.prototype.test` tests the value's string form.
        Operator::Regex(regex) => regex.is_match(&to_js_string(actual)),
        Operator::Type(expected) => js_type(actual) == Some(*expected),
    }
}

fn is_null(actual: Actual<'_>) -> bool {
    matches!(actual, Actual::Json(Value::Null))
}

/// JavaScript's `===` between a value and a JSON primitive (`$eq`, `$in`):
/// objects and arrays are never equal to anything but themselves. With
/// `insensitive`, strings compare lower-cased (the expected side already is).
fn strict_equal(actual: Actual<'_>, expected: &Value, insensitive: bool) -> bool {
    match (actual, expected) {
        (Actual::Json(Value::Null), Value::Null) => true,
        (Actual::Json(Value::Bool(a)), Value::Bool(b)) => a == b,
        (Actual::Json(Value::Number(a)), Value::Number(b)) => number(a) == number(b),
        (Actual::Number(a), Value::Number(b)) => a == number(b),
        (Actual::Json(Value::String(a)), Value::String(b)) if insensitive => js_lower(a) == *b,
        (Actual::Json(Value::String(a)), Value::String(b)) => a == b,
        _ => false,
    }
}

/// GrowthBook's `isIn`: membership, or a non-empty intersection when the
/// attribute is an array.
fn is_in(actual: Actual<'_>, expected: &[Value], insensitive: bool) -> bool {
    let contains = |value: Actual<'_>| {
        expected
            .iter()
            .any(|candidate| strict_equal(value, candidate, insensitive))
    };
    match actual {
        Actual::Json(Value::Array(items)) => items.iter().any(|item| contains(Actual::Json(item))),
        _ => contains(actual),
    }
}

/// GrowthBook's `getType`; `None` for its `"unknown"` (functions).
fn js_type(actual: Actual<'_>) -> Option<JsType> {
    Some(match actual {
        Actual::Json(Value::Null) => JsType::Null,
        Actual::Json(Value::Bool(_)) => JsType::Boolean,
        Actual::Json(Value::Number(_)) | Actual::Number(_) => JsType::Number,
        Actual::Json(Value::String(_)) => JsType::String,
        Actual::Json(Value::Array(_)) => JsType::Array,
        Actual::Json(Value::Object(_)) => JsType::Object,
        Actual::Function(_) => return None,
    })
}

/// `JSON.stringify(a) === JSON.stringify(b)` for JSON values, given that
/// parsing allowed `expected` no object with several keys (so key order
/// cannot matter): equal numbers print alike, and distinct strings print
/// differently.
fn json_equal(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => number(a) == number(b),
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && b.iter()
                    .all(|(key, b)| a.get(key).is_some_and(|a| json_equal(a, b)))
        }
        _ => false,
    }
}

/// A JavaScript primitive: what `ToPrimitive` makes of a value before a
/// comparison or conversion.
#[derive(Debug)]
enum Primitive<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Text(Cow<'a, str>),
}

fn to_primitive(actual: Actual<'_>) -> Primitive<'_> {
    match actual {
        Actual::Json(Value::Null) => Primitive::Null,
        Actual::Json(Value::Bool(flag)) => Primitive::Bool(*flag),
        Actual::Json(Value::Number(n)) => Primitive::Number(number(n)),
        Actual::Number(n) => Primitive::Number(n),
        Actual::Json(Value::String(text)) => Primitive::Text(Cow::Borrowed(text)),
        // Arrays join their elements' string forms, nulls as "".
        Actual::Json(Value::Array(items)) => Primitive::Text(Cow::Owned(
            items
                .iter()
                .map(|item| match item {
                    Value::Null => Cow::Borrowed(""),
                    item => to_js_string(Actual::Json(item)),
                })
                .collect::<Vec<_>>()
                .join(","),
        )),
        Actual::Json(Value::Object(_)) => Primitive::Text(Cow::Borrowed("[object Object]")),
        Actual::Function(name) => {
            Primitive::Text(Cow::Owned(format!("function {name}() {{ [native code] }}")))
        }
    }
}

/// JavaScript's `String(value)`.
fn to_js_string(actual: Actual<'_>) -> Cow<'_, str> {
    match to_primitive(actual) {
        Primitive::Null => Cow::Borrowed("null"),
        Primitive::Bool(true) => Cow::Borrowed("true"),
        Primitive::Bool(false) => Cow::Borrowed("false"),
        Primitive::Number(n) => Cow::Owned(js_number_to_string(n)),
        Primitive::Text(text) => text,
    }
}

/// JavaScript's `ToNumber` of a primitive.
fn primitive_to_number(primitive: &Primitive<'_>) -> f64 {
    match primitive {
        Primitive::Null | Primitive::Bool(false) => 0.0,
        Primitive::Bool(true) => 1.0,
        Primitive::Number(n) => *n,
        Primitive::Text(text) => js_string_to_number(text),
    }
}

fn to_number(actual: Actual<'_>) -> f64 {
    primitive_to_number(&to_primitive(actual))
}

/// JavaScript truthiness.
fn truthy(actual: Actual<'_>) -> bool {
    match actual {
        Actual::Json(Value::Null) => false,
        Actual::Json(Value::Bool(flag)) => *flag,
        Actual::Json(Value::Number(n)) => {
            let n = number(n);
            n != 0.0 && !n.is_nan()
        }
        Actual::Number(n) => n != 0.0 && !n.is_nan(),
        Actual::Json(Value::String(text)) => !text.is_empty(),
        Actual::Json(Value::Array(_) | Value::Object(_)) | Actual::Function(_) => true,
    }
}

/// JavaScript's `<` family between two primitives: two strings compare by
/// UTF-16 code units, anything else as numbers, and NaN compares to nothing.
fn js_compare(a: &Primitive<'_>, b: &Primitive<'_>) -> Option<Ordering> {
    match (a, b) {
        (Primitive::Text(a), Primitive::Text(b)) => Some(cmp_utf16(a, b)),
        _ => primitive_to_number(a).partial_cmp(&primitive_to_number(b)),
    }
}

/// JavaScript's string order, by UTF-16 code units (which differs from
/// Rust's code-point order above U+FFFF).
fn cmp_utf16(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `String.prototype.toLowerCase` (full Unicode mapping, final sigma
/// included, as Rust's `to_lowercase`).
fn js_lower(text: &str) -> String {
    text.to_lowercase()
}

/// `Number.prototype.toString()`: the shortest digits that round-trip,
/// printed plainly between 1e-7 and 1e21 and in exponent form outside.
fn js_number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if x < 0.0 {
        return format!("-{}", js_number_to_string(-x));
    }
    // Rust's `{:e}` prints as few digits as round-trip (d.ddde±x), but when
    // several such strings exist it may not pick the one closest to `x` as
    // JavaScript must (862953064497560.2, not .3): the correctly rounded
    // string of that many digits is the closest, when it round-trips.
    let shortest = format!("{x:e}");
    let precision = shortest.split_once('e').map_or(0, |(mantissa, _)| {
        mantissa
            .chars()
            .filter(char::is_ascii_digit)
            .count()
            .saturating_sub(1)
    });
    let closest = format!("{x:.precision$e}");
    let scientific = if closest.parse::<f64>() == Ok(x) {
        closest
    } else {
        shortest
    };
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let n = exponent.parse::<i32>().unwrap_or(0) + 1;
    let zeros = |count: i32| "0".repeat(usize::try_from(count).unwrap_or(0));
    if k <= n && n <= 21 {
        format!("{digits}{}", zeros(n - k))
    } else if 0 < n && n <= 21 {
        let split = usize::try_from(n).unwrap_or(0);
        format!("{}.{}", &digits[..split], &digits[split..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", zeros(-n))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        if k == 1 {
            format!("{digits}e{sign}{}", e.abs())
        } else {
            format!("{}.{}e{sign}{}", &digits[..1], &digits[1..], e.abs())
        }
    }
}

/// JavaScript's `StrWhiteSpaceChar`: white space and line terminators.
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{a}' | '\u{b}' | '\u{c}' | '\u{d}' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// JavaScript's `StringToNumber`: trimmed decimal (with `Infinity`), or
/// unsigned `0x`/`0o`/`0b` integers; empty is 0 and anything else NaN.
fn js_string_to_number(text: &str) -> f64 {
    let text = text.trim_matches(is_js_whitespace);
    if text.is_empty() {
        return 0.0;
    }
    let bytes = text.as_bytes();
    if bytes.len() > 2 && bytes[0] == b'0' {
        let bits = match bytes[1] {
            b'x' | b'X' => Some(4),
            b'o' | b'O' => Some(3),
            b'b' | b'B' => Some(1),
            _ => None,
        };
        if let Some(bits) = bits {
            return parse_power_of_two_radix(&text[2..], bits);
        }
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned == "Infinity" {
        return if text.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    if !is_decimal_literal(unsigned) {
        return f64::NAN;
    }
    // The grammar checked above is a subset of what Rust parses (and Rust's
    // parsing is correctly rounded, as JavaScript's is).
    text.parse().unwrap_or(f64::NAN)
}

/// `StrUnsignedDecimalLiteral` without `Infinity`: `1`, `1.`, `.5`, `1e3`.
fn is_decimal_literal(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(index) => (&text[..index], Some(&text[index + 1..])),
        None => (text, None),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        digits(integer) && digits(fraction) && !(integer.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|exponent| {
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !exponent.is_empty() && digits(exponent)
    });
    mantissa_ok && exponent_ok
}

/// An unsigned integer in base 2, 8 or 16, rounded to the nearest double as
/// JavaScript does however many digits it has.
fn parse_power_of_two_radix(digits: &str, bits_per_digit: u32) -> f64 {
    let radix = 1 << bits_per_digit;
    let mut value: u128 = 0;
    let mut dropped_bits: i32 = 0;
    let mut sticky = false;
    for c in digits.chars() {
        let Some(digit) = c.to_digit(radix) else {
            return f64::NAN;
        };
        if value >> (128 - bits_per_digit) == 0 {
            value = (value << bits_per_digit) | u128::from(digit);
        } else {
            // Far beyond a double's 53 bits: only whether anything was
            // dropped matters for rounding.
            dropped_bits = dropped_bits.saturating_add(i32::try_from(bits_per_digit).unwrap_or(4));
            sticky |= digit != 0;
        }
    }
    if digits.is_empty() {
        return f64::NAN;
    }
    #[allow(clippy::cast_precision_loss)] // the rounding is the point
    let rounded = (value | u128::from(sticky)) as f64;
    rounded * 2f64.powi(dropped_bits)
}

/// GrowthBook's `paddedVersionString`: "v1.2.3-rc.1+build" becomes
/// "    1-    2-    3-rc-    1", so that plain string comparison orders
/// versions (numbers padded to five places; a release's added "~" sorts
/// after any pre-release).
fn padded_version(actual: Actual<'_>) -> String {
    let input: Cow<'_, str> = match actual {
        Actual::Json(Value::Number(n)) => Cow::Owned(js_number_to_string(number(n))),
        Actual::Number(n) => Cow::Owned(js_number_to_string(n)),
        Actual::Json(Value::String(text)) if !text.is_empty() => Cow::Borrowed(text),
        _ => Cow::Borrowed("0"),
    };
    // `replace(/(^v|\+.*$)/g, "")`: `.` stops at line terminators, so the
    // build suffix starts at the first `+` after the last of them.
    let text = input.strip_prefix('v').unwrap_or(&input);
    let last_line = text
        .rfind(['\n', '\r', '\u{2028}', '\u{2029}'])
        .map_or(0, |index| index + 1);
    let text = match text[last_line..].find('+') {
        Some(index) => &text[..last_line + index],
        None => text,
    };
    let mut parts: Vec<&str> = text.split(['-', '.']).collect();
    if parts.len() == 3 {
        parts.push("~");
    }
    parts
        .iter()
        .map(|part| {
            if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                format!("{part:>5}")
            } else {
                (*part).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

// --------------------------------------------------------------- regexes

/// JavaScript regular expressions (non-Unicode mode, with Annex B's web
/// compatibility syntax, as `new RegExp(pattern)` and `new RegExp(pattern,
/// "i")` read them) run on the Rust `regex` crate.
///
/// The pattern is translated, not passed through, because the dialects
/// differ in meaning: JavaScript matches UTF-16 code units, its `\d \w \s \b`
/// and `.` are different sets, `\a` or `\p{L}` are mere identity escapes,
/// `{` is a literal unless it forms a quantifier, and its case-insensitive
/// matching compares upper-case forms (with rules of its own) where Rust
/// folds case. So every atom is turned into the exact set of UTF-16 code
/// units it matches (closed under JavaScript's case canonicalisation for
/// `$regexi`), written as an explicit Rust class, and texts are matched with
/// each unit as one character: astral characters are split into their two
/// surrogates, which are stood in for by private-use characters.
///
/// Refused: lookahead and lookbehind, backreferences (`\1`, `\k<name>`) and
/// legacy octal escapes (`\1` to `\9` and `\0` followed by a digit, whose
/// meaning depends on the number of groups), group modifiers, non-ASCII
/// group names, and syntax errors.
mod js_regex {
    use std::borrow::Cow;
    use std::collections::HashMap;
    use std::fmt::{self, Write as _};
    use std::sync::OnceLock;

    /// How deep groups may nest; keeps the translator's recursion bounded.
    const MAX_DEPTH: usize = 64;

    #[derive(Clone)]
    pub(super) struct JsRegex {
        source: String,
        insensitive: bool,
        regex: regex::Regex,
    }

    impl fmt::Debug for JsRegex {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // The translation is long and unreadable; the source is what
            // anyone debugging a condition wrote.
            let flags = if self.insensitive { "i" } else { "" };
            write!(f, "/{}/{flags}", self.source)
        }
    }

    impl JsRegex {
        pub(super) fn new(pattern: &str, insensitive: bool) -> Result<Self, String> {
            let units: Vec<u16> = pattern.encode_utf16().collect();
            // Annex B: a pattern is first read without named groups, and
            // read again with them (where `\k` is a backreference) if it has
            // any.
            let mut translation = Translator::new(&units, insensitive, false).run()?;
            if translation.named_groups {
                translation = Translator::new(&units, insensitive, true).run()?;
            }
            let regex = regex::Regex::new(&translation.pattern)
                .map_err(|error| format!("the Rust regex crate cannot run it ({error})"))?;
            Ok(Self {
                source: pattern.to_owned(),
                insensitive,
                regex,
            })
        }

        /// `RegExp.prototype.test`.
        pub(super) fn is_match(&self, text: &str) -> bool {
            self.regex.is_match(&as_code_units(text))
        }
    }

    /// The character standing in for a UTF-16 code unit: itself, or for a
    /// surrogate a private-use character no text contains once its astral
    /// characters are split.
    fn unit_char(unit: u16) -> char {
        let code = if (0xD800..=0xDFFF).contains(&unit) {
            0xF_0000 + u32::from(unit - 0xD800)
        } else {
            u32::from(unit)
        };
        char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
    }

    /// `text` with one character per UTF-16 code unit.
    fn as_code_units(text: &str) -> Cow<'_, str> {
        if text.chars().all(|c| u32::from(c) <= 0xFFFF) {
            return Cow::Borrowed(text);
        }
        let mut units = String::with_capacity(text.len() + 8);
        let mut buffer = [0_u16; 2];
        for c in text.chars() {
            for unit in c.encode_utf16(&mut buffer) {
                units.push(unit_char(*unit));
            }
        }
        Cow::Owned(units)
    }

    /// A set of UTF-16 code units.
    #[derive(Clone)]
    struct UnitSet(Box<[u64; 1024]>);

    impl UnitSet {
        fn empty() -> Self {
            Self(Box::new([0; 1024]))
        }

        fn of_ranges(ranges: &[(u16, u16)]) -> Self {
            let mut set = Self::empty();
            for &(low, high) in ranges {
                set.insert_range(low, high);
            }
            set
        }

        fn insert(&mut self, unit: u16) {
            self.0[usize::from(unit >> 6)] |= 1 << (unit & 63);
        }

        fn insert_range(&mut self, low: u16, high: u16) {
            for unit in low..=high {
                self.insert(unit);
            }
        }

        fn contains(&self, unit: u16) -> bool {
            self.0[usize::from(unit >> 6)] & (1 << (unit & 63)) != 0
        }

        fn union(&mut self, other: &Self) {
            for (word, other) in self.0.iter_mut().zip(other.0.iter()) {
                *word |= other;
            }
        }

        fn complement(&mut self) {
            for word in self.0.iter_mut() {
                *word = !*word;
            }
        }

        fn units(&self) -> impl Iterator<Item = u16> + '_ {
            (0..=u16::MAX).filter(|unit| self.contains(*unit))
        }

        /// The set under JavaScript's case-insensitive matching: every unit
        /// whose canonical form is that of a member.
        fn case_closure(&self) -> Self {
            let table = case_table();
            let mut closed = self.clone();
            for unit in self.units() {
                if let Some(members) = table.members.get(&table.canonical[usize::from(unit)]) {
                    for member in members {
                        closed.insert(*member);
                    }
                }
            }
            closed
        }

        /// A Rust class matching the set's stand-in characters.
        fn write_class(&self, out: &mut String) {
            let mut runs = Vec::new();
            let mut start: Option<u16> = None;
            for unit in 0..=u16::MAX {
                let member = self.contains(unit);
                // Runs never cross into or out of the surrogates, whose
                // stand-ins live elsewhere.
                let boundary = unit == 0xD800 || unit == 0xE000;
                if let Some(low) = start
                    && (!member || boundary)
                {
                    runs.push((low, unit - 1));
                    start = None;
                }
                if member && start.is_none() {
                    start = Some(unit);
                }
            }
            if let Some(low) = start {
                runs.push((low, u16::MAX));
            }
            if runs.is_empty() {
                out.push_str(r"[^\x{0}-\x{10FFFF}]");
                return;
            }
            out.push('[');
            for (low, high) in runs {
                write_unit(out, low);
                if high > low {
                    out.push('-');
                    write_unit(out, high);
                }
            }
            out.push(']');
        }
    }

    fn write_unit(out: &mut String, unit: u16) {
        let _ = write!(out, r"\x{{{:X}}}", u32::from(unit_char(unit)));
    }

    /// JavaScript's `Canonicalize` for non-Unicode case-insensitive
    /// patterns, for every code unit, and the units sharing each canonical
    /// form.
    struct CaseTable {
        canonical: Vec<u16>,
        members: HashMap<u16, Vec<u16>>,
    }

    fn case_table() -> &'static CaseTable {
        static TABLE: OnceLock<CaseTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            let canonical: Vec<u16> = (0..=u16::MAX).map(canonicalize).collect();
            let mut members: HashMap<u16, Vec<u16>> = HashMap::new();
            for (unit, canon) in (0..=u16::MAX).zip(canonical.iter()) {
                members.entry(*canon).or_default().push(unit);
            }
            members.retain(|_, units| units.len() > 1);
            CaseTable { canonical, members }
        })
    }

    /// The upper-case form of `unit` when it is a single code unit, except
    /// that nothing outside ASCII canonicalises into ASCII (so `ſ` is not
    /// `s`, and the Kelvin sign is not `k`).
    fn canonicalize(unit: u16) -> u16 {
        let Some(c) = char::from_u32(u32::from(unit)) else {
            return unit; // a surrogate
        };
        let upper: String = c.to_uppercase().collect();
        let mut upper_units = upper.encode_utf16();
        match (upper_units.next(), upper_units.next()) {
            (Some(upper), None) if !(unit >= 128 && upper < 128) => upper,
            _ => unit,
        }
    }

    fn ranges_set(ranges: &[(u16, u16)], negated: bool) -> UnitSet {
        let mut set = UnitSet::of_ranges(ranges);
        if negated {
            set.complement();
        }
        set
    }

    /// `\d \D \w \W \s \S`, with JavaScript's (ASCII and JS-specific) sets.
    fn class_escape_set(letter: u16) -> Option<UnitSet> {
        const DIGIT: &[(u16, u16)] = &[(0x30, 0x39)];
        const WORD: &[(u16, u16)] = &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];
        const SPACE: &[(u16, u16)] = &[
            (0x09, 0x0D),
            (0x20, 0x20),
            (0xA0, 0xA0),
            (0x1680, 0x1680),
            (0x2000, 0x200A),
            (0x2028, 0x2029),
            (0x202F, 0x202F),
            (0x205F, 0x205F),
            (0x3000, 0x3000),
            (0xFEFF, 0xFEFF),
        ];
        let set = match char::from_u32(u32::from(letter))? {
            'd' => ranges_set(DIGIT, false),
            'D' => ranges_set(DIGIT, true),
            'w' => ranges_set(WORD, false),
            'W' => ranges_set(WORD, true),
            's' => ranges_set(SPACE, false),
            'S' => ranges_set(SPACE, true),
            _ => return None,
        };
        Some(set)
    }

    /// `.`: any code unit but a line terminator.
    fn dot_set() -> UnitSet {
        ranges_set(&[(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)], true)
    }

    /// What an escape stands for.
    enum Escaped {
        Unit(u16),
        Set(UnitSet),
    }

    struct Translation {
        pattern: String,
        named_groups: bool,
    }

    struct Translator<'a> {
        units: &'a [u16],
        pos: usize,
        insensitive: bool,
        /// Annex B's `[+NamedCaptureGroups]`: `\k` is then a backreference.
        named_groups_mode: bool,
        group_names: Vec<&'a [u16]>,
        depth: usize,
        out: String,
    }

    /// An ASCII character as a code unit.
    fn unit(c: char) -> u16 {
        u16::try_from(c).unwrap_or(u16::MAX)
    }

    /// A code unit as an ASCII byte, NUL for anything else (which no
    /// `is_ascii_*` test accepts).
    fn ascii(unit: u16) -> u8 {
        u8::try_from(unit).unwrap_or(0)
    }

    fn is_hex(unit: u16) -> bool {
        char::from_u32(u32::from(unit)).is_some_and(|c| c.is_ascii_hexdigit())
    }

    fn hex_value(units: &[u16]) -> u16 {
        units.iter().fold(0, |value, digit| {
            let digit = char::from_u32(u32::from(*digit))
                .and_then(|c| c.to_digit(16))
                .and_then(|d| u16::try_from(d).ok())
                .unwrap_or(0);
            (value << 4) | digit
        })
    }

    fn is_ascii_letter(unit: u16) -> bool {
        ascii(unit).is_ascii_alphabetic()
    }

    /// A braced quantifier `{n}`, `{n,}` or `{n,m}` starting at `at`: its
    /// bounds (`None` for unbounded) and where it ends.
    struct Braced<'a> {
        min: &'a [u16],
        max: Option<&'a [u16]>,
        exact: bool,
        end: usize,
    }

    impl<'a> Translator<'a> {
        fn new(units: &'a [u16], insensitive: bool, named_groups_mode: bool) -> Self {
            Self {
                units,
                pos: 0,
                insensitive,
                named_groups_mode,
                group_names: Vec::new(),
                depth: 0,
                out: String::new(),
            }
        }

        fn run(mut self) -> Result<Translation, String> {
            self.disjunction()?;
            if self.pos < self.units.len() {
                return Err(format!("unmatched `)` at position {}", self.pos));
            }
            if self.out.is_empty() {
                self.out.push_str("(?:)");
            }
            Ok(Translation {
                pattern: self.out,
                named_groups: !self.group_names.is_empty(),
            })
        }

        fn peek_at(&self, offset: usize) -> Option<u16> {
            self.units.get(self.pos + offset).copied()
        }

        fn peek(&self) -> Option<u16> {
            self.peek_at(0)
        }

        fn starts_with(&self, prefix: &str) -> bool {
            prefix
                .encode_utf16()
                .enumerate()
                .all(|(offset, expected)| self.peek_at(offset) == Some(expected))
        }

        fn disjunction(&mut self) -> Result<(), String> {
            loop {
                self.alternative()?;
                if self.peek() == Some(unit('|')) {
                    self.pos += 1;
                    self.out.push('|');
                } else {
                    return Ok(());
                }
            }
        }

        fn alternative(&mut self) -> Result<(), String> {
            while let Some(next) = self.peek() {
                if next == unit('|') || next == unit(')') {
                    break;
                }
                self.term()?;
            }
            Ok(())
        }

        fn term(&mut self) -> Result<(), String> {
            if self.starts_with("(?=")
                || self.starts_with("(?!")
                || self.starts_with("(?<=")
                || self.starts_with("(?<!")
            {
                return Err(
                    "lookahead and lookbehind are not supported by the Rust regex crate".to_owned(),
                );
            }
            let assertion = if self.starts_with("^") {
                Some((1, "^"))
            } else if self.starts_with("$") {
                Some((1, "$"))
            } else if self.starts_with(r"\b") {
                // JavaScript's word characters are ASCII ones.
                Some((2, r"(?-u:\b)"))
            } else if self.starts_with(r"\B") {
                Some((2, r"(?-u:\B)"))
            } else {
                None
            };
            if let Some((length, translation)) = assertion {
                self.pos += length;
                self.out.push_str(translation);
                return self.refuse_quantifier();
            }
            self.atom()?;
            self.quantifier()
        }

        fn braced(&self, at: usize) -> Option<Braced<'a>> {
            let units = self.units;
            if units.get(at) != Some(&unit('{')) {
                return None;
            }
            let digits_from = |start: usize| {
                let end = (start..units.len())
                    .find(|&i| !ascii(units[i]).is_ascii_digit())
                    .unwrap_or(units.len());
                (end > start).then_some(end)
            };
            let min_end = digits_from(at + 1)?;
            let min = &units[at + 1..min_end];
            match units.get(min_end).copied() {
                Some(u) if u == unit('}') => Some(Braced {
                    min,
                    max: None,
                    exact: true,
                    end: min_end + 1,
                }),
                Some(u) if u == unit(',') => {
                    if units.get(min_end + 1) == Some(&unit('}')) {
                        return Some(Braced {
                            min,
                            max: None,
                            exact: false,
                            end: min_end + 2,
                        });
                    }
                    let max_end = digits_from(min_end + 1)?;
                    (units.get(max_end) == Some(&unit('}'))).then(|| Braced {
                        min,
                        max: Some(&units[min_end + 1..max_end]),
                        exact: false,
                        end: max_end + 1,
                    })
                }
                _ => None,
            }
        }

        fn at_quantifier(&self) -> bool {
            matches!(self.peek(), Some(u) if u == unit('*') || u == unit('+') || u == unit('?'))
                || self.braced(self.pos).is_some()
        }

        fn refuse_quantifier(&self) -> Result<(), String> {
            if self.at_quantifier() {
                Err(format!("nothing to repeat at position {}", self.pos))
            } else {
                Ok(())
            }
        }

        fn quantifier(&mut self) -> Result<(), String> {
            match self.peek() {
                Some(u) if u == unit('*') || u == unit('+') || u == unit('?') => {
                    self.out.push(char::from(u8::try_from(u).unwrap_or(b'?')));
                    self.pos += 1;
                }
                Some(_) => {
                    let Some(braced) = self.braced(self.pos) else {
                        return Ok(());
                    };
                    let bound = |digits: &[u16]| {
                        String::from_utf16_lossy(digits)
                            .parse::<u32>()
                            .map_err(|_| "a quantifier bound is too large".to_owned())
                    };
                    let min = bound(braced.min)?;
                    let _ = match (braced.exact, braced.max) {
                        (true, _) => write!(self.out, "{{{min}}}"),
                        (false, None) => write!(self.out, "{{{min},}}"),
                        (false, Some(max)) => {
                            let max = bound(max)?;
                            if max < min {
                                return Err("numbers out of order in a {} quantifier".to_owned());
                            }
                            write!(self.out, "{{{min},{max}}}")
                        }
                    };
                    self.pos = braced.end;
                }
                None => return Ok(()),
            }
            if self.peek() == Some(unit('?')) {
                self.out.push('?');
                self.pos += 1;
            }
            self.refuse_quantifier()
        }

        fn atom(&mut self) -> Result<(), String> {
            let Some(next) = self.peek() else {
                return Ok(());
            };
            match char::from_u32(u32::from(next)) {
                Some('.') => {
                    self.pos += 1;
                    self.emit_set(&dot_set());
                }
                Some('(') => self.group()?,
                Some('[') => self.class()?,
                Some('*' | '+' | '?') => {
                    return Err(format!("nothing to repeat at position {}", self.pos));
                }
                Some('{') if self.braced(self.pos).is_some() => {
                    return Err(format!("nothing to repeat at position {}", self.pos));
                }
                Some('\\') => match self.escape(false)? {
                    Escaped::Unit(unit) => self.emit_unit(unit),
                    Escaped::Set(set) => self.emit_set(&set),
                },
                // Annex B: `]`, `{` and `}` are literals too.
                _ => {
                    self.pos += 1;
                    self.emit_unit(next);
                }
            }
            Ok(())
        }

        fn group(&mut self) -> Result<(), String> {
            if self.depth >= MAX_DEPTH {
                return Err("groups are nested too deeply".to_owned());
            }
            if self.starts_with("(?:") {
                self.pos += 3;
            } else if self.starts_with("(?<") {
                self.pos += 3;
                let start = self.pos;
                while self.peek().is_some_and(|u| u != unit('>')) {
                    self.pos += 1;
                }
                let name = &self.units[start..self.pos];
                let valid = name.first().is_some_and(|&first| {
                    ascii(first).is_ascii_alphabetic() || first == unit('_') || first == unit('$')
                }) && name
                    .iter()
                    .all(|&u| ascii(u).is_ascii_alphanumeric() || u == unit('_') || u == unit('$'));
                if self.peek().is_none() || !valid {
                    return Err("unsupported or invalid group name".to_owned());
                }
                if self.group_names.contains(&name) {
                    return Err("duplicate group name".to_owned());
                }
                self.group_names.push(name);
                self.pos += 1;
            } else if self.starts_with("(?") {
                return Err("unsupported group syntax `(?`".to_owned());
            } else {
                self.pos += 1;
            }
            // Captures are never read: every group becomes non-capturing.
            self.out.push_str("(?:");
            self.depth += 1;
            self.disjunction()?;
            self.depth -= 1;
            if self.peek() != Some(unit(')')) {
                return Err("unterminated group".to_owned());
            }
            self.pos += 1;
            self.out.push(')');
            Ok(())
        }

        /// An escape at `\`; `in_class` for Annex B's `ClassEscape`. A `\`
        /// before a `c` that starts no control escape is a literal
        /// backslash, leaving the `c` to be read next.
        fn escape(&mut self, in_class: bool) -> Result<Escaped, String> {
            let Some(letter) = self.peek_at(1) else {
                return Err(r"`\` at the end of the pattern".to_owned());
            };
            let c = char::from_u32(u32::from(letter));
            if let Some(set) = class_escape_set(letter) {
                self.pos += 2;
                return Ok(Escaped::Set(set));
            }
            let unit = match c {
                Some('b') if in_class => 0x08,
                Some('f') => 0x0C,
                Some('n') => 0x0A,
                Some('r') => 0x0D,
                Some('t') => 0x09,
                Some('v') => 0x0B,
                Some('c') => match self.peek_at(2) {
                    Some(control)
                        if is_ascii_letter(control)
                            || (in_class
                                && (ascii(control).is_ascii_digit() || control == unit('_'))) =>
                    {
                        self.pos += 3;
                        return Ok(Escaped::Unit(control % 32));
                    }
                    _ => {
                        self.pos += 1;
                        return Ok(Escaped::Unit(unit('\\')));
                    }
                },
                Some('0') if !self.peek_at(2).is_some_and(|u| ascii(u).is_ascii_digit()) => 0,
                Some('0'..='9') => {
                    return Err(
                        "backreferences and legacy octal escapes (`\\1`…) are not supported"
                            .to_owned(),
                    );
                }
                Some('k') if self.named_groups_mode => {
                    return Err("backreferences (`\\k<name>`) are not supported".to_owned());
                }
                Some('x') if (2..4).all(|i| self.peek_at(i).is_some_and(is_hex)) => {
                    let value = hex_value(&self.units[self.pos + 2..self.pos + 4]);
                    self.pos += 4;
                    return Ok(Escaped::Unit(value));
                }
                Some('u') if (2..6).all(|i| self.peek_at(i).is_some_and(is_hex)) => {
                    let value = hex_value(&self.units[self.pos + 2..self.pos + 6]);
                    self.pos += 6;
                    return Ok(Escaped::Unit(value));
                }
                // Identity escape: `\a` is `a`, `\/` is `/`, `\x` alone `x`.
                _ => letter,
            };
            self.pos += 2;
            Ok(Escaped::Unit(unit))
        }

        fn class(&mut self) -> Result<(), String> {
            self.pos += 1;
            let negated = self.peek() == Some(unit('^'));
            if negated {
                self.pos += 1;
            }
            let mut set = UnitSet::empty();
            loop {
                match self.peek() {
                    None => return Err("unterminated character class".to_owned()),
                    Some(u) if u == unit(']') => {
                        self.pos += 1;
                        break;
                    }
                    Some(_) => {}
                }
                let first = self.class_atom()?;
                let is_range = self.peek() == Some(unit('-'))
                    && self.peek_at(1).is_some_and(|u| u != unit(']'));
                if !is_range {
                    add(&mut set, first);
                    continue;
                }
                self.pos += 1;
                let last = self.class_atom()?;
                match (first, last) {
                    (Escaped::Unit(low), Escaped::Unit(high)) => {
                        if low > high {
                            return Err("range out of order in character class".to_owned());
                        }
                        set.insert_range(low, high);
                    }
                    // Annex B: a class escape at either end makes the `-`
                    // a literal.
                    (first, last) => {
                        add(&mut set, first);
                        set.insert(unit('-'));
                        add(&mut set, last);
                    }
                }
            }
            // A negated class matches what no member matches, so the case
            // closure comes before the complement.
            if self.insensitive {
                set = set.case_closure();
            }
            if negated {
                set.complement();
            }
            set.write_class(&mut self.out);
            Ok(())
        }

        fn class_atom(&mut self) -> Result<Escaped, String> {
            match self.peek() {
                Some(u) if u == unit('\\') => self.escape(true),
                Some(u) => {
                    self.pos += 1;
                    Ok(Escaped::Unit(u))
                }
                None => Err("unterminated character class".to_owned()),
            }
        }

        fn emit_unit(&mut self, unit: u16) {
            if self.insensitive {
                let table = case_table();
                if let Some(members) = table.members.get(&table.canonical[usize::from(unit)]) {
                    let mut set = UnitSet::empty();
                    for member in members {
                        set.insert(*member);
                    }
                    set.write_class(&mut self.out);
                    return;
                }
            }
            write_unit(&mut self.out, unit);
        }

        fn emit_set(&mut self, set: &UnitSet) {
            if self.insensitive {
                set.case_closure().write_class(&mut self.out);
            } else {
                set.write_class(&mut self.out);
            }
        }
    }

    fn add(set: &mut UnitSet, escaped: Escaped) {
        match escaped {
            Escaped::Unit(unit) => set.insert(unit),
            Escaped::Set(other) => set.union(&other),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::JsRegex;

        fn test(pattern: &str, text: &str) -> bool {
            JsRegex::new(pattern, false)
                .unwrap_or_else(|error| panic!("{pattern}: {error}"))
                .is_match(text)
        }

        fn test_i(pattern: &str, text: &str) -> bool {
            JsRegex::new(pattern, true)
                .unwrap_or_else(|error| panic!("{pattern}: {error}"))
                .is_match(text)
        }

        #[test]
        fn shorthand_classes_are_javascripts_not_unicodes() {
            assert!(!test(r"\d", "٣")); // Arabic-Indic digit
            assert!(!test(r"\w", "é"));
            assert!(test(r"\s", "\u{feff}"));
            assert!(!test(r"\s", "\u{85}"));
            assert!(!test(r"\bé", " é"));
        }

        #[test]
        fn dot_stops_at_every_javascript_line_terminator() {
            assert!(!test("^.$", "\r"));
            assert!(!test("^.$", "\u{2028}"));
            assert!(test("^.$", "\u{85}"));
        }

        #[test]
        fn matching_is_per_utf16_code_unit() {
            assert!(!test("^.$", "😀"));
            assert!(test("^..$", "😀"));
            assert!(test(r"^\uD83D\uDE00$", "😀"));
            assert!(test("^[😀]{2}$", "😀"));
            assert!(test("^[^a]+$", "😀"));
        }

        #[test]
        fn annex_b_syntax_reads_as_in_browsers() {
            assert!(test(r"^\a$", "a"));
            assert!(test(r"^a{,5}$", "a{,5}"));
            assert!(test(r"^\p{L}$", "p{L}"));
            assert!(test(r"^\u{2}$", "uu"));
            assert!(test(r"^\c1$", "\\c1"));
            assert!(test(r"^[\c1]$", "\u{11}"));
            assert!(test(r"^\x4$", "x4"));
            assert!(test(r"^]}$", "]}"));
            assert!(test(r"^[\d-z]+$", "1-z"));
            assert!(test(r"^[]$|^x$", "x"));
            assert!(test(r"^[^]$", "\n"));
            assert!(test(r"^a\/b$", "a/b"));
            assert!(test(r"^\k$", "k"));
        }

        #[test]
        fn case_insensitivity_follows_javascripts_canonicalisation() {
            assert!(test_i("^straße$", "STRAßE"));
            assert!(!test_i("^s$", "ſ"));
            assert!(!test_i("^k$", "\u{212a}"));
            assert!(test_i("^σ$", "ς"));
            assert!(test_i("^[a-c]+$", "AbC"));
            assert!(!test_i("^[^a]$", "A"));
            assert!(test_i(r"^\w$", "Z"));
        }

        #[test]
        fn unsupported_or_invalid_patterns_are_refused() {
            for pattern in [
                "a(?=b)",
                "(?<!a)b",
                r"(a)\1",
                r"(?<x>a)\k<x>",
                r"\01",
                "/???***[)",
                "a**",
                "*a",
                "{1}",
                "^*",
                "(a",
                "a)",
                "[b-a]",
                "a{2,1}",
                "[a",
                "\\",
                "(?i)a",
            ] {
                assert!(JsRegex::new(pattern, false).is_err(), "{pattern}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_error(condition: &Value) -> ConditionError {
        match Condition::parse(condition) {
            Ok(parsed) => panic!("{condition} parsed as {parsed:?}"),
            Err(error) => error,
        }
    }

    fn matches(condition: &Value, attributes: &Value) -> bool {
        Condition::parse(condition)
            .unwrap_or_else(|error| panic!("{condition}: {error}"))
            .matches(attributes)
    }

    #[test]
    fn refuses_an_unknown_operator_naming_its_path() {
        let error = parse_error(&json!({"name": {"$regx": "hello"}}));
        assert_eq!(error.path, "name.$regx");
        assert_eq!(error.message, "unknown operator `$regx`");
        assert_eq!(error.to_string(), "name.$regx: unknown operator `$regx`");
    }

    #[test]
    fn refuses_an_invalid_regex_naming_its_path_inside_or() {
        let error = parse_error(&json!({"$or": [{"a": 1}, {"country": {"$regex": "(fr|be"}}]}));
        assert_eq!(error.path, "$or[1].country.$regex");
        assert!(
            error
                .message
                .starts_with("invalid or unsupported regular expression"),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_lookahead_the_rust_regex_crate_cannot_run() {
        let error = parse_error(&json!({"ua": {"$regex": "Chrome(?!.*Edge)"}}));
        assert_eq!(error.path, "ua.$regex");
        assert!(error.message.contains("lookahead"), "{error}");
    }

    #[test]
    fn refuses_in_without_an_array() {
        let error = parse_error(&json!({"num": {"$in": 1}}));
        assert_eq!(error.path, "num.$in");
        assert_eq!(
            error.message,
            "`$in` takes an array of values, found a number"
        );
    }

    #[test]
    fn refuses_an_object_inside_in_naming_its_index() {
        let error = parse_error(&json!({"tags": {"$nin": ["a", {"b": 1}]}}));
        assert_eq!(error.path, "tags.$nin[1]");
    }

    #[test]
    fn refuses_and_without_an_array() {
        let error = parse_error(&json!({"$and": {"a": 1}}));
        assert_eq!(error.path, "$and");
        assert_eq!(
            error.message,
            "`$and` takes an array of conditions, found an object"
        );
    }

    #[test]
    fn refuses_a_non_object_inside_not_and_lists() {
        assert_eq!(parse_error(&json!({"$not": "a"})).path, "$not");
        assert_eq!(parse_error(&json!({"$nor": [{}, 3]})).path, "$nor[1]");
    }

    #[test]
    fn refuses_size_with_a_string() {
        let error = parse_error(&json!({"tags": {"$size": "3"}}));
        assert_eq!(error.path, "tags.$size");
        assert!(
            error.message.starts_with("`$size` takes a number"),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_value_operator_at_condition_level() {
        let error = parse_error(&json!({"$in": [1, 2]}));
        assert_eq!(error.path, "$in");
    }

    #[test]
    fn refuses_mixed_operators_and_keys() {
        let error = parse_error(&json!({"age": {"$gt": 1, "lt": 5}}));
        assert_eq!(error.path, "age");
    }

    #[test]
    fn refuses_a_literal_object_whose_key_order_would_matter() {
        let error = parse_error(&json!({"tags": [{"a": 1, "b": 2}]}));
        assert_eq!(error.path, "tags[0]");
    }

    #[test]
    fn refuses_wrong_operand_types_with_their_kind() {
        assert_eq!(
            parse_error(&json!({"a": {"$exists": "yes"}})).message,
            "`$exists` takes true or false, found a string"
        );
        assert_eq!(parse_error(&json!({"a": {"$gt": [1]}})).path, "a.$gt");
        assert_eq!(parse_error(&json!({"a": {"$eq": {"b": 1}}})).path, "a.$eq");
        assert_eq!(parse_error(&json!({"a": {"$type": "int"}})).path, "a.$type");
        assert_eq!(
            parse_error(&json!({"a": {"$type": "undefined"}})).path,
            "a.$type"
        );
        assert_eq!(parse_error(&json!({"a": {"$vgt": true}})).path, "a.$vgt");
        assert_eq!(
            parse_error(&json!({"a": {"$elemMatch": 1}})).path,
            "a.$elemMatch"
        );
        assert_eq!(parse_error(&json!({"a": {"$or": []}})).path, "a.$or");
        assert_eq!(
            parse_error(&json!({"a": {"$inGroup": 3}})).path,
            "a.$inGroup"
        );
        assert_eq!(parse_error(&json!({"a.__proto__": 1})).path, "a.__proto__");
    }

    #[test]
    fn refuses_a_condition_that_is_not_an_object() {
        let error = parse_error(&json!(["a"]));
        assert_eq!(error.path, "");
        assert_eq!(
            error.to_string(),
            "expected a condition object, found an array"
        );
    }

    #[test]
    fn coerces_like_javascript() {
        // `null * 1 === 0`, `String(null) === "null"`.
        assert!(matches(&json!({"missing": 0}), &json!({})));
        assert!(matches(&json!({"missing": "null"}), &json!({})));
        assert!(matches(&json!({"n": 5}), &json!({"n": [" 5 "]})));
        assert!(matches(&json!({"n": 255}), &json!({"n": "0xff"})));
        assert!(matches(&json!({"n": "1e+21"}), &json!({"n": 1e21})));
        assert!(matches(&json!({"n": "0.000001"}), &json!({"n": 1e-6})));
        assert!(matches(&json!({"n": "1e-7"}), &json!({"n": 1e-7})));
        assert!(matches(
            &json!({"n": {"$regex": "^1,2$"}}),
            &json!({"n": [1, 2]})
        ));
        assert!(matches(&json!({"o": "[object Object]"}), &json!({"o": {}})));
        assert!(!matches(&json!({"n": {"$gt": 5}}), &json!({"n": "five"})));
        assert!(!matches(&json!({"n": {"$lte": 5}}), &json!({"n": "five"})));
    }

    #[test]
    fn follows_javascript_in_lookups() {
        assert!(matches(
            &json!({"tags.length": 2}),
            &json!({"tags": ["a", "b"]})
        ));
        assert!(matches(
            &json!({"tags.1": "b"}),
            &json!({"tags": ["a", "b"]})
        ));
        assert!(matches(
            &json!({"tags.01": null}),
            &json!({"tags": ["a", "b"]})
        ));
        assert!(matches(
            &json!({"user.toString": {"$exists": true}}),
            &json!({"user": {}})
        ));
        assert!(matches(
            &json!({"user.toString": {"$type": "null"}}),
            &json!({"user": "x"})
        ));
        assert!(matches(
            &json!({"tags.map": "function map() { [native code] }"}),
            &json!({"tags": []})
        ));
    }

    #[test]
    fn pads_versions_like_growthbook() {
        assert_eq!(
            padded_version(Actual::Json(&json!("v1.2.3+build"))),
            "    1-    2-    3-~"
        );
        assert_eq!(
            padded_version(Actual::Json(&json!("1.0.0-rc.1"))),
            "    1-    0-    0-rc-    1"
        );
        assert_eq!(padded_version(Actual::Json(&json!(2))), "    2");
        assert_eq!(padded_version(Actual::Json(&json!(null))), "    0");
        assert_eq!(padded_version(Actual::Json(&json!(""))), "    0");
    }

    #[test]
    fn formats_numbers_like_javascript() {
        for (value, text) in [
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1.5e-7, "1.5e-7"),
            (-0.0, "0"),
            (-2.5, "-2.5"),
            (5e-324, "5e-324"),
            // Two 16-digit strings round-trip; JavaScript prints the closer.
            (-862_953_064_497_560.2, "-862953064497560.2"),
            (18_009_751_182_130.312, "18009751182130.312"),
        ] {
            assert_eq!(js_number_to_string(value), text);
        }
    }

    #[test]
    fn parses_strings_to_numbers_like_javascript() {
        for (text, value) in [
            ("", 0.0),
            ("  12  ", 12.0),
            ("1.", 1.0),
            (".5", 0.5),
            ("-.5e1", -5.0),
            ("+Infinity", f64::INFINITY),
            ("0b101", 5.0),
            ("0o17", 15.0),
            ("0x1fffffffffffff1", 144_115_188_075_855_860.0),
        ] {
            assert_eq!(js_string_to_number(text), value, "{text:?}");
        }
        for text in [
            "abc",
            "1_000",
            "0x",
            "-0x1",
            "inf",
            "1e",
            ".",
            "1.2.3",
            "Infinityx",
        ] {
            assert!(js_string_to_number(text).is_nan(), "{text:?}");
        }
    }

    #[test]
    fn saved_groups_are_passed_at_match_time() {
        let condition = Condition::parse(&json!({"id": {"$inGroup": "beta"}})).expect("valid");
        let groups = SavedGroups::from([("beta".to_owned(), vec![json!(1), json!("2")])]);
        assert!(condition.matches_with_saved_groups(&json!({"id": "2"}), &groups));
        assert!(!condition.matches_with_saved_groups(&json!({"id": 2}), &groups));
        assert!(!condition.matches(&json!({"id": 1})));
    }
}
