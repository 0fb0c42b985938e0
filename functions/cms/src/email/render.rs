//! A template and a model made into a mail: subject, preheader, the HTML
//! body inside its layout with the CSS inlined (mail clients such as Gmail
//! and Outlook drop or ignore much of a `<style>` block), and a plain-text
//! alternative.
//!
//! Handlebars renders in strict mode: a value the model lacks is an error,
//! never an empty string (the model was already checked against the
//! declarations; strict mode catches what declarations cannot, such as a
//! field missing from one item of a list). The body's values are
//! HTML-escaped; the subject and preheader are text (a subject is a mail
//! header, where `&amp;` would show as such), and the layout escapes the
//! preheader where it puts it into the HTML.

use handlebars::Handlebars;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::variables::FieldError;

/// The layouts a template can name in `layout`.
pub const LAYOUTS: &[&str] = &["default"];

/// `brandColor` when a stored one is not `#rrggbb` (the column's default).
pub const DEFAULT_BRAND_COLOR: &str = "#3b82f6";

/// The width the text alternative wraps at (RFC 5322 recommends lines of
/// at most 78 characters).
const TEXT_WIDTH: usize = 78;

/// The built-in `default` layout: a centred 600-pixel table (what every
/// mail client lays out alike), a brand-coloured bar, the optional header
/// image, the body, and the footer. The preheader is the hidden first text
/// that inboxes show as a preview. Its `<style>` is inlined into `style`
/// attributes when rendered; the `@media` rule stays in a `<style>`, for
/// the clients that read one.
const DEFAULT_LAYOUT: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="x-apple-disable-message-reformatting">
<title>{{subject}}</title>
<style>
body { margin: 0; padding: 0; background-color: #f4f4f5; }
.wrapper { width: 100%; background-color: #f4f4f5; padding: 24px 0; }
.container { width: 600px; max-width: 600px; background-color: #ffffff; border-radius: 8px; }
.brand-bar { height: 6px; background-color: {{brandColor}}; border-radius: 8px 8px 0 0; }
.header-image { display: block; width: 100%; max-width: 600px; height: auto; border: 0; }
.content { padding: 32px; font-family: Helvetica, Arial, sans-serif; font-size: 16px; line-height: 24px; color: #18181b; }
.content a { color: {{brandColor}}; }
.content a.button { display: inline-block; padding: 12px 24px; background-color: {{brandColor}}; color: #ffffff; text-decoration: none; border-radius: 6px; font-weight: bold; }
.content .small { font-size: 12px; line-height: 18px; color: #71717a; }
.footer { padding: 16px 32px 32px; font-family: Helvetica, Arial, sans-serif; font-size: 12px; line-height: 18px; color: #71717a; text-align: center; }
.preheader { display: none; max-height: 0; overflow: hidden; opacity: 0; color: transparent; }
@media only screen and (max-width: 620px) { .container { width: 100% !important; } .content { padding: 20px !important; } }
</style>
</head>
<body>
<div class="preheader">{{preheader}}</div>
<table role="presentation" class="wrapper" width="100%" cellpadding="0" cellspacing="0" border="0">
<tr><td align="center">
<table role="presentation" class="container" width="600" cellpadding="0" cellspacing="0" border="0">
<tr><td class="brand-bar"></td></tr>
{{#if headerImage}}<tr><td><img class="header-image" src="{{headerImage}}" alt="" width="600"></td></tr>{{/if}}
<tr><td class="content">{{{content}}}</td></tr>
<tr><td class="footer">{{footerText}}</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"##;

/// The layout named `name`. Only `default` is built in so far; a stored
/// name this code does not know (the other application writes the table
/// too) falls back to it rather than failing a send.
fn layout(_name: &str) -> &'static str {
    DEFAULT_LAYOUT
}

/// What a template holds, for rendering.
pub struct Source<'a> {
    pub subject: &'a str,
    pub preheader: Option<&'a str>,
    pub body: &'a str,
    pub layout: &'a str,
    pub brand_color: &'a str,
    pub header_image: Option<&'a str>,
    pub footer_text: &'a str,
}

/// A rendered mail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rendered {
    pub subject: String,
    /// The inbox preview text; empty when the template has none.
    pub preheader: String,
    /// The whole HTML document: layout, body, CSS inlined.
    pub html: String,
    /// The plain-text alternative of the body and footer.
    pub text: String,
}

/// Whether `color` is `#rrggbb`.
pub fn is_hex_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn engine(escape: bool) -> Handlebars<'static> {
    let mut engine = Handlebars::new();
    engine.set_strict_mode(true);
    if !escape {
        engine.register_escape_fn(handlebars::no_escape);
    }
    engine
}

/// A strict-mode failure as a 422's field and rule: which part, where,
/// and what was missing.
fn render_error(part: &str, error: &handlebars::RenderError) -> FieldError {
    let at = match (error.line_no, error.column_no) {
        (Some(line), Some(column)) => format!(" at {part} line {line}, column {column}"),
        _ => format!(" in {part}"),
    };
    match error.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(path)) => FieldError::new(
            "model",
            format!("lacks {path:?}, which the template reads{at}"),
        ),
        reason => FieldError::new("model", format!("cannot be rendered{at}: {reason}")),
    }
}

/// `source` rendered with `model` (already checked against the
/// declarations: [`super::variables::model`]).
pub fn render(source: &Source<'_>, model: &Value) -> Result<Rendered, FieldError> {
    let text_engine = engine(false);
    let html_engine = engine(true);
    // A subject is one header line: line breaks a value brings are spaces.
    let subject = text_engine
        .render_template(source.subject, model)
        .map_err(|e| render_error("subject", &e))?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let preheader = match source.preheader {
        Some(preheader) => text_engine
            .render_template(preheader, model)
            .map_err(|e| render_error("preheader", &e))?
            .trim()
            .to_owned(),
        None => String::new(),
    };
    let content = html_engine
        .render_template(source.body, model)
        .map_err(|e| render_error("body", &e))?;

    let brand_color = if is_hex_color(source.brand_color) {
        source.brand_color
    } else {
        DEFAULT_BRAND_COLOR
    };
    let document = html_engine
        .render_template(
            layout(source.layout),
            &json!({
                "subject": subject,
                "preheader": preheader,
                "content": content,
                "brandColor": brand_color,
                "headerImage": source.header_image,
                "footerText": source.footer_text,
            }),
        )
        .map_err(|e| FieldError::new("layout", format!("cannot be rendered: {e}")))?;
    let html = inline_css(&document)?;

    let body_text = html2text::from_read(content.as_bytes(), TEXT_WIDTH)
        .map_err(|e| FieldError::new("body", format!("cannot be made into text: {e}")))?;
    let text = format!("{}\n\n--\n{}\n", body_text.trim_end(), source.footer_text);
    Ok(Rendered {
        subject,
        preheader,
        html,
        text,
    })
}

/// `document` with its `<style>` rules copied into `style` attributes;
/// `@media` rules stay in a `<style>` (they cannot be inlined).
fn inline_css(document: &str) -> Result<String, FieldError> {
    css_inline::CSSInliner::options()
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .build()
        .inline(document)
        .map_err(|e| FieldError::new("body", format!("its CSS cannot be inlined: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(body: &str) -> Source<'_> {
        Source {
            subject: "Hello {{firstName}} & friends",
            preheader: Some("Deals for {{firstName}}"),
            body,
            layout: "default",
            brand_color: "#ff6600",
            header_image: Some("https://cdn.example/header.png"),
            footer_text: "Travel Deals, Lisbon",
        }
    }

    #[test]
    fn values_in_the_body_are_html_escaped() {
        let rendered = render(
            &source("<p>Hi {{firstName}}</p>"),
            &json!({"firstName": "<script>alert(1)</script>"}),
        )
        .expect("rendered");
        assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
        assert!(
            rendered.html.contains("&lt;script&gt;"),
            "{}",
            rendered.html
        );
    }

    #[test]
    fn the_subject_is_text_on_one_line() {
        let rendered = render(
            &source("x"),
            &json!({"firstName": "Ana\r\nBcc: x@evil.example"}),
        )
        .expect("rendered");
        assert_eq!(rendered.subject, "Hello Ana Bcc: x@evil.example & friends");
        assert_eq!(rendered.preheader, "Deals for Ana\r\nBcc: x@evil.example");
    }

    #[test]
    fn the_layout_wraps_the_body_with_its_branding_and_the_css_inlined() {
        let rendered = render(
            &source("<p>Hi {{firstName}}</p>"),
            &json!({"firstName": "Ana"}),
        )
        .expect("ok");
        assert!(rendered.html.contains("<p>Hi Ana</p>"), "{}", rendered.html);
        assert!(rendered.html.contains("https://cdn.example/header.png"));
        assert!(rendered.html.contains("Travel Deals, Lisbon"));
        // The brand bar's rule, now in its style attribute.
        assert!(
            rendered.html.contains("background-color: #ff6600"),
            "{}",
            rendered.html
        );
        assert!(rendered.html.contains("@media"), "media queries stay");
        assert!(rendered.html.contains("Deals for Ana"), "the preheader");
    }

    #[test]
    fn a_brand_color_that_is_not_hex_falls_back_to_the_default() {
        let mut source = source("x");
        source.brand_color = "red; } body { display: none";
        let rendered = render(&source, &json!({"firstName": "Ana"})).expect("ok");
        assert!(!rendered.html.contains("red;"), "{}", rendered.html);
        assert!(rendered.html.contains(DEFAULT_BRAND_COLOR));
    }

    #[test]
    fn the_text_alternative_has_the_body_and_footer_without_markup() {
        let rendered = render(
            &source("<h1>Lisbon</h1><p>From <b>€99</b>, {{firstName}}</p>"),
            &json!({"firstName": "Ana"}),
        )
        .expect("ok");
        assert!(rendered.text.contains("Lisbon"), "{}", rendered.text);
        assert!(rendered.text.contains("€99"), "{}", rendered.text);
        assert!(rendered.text.contains("Travel Deals, Lisbon"));
        assert!(!rendered.text.contains("<p>"));
    }

    #[test]
    fn a_field_missing_from_a_list_item_is_an_error_naming_it() {
        let error = render(
            &source("{{#each deals}}{{title}}{{/each}}"),
            &json!({"firstName": "Ana", "deals": [{"title": "a"}, {"name": "b"}]}),
        )
        .expect_err("strict");
        assert_eq!(error.field, "model");
        assert!(error.rule.contains("title"), "{}", error.rule);
    }

    #[test]
    fn hex_colors_are_seven_characters() {
        assert!(is_hex_color("#3b82f6"));
        assert!(is_hex_color("#FFFFFF"));
        for bad in ["3b82f6", "#3b82f", "#3b82fg", "#3b82f60", ""] {
            assert!(!is_hex_color(bad), "{bad}");
        }
    }
}
