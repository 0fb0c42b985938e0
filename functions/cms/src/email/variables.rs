//! The variables a template declares (`variables`), and the model a render
//! fills them with.
//!
//! Each declaration is `{name, required, type, example, description}`:
//! - `name` is an identifier (`firstName`, `deal_url`): letters, digits and
//!   `_`, not starting with a digit, and not a helper's or a keyword's name
//!   (`{{each}}` or `{{this}}` would not mean the variable);
//! - `required` (default `true`): a render without it is a 422 naming
//!   `model.<name>`, never an empty string where a name should be;
//! - `type` (default `string`): `string`, `number`, `boolean`, `url` (an
//!   http(s) URL), `date` (`2025-05-01` or RFC 3339), `list` (an array,
//!   what `#each` walks) or `object` (what `{{trip.city}}` reads);
//! - `example`: a value of that type, used for test sends and previews.
//!
//! An optional variable that a model leaves out is `null` (empty text,
//! false for `#if`), or an empty list for a `list` (nothing for `#each`,
//! its `{{else}}` if it has one).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::template::HELPERS;

/// Most variables one template declares.
pub const MAX_VARIABLES: usize = 100;
const MAX_NAME_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 500;

/// Names that a template cannot mean as a variable.
const KEYWORDS: &[&str] = &["this", "else", "as", "true", "false", "null", "root"];

/// A problem with a field, as a path (`variables[2].name`) and the rule it
/// broke; the handlers make it a 400 (declarations) or a 422 (models).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub rule: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// What a variable holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VariableType {
    #[default]
    String,
    Number,
    Boolean,
    Url,
    Date,
    List,
    Object,
}

impl VariableType {
    fn describe(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Number => "a number",
            Self::Boolean => "true or false",
            Self::Url => "an http or https URL",
            Self::Date => "a date (2025-05-01) or an RFC 3339 date-time",
            Self::List => "a list (a JSON array)",
            Self::Object => "an object",
        }
    }

    /// Whether `value` is of this type.
    pub fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (Self::String, Value::String(_))
            | (Self::Number, Value::Number(_))
            | (Self::Boolean, Value::Bool(_))
            | (Self::List, Value::Array(_))
            | (Self::Object, Value::Object(_)) => true,
            (Self::Url, Value::String(text)) => url::Url::parse(text)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()),
            (Self::Date, Value::String(text)) => {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
                    || chrono::DateTime::parse_from_rfc3339(text).is_ok()
            }
            _ => false,
        }
    }
}

/// One declared variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Variable {
    pub name: String,
    #[serde(default = "required_by_default")]
    pub required: bool,
    #[serde(default, rename = "type")]
    pub kind: VariableType,
    /// A value of the type: what test sends and previews use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub example: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn required_by_default() -> bool {
    true
}

/// A variable's name is an identifier a template can reach with `{{name}}`.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.len() > MAX_NAME_CHARS
    {
        return Err(format!(
            "must be 1-{MAX_NAME_CHARS} ASCII letters, digits or _, not starting with a digit (like firstName)"
        ));
    }
    if KEYWORDS.contains(&name) || HELPERS.contains(&name) {
        return Err(format!(
            "cannot be {name:?}: a template would read it as a keyword or a helper"
        ));
    }
    Ok(())
}

/// `value` (the `variables` field) as checked declarations.
pub fn parse_declarations(value: &Value) -> Result<Vec<Variable>, FieldError> {
    let Value::Array(items) = value else {
        return Err(FieldError::new(
            "variables",
            "must be an array of {name, required, type, example}",
        ));
    };
    if items.len() > MAX_VARIABLES {
        return Err(FieldError::new(
            "variables",
            format!("must declare at most {MAX_VARIABLES} variables"),
        ));
    }
    let mut variables: Vec<Variable> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("variables[{i}]");
        let variable: Variable = serde_json::from_value(item.clone()).map_err(|e| {
            FieldError::new(
                &at,
                format!("must be {{name, required?, type?, example?, description?}} with type string, number, boolean, url, date, list or object: {e}"),
            )
        })?;
        check_name(&variable.name).map_err(|rule| FieldError::new(format!("{at}.name"), rule))?;
        if variables.iter().any(|v| v.name == variable.name) {
            return Err(FieldError::new(
                format!("{at}.name"),
                format!("declares {:?} a second time", variable.name),
            ));
        }
        if let Some(example) = &variable.example
            && !example.is_null()
            && !variable.kind.admits(example)
        {
            return Err(FieldError::new(
                format!("{at}.example"),
                format!("must be {}, as its type says", variable.kind.describe()),
            ));
        }
        if let Some(description) = &variable.description
            && description.chars().count() > MAX_DESCRIPTION_CHARS
        {
            return Err(FieldError::new(
                format!("{at}.description"),
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        variables.push(variable);
    }
    Ok(variables)
}

/// Declarations as stored, read leniently: a row the other application
/// wrote may list bare names (`["firstName"]`), read as required strings;
/// entries that are neither a name nor a declaration are skipped.
pub fn stored_declarations(value: &Value) -> Vec<Variable> {
    if let Ok(variables) = parse_declarations(value) {
        return variables;
    }
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::String(name) => Some(Variable {
                name: name.clone(),
                required: true,
                kind: VariableType::String,
                example: None,
                description: None,
            }),
            other => serde_json::from_value(other.clone()).ok(),
        })
        .collect()
}

/// The model a render gets: each declared variable from `given`, checked
/// against its type; an optional one that is absent is `null`. Values the
/// declarations do not name are left out, so a template sees only what it
/// declared.
pub fn model(variables: &[Variable], given: &Map<String, Value>) -> Result<Value, FieldError> {
    let mut model = Map::with_capacity(variables.len());
    for variable in variables {
        let field = format!("model.{}", variable.name);
        match given.get(&variable.name) {
            None | Some(Value::Null) if variable.required => {
                return Err(FieldError::new(
                    field,
                    format!(
                        "is required by the template ({}), and missing",
                        variable.kind.describe()
                    ),
                ));
            }
            // Strict mode refuses `#each` over null: an absent list is an
            // empty one.
            None | Some(Value::Null) if variable.kind == VariableType::List => {
                model.insert(variable.name.clone(), Value::Array(Vec::new()));
            }
            None | Some(Value::Null) => {
                model.insert(variable.name.clone(), Value::Null);
            }
            Some(value) if !variable.kind.admits(value) => {
                return Err(FieldError::new(
                    field,
                    format!(
                        "must be {}, as the template declares",
                        variable.kind.describe()
                    ),
                ));
            }
            Some(value) => {
                model.insert(variable.name.clone(), value.clone());
            }
        }
    }
    Ok(Value::Object(model))
}

/// The declared examples as a model (what a test send uses when none is
/// given).
pub fn example_model(variables: &[Variable]) -> Map<String, Value> {
    variables
        .iter()
        .filter_map(|v| Some((v.name.clone(), v.example.clone()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn declared(value: Value) -> Vec<Variable> {
        parse_declarations(&value).expect("valid declarations")
    }

    #[test]
    fn declarations_default_to_a_required_string() {
        let variables = declared(json!([{"name": "firstName"}]));
        assert_eq!(variables[0].kind, VariableType::String);
        assert!(variables[0].required);
    }

    #[test]
    fn a_declaration_names_the_entry_at_fault() {
        let error =
            parse_declarations(&json!([{"name": "a"}, {"name": "2fast"}])).expect_err("bad");
        assert_eq!(error.field, "variables[1].name");
        let error = parse_declarations(&json!([{"name": "a"}, {"name": "a"}])).expect_err("twice");
        assert_eq!(error.field, "variables[1].name");
        let error =
            parse_declarations(&json!([{"name": "a", "type": "colour"}])).expect_err("type");
        assert_eq!(error.field, "variables[0]");
        let error = parse_declarations(&json!({"name": "a"})).expect_err("shape");
        assert_eq!(error.field, "variables");
    }

    #[test]
    fn helper_names_and_keywords_cannot_be_variables() {
        for name in ["each", "if", "this", "lookup", "else"] {
            let error = parse_declarations(&json!([{ "name": name }])).expect_err(name);
            assert_eq!(error.field, "variables[0].name", "{name}");
        }
    }

    #[test]
    fn an_example_must_be_of_its_declared_type() {
        let error =
            parse_declarations(&json!([{"name": "price", "type": "number", "example": "12"}]))
                .expect_err("string for a number");
        assert_eq!(error.field, "variables[0].example");
        assert!(
            parse_declarations(&json!([{"name": "price", "type": "number", "example": 12.5}]))
                .is_ok()
        );
    }

    #[test]
    fn types_admit_only_their_values() {
        use VariableType::*;
        assert!(Url.admits(&json!("https://deals.example/lisbon")));
        assert!(!Url.admits(&json!("javascript:alert(1)")));
        assert!(!Url.admits(&json!("deals.example")));
        assert!(Date.admits(&json!("2025-05-01")));
        assert!(Date.admits(&json!("2025-05-01T10:00:00Z")));
        assert!(!Date.admits(&json!("01/05/2025")));
        assert!(Number.admits(&json!(3)));
        assert!(!Number.admits(&json!("3")));
        assert!(Boolean.admits(&json!(false)));
        assert!(List.admits(&json!([1, 2])));
        assert!(!List.admits(&json!({"a": 1})));
        assert!(Object.admits(&json!({"a": 1})));
        assert!(String.admits(&json!("")));
        assert!(!String.admits(&json!(1)));
    }

    #[test]
    fn stored_bare_names_read_as_required_strings() {
        let variables =
            stored_declarations(&json!(["firstName", 3, {"name": "nights", "type": "number"}]));
        let names: Vec<&str> = variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["firstName", "nights"]);
        assert!(variables[0].required);
        assert_eq!(variables[1].kind, VariableType::Number);
    }

    #[test]
    fn a_model_without_a_required_variable_names_it() {
        let variables =
            declared(json!([{"name": "firstName"}, {"name": "city", "required": false}]));
        let error = model(&variables, &Map::new()).expect_err("missing");
        assert_eq!(error.field, "model.firstName");
        let given = json!({"firstName": null})
            .as_object()
            .cloned()
            .expect("object");
        assert_eq!(
            model(&variables, &given).expect_err("null").field,
            "model.firstName"
        );
    }

    #[test]
    fn a_model_value_of_the_wrong_type_is_named() {
        let variables = declared(json!([{"name": "nights", "type": "number"}]));
        let given = json!({"nights": "three"})
            .as_object()
            .cloned()
            .expect("object");
        let error = model(&variables, &given).expect_err("wrong type");
        assert_eq!(error.field, "model.nights");
        assert!(error.rule.contains("a number"), "{}", error.rule);
    }

    #[test]
    fn a_model_keeps_declared_values_fills_optional_ones_and_drops_the_rest() {
        let variables = declared(json!([
            {"name": "firstName"},
            {"name": "city", "required": false},
            {"name": "deals", "type": "list", "required": false}
        ]));
        let given = json!({"firstName": "Ana", "extra": 1})
            .as_object()
            .cloned()
            .expect("object");
        assert_eq!(
            model(&variables, &given).expect("valid"),
            json!({"firstName": "Ana", "city": null, "deals": []})
        );
    }
}
