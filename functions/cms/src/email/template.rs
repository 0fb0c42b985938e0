//! What a template may say, checked when it is saved: it must parse, and
//! every variable it reads must be declared. Postmark's validate endpoint
//! is the model (its engine renders a missing value as empty text, which is
//! why it has one); here the check runs on every save, so a template that
//! would render a blank where a name belongs is never stored.
//!
//! The check walks handlebars' own parse tree (`handlebars::template`), so
//! it reads a template exactly as the renderer will.
//!
//! Scopes, the rule for what `{{name}}` refers to:
//! - at the top, and inside `#if` / `#unless` (which do not change the
//!   context), `{{name}}` and `{{name.field}}` read the model: `name` must
//!   be declared;
//! - inside `#each list` and `#with object` the context is the item, whose
//!   fields are not declared: `{{this}}`, `{{title}}`, `{{item.title}}`
//!   (with `as |item|`) and `@index`, `@first`, `@last`, `@key` are
//!   accepted as they are, and a render in strict mode refuses an item
//!   without the field (422). The model is reached from there with
//!   `{{../name}}` (one `../` per enclosing `#each`/`#with`) or
//!   `{{@root.name}}`, and those are checked like top-level names;
//! - `{{else}}` of an `#each` or `#with` is outside the item, in the
//!   enclosing scope.
//!
//! Refused outright: `{{{raw}}}` and `{{& raw}}` (values are always
//! HTML-escaped), partials and decorators (the layout wraps the body),
//! mustache-style sections `{{#list}}` (write `{{#each list}}` or
//! `{{#if flag}}`), and helpers other than [`HELPERS`].

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::{Path, PathSeg};

/// The helpers a template may call: handlebars' built-in ones, less `log`
/// (it writes to the function's log) and `raw`.
pub const HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or",
    "not", "len",
];

/// Why a template cannot be saved, and where (1-based line and column, in
/// characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub what: String,
    /// The undeclared variable, when that is the problem.
    pub variable: Option<String>,
}

impl Problem {
    /// The rule a 400 states after the field's name: "body uses ...".
    pub fn rule(&self) -> String {
        format!("{} (line {}, column {})", self.what, self.line, self.column)
    }
}

/// The template, parsed: a [`Problem`] for a syntax error.
pub fn parse(source: &str) -> Result<Template, Problem> {
    // The parser has panicked on unusual input before (handlebars-rust
    // #766): an editor's typo must be a 400, never a crashed request.
    let parsed = std::panic::catch_unwind(|| Template::compile(source)).map_err(|_| Problem {
        line: 1,
        column: 1,
        what: "could not be parsed: check that every {{ has its }}".to_owned(),
        variable: None,
    })?;
    parsed.map_err(|error| {
        let (line, column) = error.pos().unwrap_or((1, 1));
        Problem {
            line,
            column,
            what: format!("has a syntax error: {}", error.reason()),
            variable: None,
        }
    })
}

/// Checks `source` against the `declared` variable names: it must parse,
/// and read only declared variables (see the module's rule).
pub fn check(source: &str, declared: &[&str]) -> Result<(), Problem> {
    let template = parse(source)?;
    Walker {
        source,
        declared,
        scopes: vec![Scope::Model],
    }
    .template(&template, (1, 1))
}

/// What unqualified names read at a point of the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The model: names must be declared.
    Model,
    /// An item of `#each` or the object of `#with`: fields are not declared.
    Item,
}

struct Walker<'a> {
    source: &'a str,
    declared: &'a [&'a str],
    scopes: Vec<Scope>,
}

type Position = (usize, usize);

impl Walker<'_> {
    fn problem(&self, at: Position, what: impl Into<String>) -> Problem {
        Problem {
            line: at.0,
            column: at.1,
            what: what.into(),
            variable: None,
        }
    }

    fn template(&mut self, template: &Template, outer: Position) -> Result<(), Problem> {
        for (i, element) in template.elements.iter().enumerate() {
            let at = template.mapping.get(i).map_or(outer, |m| (m.0, m.1));
            self.element(element, at)?;
        }
        Ok(())
    }

    fn element(&mut self, element: &TemplateElement, at: Position) -> Result<(), Problem> {
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => Ok(()),
            TemplateElement::Expression(helper) => self.expression(helper, at),
            TemplateElement::HelperBlock(helper) => self.block(helper, at),
            TemplateElement::HtmlExpression(_) => Err(self.problem(
                at,
                "writes a value unescaped ({{{name}}} or {{&name}}): values are always HTML-escaped, write {{name}}",
            )),
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                Err(self.problem(
                    at,
                    "includes a partial ({{> name}}), which email templates do not have: the layout wraps the body",
                ))
            }
            TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => Err(
                self.problem(at, "uses a decorator ({{* name}}), which email templates do not support"),
            ),
            _ => Err(self.problem(at, "uses a construct email templates do not support")),
        }
    }

    fn expression(&mut self, helper: &HelperTemplate, at: Position) -> Result<(), Problem> {
        match &helper.name {
            // `{{name}}`: a value.
            Parameter::Path(path) if helper.params.is_empty() && helper.hash.is_empty() => {
                self.reference(path, at)
            }
            // `{{eq a b}}`: a helper call.
            Parameter::Name(name) => {
                if !HELPERS.contains(&name.as_str()) {
                    return Err(self.unknown_helper(name, at));
                }
                if matches!(name.as_str(), "if" | "unless" | "each" | "with") {
                    return Err(self.problem(
                        at,
                        format!("uses {{{{{name} ...}}}} without #: write {{{{#{name} ...}}}} ... {{{{/{name}}}}}"),
                    ));
                }
                self.arguments(helper, at)
            }
            other => self.parameter(other, at),
        }
    }

    fn block(&mut self, helper: &HelperTemplate, at: Position) -> Result<(), Problem> {
        let name = match &helper.name {
            Parameter::Name(name) => name.as_str(),
            _ => return Err(self.problem(at, "opens a block without a helper's name")),
        };
        let enters_item = match name {
            "if" | "unless" => false,
            "each" | "with" => true,
            _ if self.declared.contains(&name) => {
                return Err(self.problem(
                    at,
                    format!("opens a mustache section {{{{#{name}}}}}: write {{{{#each {name}}}}} for a list or {{{{#if {name}}}}} for a condition"),
                ));
            }
            _ if HELPERS.contains(&name) => {
                return Err(self.problem(
                    at,
                    format!(
                        "uses {name} as a block: only #if, #unless, #each and #with open blocks"
                    ),
                ));
            }
            _ => return Err(self.unknown_helper(name, at)),
        };
        if helper.params.len() != 1 {
            return Err(self.problem(
                at,
                format!(
                    "opens #{name} with {} arguments instead of one",
                    helper.params.len()
                ),
            ));
        }
        self.arguments(helper, at)?;
        if let Some(body) = &helper.template {
            if enters_item {
                self.scopes.push(Scope::Item);
            }
            let checked = self.template(body, at);
            if enters_item {
                self.scopes.pop();
            }
            checked?;
        }
        if let Some(inverse) = &helper.inverse {
            self.template(inverse, at)?;
        }
        Ok(())
    }

    fn arguments(&mut self, helper: &HelperTemplate, at: Position) -> Result<(), Problem> {
        for parameter in helper.params.iter().chain(helper.hash.values()) {
            self.parameter(parameter, at)?;
        }
        Ok(())
    }

    fn parameter(&mut self, parameter: &Parameter, at: Position) -> Result<(), Problem> {
        match parameter {
            Parameter::Path(path) => self.reference(path, at),
            Parameter::Subexpression(sub) => self.element(&sub.element, at),
            _ => Ok(()),
        }
    }

    fn unknown_helper(&self, name: &str, at: Position) -> Problem {
        self.problem(
            at,
            format!(
                "calls an unknown helper {name:?}: the helpers are {}",
                HELPERS.join(", ")
            ),
        )
    }

    /// The scope `ups` levels out from here, `None` above the top.
    fn scope_up(&self, ups: usize) -> Option<Scope> {
        self.scopes
            .len()
            .checked_sub(ups + 1)
            .and_then(|i| self.scopes.get(i).copied())
    }

    fn reference(&self, path: &Path, at: Position) -> Result<(), Problem> {
        match path {
            Path::Relative((segments, raw)) => {
                let (scope, what) = if raw.starts_with("@root") {
                    (Some(Scope::Model), raw.as_str())
                } else {
                    let ups = raw.matches("../").count();
                    (self.scope_up(ups), raw.as_str())
                };
                match scope {
                    None => Err(self.problem(
                        self.locate(raw, at),
                        format!("reads {{{{{what}}}}}, which climbs out above the template with ../ (one ../ per enclosing #each or #with)"),
                    )),
                    Some(Scope::Item) => Ok(()),
                    Some(Scope::Model) => {
                        let first = segments.iter().find_map(|segment| match segment {
                            PathSeg::Named(name) => Some(name.as_str()),
                            _ => None,
                        });
                        match first {
                            Some(name) if !self.declared.contains(&name) => Err(Problem {
                                variable: Some(name.to_owned()),
                                ..self.problem(
                                    self.locate(raw, at),
                                    format!(
                                        "uses the variable {name:?}, which variables does not declare: declare it or correct the name"
                                    ),
                                )
                            }),
                            _ => Ok(()),
                        }
                    }
                }
            }
            Path::Local((level, name, raw)) => match self.scope_up(*level) {
                Some(Scope::Item) => Ok(()),
                _ => Err(self.problem(
                    self.locate(raw, at),
                    format!("reads @{name}, which only #each and #with define"),
                )),
            },
        }
    }

    /// Where `raw` is written in the tag that starts at `at`: the first
    /// place from there, or the tag itself when it cannot be found (a
    /// path written with `this/` or `[...]`).
    fn locate(&self, raw: &str, at: Position) -> Position {
        let Some(start) = offset_of(self.source, at) else {
            return at;
        };
        match self.source[start..].find(raw) {
            Some(found) => position_of(self.source, start + found),
            None => at,
        }
    }
}

/// The byte offset of a 1-based (line, column in characters).
fn offset_of(source: &str, (line, column): Position) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        source
            .match_indices('\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    let rest = source.get(line_start..)?;
    let within = rest
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(rest.len(), |(i, _)| i);
    Some(line_start + within)
}

/// The 1-based (line, column in characters) of a byte offset.
fn position_of(source: &str, offset: usize) -> Position {
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(source: &str, declared: &[&str]) -> Problem {
        check(source, declared).expect_err(source)
    }

    #[test]
    fn declared_variables_pass() {
        check(
            "Hello {{firstName}}, {{trip.city}} from {{price}}",
            &["firstName", "trip", "price"],
        )
        .expect("valid");
    }

    #[test]
    fn an_undeclared_variable_is_named_with_its_line_and_column() {
        let problem = refused(
            "<p>Hello {{firstName}},</p>\n<p>Your deal: {{dael}}</p>",
            &["firstName", "deal"],
        );
        assert_eq!(problem.variable.as_deref(), Some("dael"));
        assert_eq!((problem.line, problem.column), (2, 17));
        assert!(problem.rule().contains("\"dael\""), "{}", problem.rule());
        assert!(
            problem.rule().contains("line 2, column 17"),
            "{}",
            problem.rule()
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let problem = refused("Olá, €5 {{x}}", &[]);
        assert_eq!((problem.line, problem.column), (1, 11));
    }

    #[test]
    fn a_syntax_error_gives_its_line_and_column() {
        let problem = refused("Hello\n{{#if deal}}\n{{deal}}\n", &["deal"]);
        assert_eq!(problem.variable, None);
        assert!(problem.what.contains("syntax error"), "{}", problem.what);
        assert!(problem.line >= 2, "{problem:?}");
        let unclosed = refused("Hi {{name", &["name"]);
        assert_eq!(unclosed.line, 1);
        assert!(unclosed.column > 1, "{unclosed:?}");
    }

    #[test]
    fn conditions_and_helpers_check_their_arguments() {
        check("{{#if vip}}VIP{{else}}{{name}}{{/if}}", &["vip", "name"]).expect("valid");
        let problem = refused(
            "{{#if vip}}x{{/if}}{{#unless vip}}{{nme}}{{/unless}}",
            &["vip"],
        );
        assert_eq!(problem.variable.as_deref(), Some("nme"));
        let problem = refused("{{#if (eq tier gold)}}x{{/if}}", &["tier"]);
        assert_eq!(problem.variable.as_deref(), Some("gold"));
        check("{{#if (eq tier \"gold\")}}x{{/if}}", &["tier"]).expect("literal");
    }

    #[test]
    fn a_loop_reads_its_items_fields_without_declarations() {
        check(
            "{{#each deals}}{{@index}}. {{title}} {{this.price}} for {{../firstName}}{{/each}}",
            &["deals", "firstName"],
        )
        .expect("valid");
        check(
            "{{#each deals as |deal i|}}{{i}} {{deal.title}} {{@root.firstName}}{{/each}}",
            &["deals", "firstName"],
        )
        .expect("block params");
    }

    #[test]
    fn a_loop_reaching_out_to_the_model_must_name_a_declared_variable() {
        let problem = refused(
            "{{#each deals}}{{../firstNme}}{{/each}}",
            &["deals", "firstName"],
        );
        assert_eq!(problem.variable.as_deref(), Some("firstNme"));
        let problem = refused("{{#each deals}}{{@root.x}}{{/each}}", &["deals"]);
        assert_eq!(problem.variable.as_deref(), Some("x"));
        let problem = refused("{{#each deals}}x{{/each}}", &[]);
        assert_eq!(problem.variable.as_deref(), Some("deals"));
    }

    #[test]
    fn the_else_of_a_loop_is_outside_it() {
        let problem = refused(
            "{{#each deals}}{{title}}{{else}}{{title}}{{/each}}",
            &["deals"],
        );
        assert_eq!(problem.variable.as_deref(), Some("title"));
    }

    #[test]
    fn loop_variables_and_climbing_outside_a_loop_are_refused() {
        assert!(refused("{{@index}}", &[]).what.contains("@index"));
        assert!(refused("{{../name}}", &["name"]).what.contains("../"));
        assert!(
            refused("{{#if a}}{{../a}}{{/if}}", &["a"])
                .what
                .contains("../")
        );
    }

    #[test]
    fn raw_output_partials_and_unknown_helpers_are_refused() {
        assert!(refused("{{{name}}}", &["name"]).what.contains("unescaped"));
        assert!(refused("{{& name}}", &["name"]).what.contains("unescaped"));
        assert!(refused("{{> footer}}", &[]).what.contains("partial"));
        assert!(
            refused("{{shout name}}", &["name"])
                .what
                .contains("unknown helper")
        );
        assert!(
            refused("{{log name}}", &["name"])
                .what
                .contains("unknown helper")
        );
        assert!(
            refused("{{#deals}}x{{/deals}}", &["deals"])
                .what
                .contains("#each deals")
        );
    }

    #[test]
    fn positions_convert_both_ways() {
        let source = "ab\ncdé\nfg";
        for offset in [0, 1, 3, 5, 8, 9] {
            let at = position_of(source, offset);
            assert_eq!(offset_of(source, at), Some(offset), "{at:?}");
        }
    }
}
