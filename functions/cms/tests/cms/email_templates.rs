//! `/api/admin/email-templates`: templates with declared variables, checked
//! when saved; rendering into the layout; test sends over real SMTP.
//!
//! The SMTP server of the send tests is Python's aiosmtpd
//! (`tests/smtp/sink.py`), listening on a free port of 127.0.0.1 and
//! writing what it accepts as `.eml` files, which the same script parses
//! with Python's `email` package. The test installs the pinned aiosmtpd
//! (`tests/smtp/requirements.txt`) into `tests/smtp/.venv` on its first run;
//! a missing Python fails the test with how to install it, never skips it.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{TestApp, spawn_app, spawn_app_with};

const TEMPLATES: &str = "/api/admin/email-templates";

/// A deal alert: a required name, an optional list of deals, a URL.
fn deal_alert() -> Value {
    json!({
        "key": "deal-alert",
        "name": "Deal alert",
        "subject": "{{firstName}}, new deals from {{homeAirport}}",
        "preheader": "Fares we found for {{firstName}}",
        "body": "<h1>Hi {{firstName}}</h1>\n{{#each deals}}<p>{{@index}}. {{title}} for {{price}} ({{../homeAirport}})</p>{{/each}}\n<p><a href=\"{{dealsUrl}}\">All deals</a></p>",
        "variables": [
            {"name": "firstName", "example": "Ana"},
            {"name": "homeAirport", "example": "LIS"},
            {"name": "deals", "type": "list", "required": false,
             "example": [{"title": "Lisbon to Rome", "price": "€49"}]},
            {"name": "dealsUrl", "type": "url", "example": "https://deals.example/deals"}
        ],
        "brandColor": "#ff6600",
        "footerText": "Travel Deals, Rua Augusta 1, Lisbon"
    })
}

fn with(mut value: Value, changes: Value) -> Value {
    for (field, change) in changes.as_object().expect("an object") {
        value[field] = change.clone();
    }
    value
}

async fn create(app: &TestApp, token: &str, template: Value) -> Value {
    app.expect(
        "POST",
        TEMPLATES,
        Some(token),
        Some(template),
        StatusCode::CREATED,
    )
    .await
}

/// Sends and expects `status`; answers the error's `field` and `message`.
async fn refused(
    app: &TestApp,
    method: &str,
    uri: &str,
    token: &str,
    body: Value,
    status: StatusCode,
) -> (String, String) {
    let answer = app
        .expect(method, uri, Some(token), Some(body), status)
        .await;
    (
        answer["error"]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn templates_are_created_read_listed_changed_and_deleted_by_key() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let created = create(&app, &token, deal_alert()).await;
    assert_eq!(created["key"], "deal-alert");
    assert_eq!(created["layout"], "default");
    assert_eq!(created["active"], true);
    assert_eq!(created["testsSent"], 0);
    assert_eq!(created["variables"][0]["required"], true);
    assert_eq!(created["variables"][0]["type"], "string");

    let uri = format!("{TEMPLATES}/deal-alert");
    let read = app
        .expect("GET", &uri, Some(&token), None, StatusCode::OK)
        .await;
    assert_eq!(read, created);
    create(
        &app,
        &token,
        with(deal_alert(), json!({"key": "welcome", "name": "Welcome"})),
    )
    .await;
    let page = app
        .expect(
            "GET",
            &format!("{TEMPLATES}?limit=1"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(page["templates"][0]["key"], "deal-alert");
    let cursor = page["nextCursor"].as_str().expect("a second page");
    let next = app
        .expect(
            "GET",
            &format!("{TEMPLATES}?limit=1&cursor={cursor}"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(next["templates"][0]["key"], "welcome");
    assert!(next["nextCursor"].is_null());

    let changed = app
        .expect(
            "PATCH",
            &uri,
            Some(&token),
            Some(json!({"subject": "Deals for {{firstName}}", "preheader": null, "active": false})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(changed["subject"], "Deals for {{firstName}}");
    assert!(changed["preheader"].is_null());
    assert_eq!(changed["active"], false);
    assert_eq!(changed["body"], created["body"]);

    let answer = app.send("DELETE", &uri, Some(&token), None).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    app.expect("GET", &uri, Some(&token), None, StatusCode::NOT_FOUND)
        .await;

    let audit = app.audit_rows("emails").await;
    let ids: Vec<&str> = audit
        .iter()
        .map(|row| row["resourceId"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["deal-alert", "welcome", "deal-alert", "deal-alert"]);
}

#[tokio::test]
async fn an_undeclared_variable_is_refused_naming_it_with_its_line_and_column() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let template = with(
        deal_alert(),
        json!({"body": "<h1>Hi {{firstName}}</h1>\n<p>From {{homeAirprot}}</p>"}),
    );
    let (field, message) = refused(
        &app,
        "POST",
        TEMPLATES,
        &token,
        template,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(field, "body");
    assert!(message.contains("\"homeAirprot\""), "{message}");
    assert!(message.contains("line 2, column 11"), "{message}");
    assert_eq!(
        app.count(r#"SELECT count(*) FROM "email_templates""#).await,
        0
    );

    create(&app, &token, deal_alert()).await;
    let (field, message) = refused(
        &app,
        "PATCH",
        &format!("{TEMPLATES}/deal-alert"),
        &token,
        json!({"subject": "Hello {{lastName}}"}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(field, "subject");
    assert!(
        message.contains("\"lastName\"") && message.contains("line 1, column 9"),
        "{message}"
    );
}

#[tokio::test]
async fn dropping_a_variable_the_template_still_reads_is_refused() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(&app, &token, deal_alert()).await;
    let (field, message) = refused(
        &app,
        "PATCH",
        &format!("{TEMPLATES}/deal-alert"),
        &token,
        json!({"variables": [{"name": "firstName"}, {"name": "deals", "type": "list"}, {"name": "dealsUrl"}]}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(field, "subject");
    assert!(message.contains("\"homeAirport\""), "{message}");
}

#[tokio::test]
async fn a_syntax_error_is_refused_with_its_line_and_column() {
    let app = spawn_app().await;
    let token = app.editor().await;
    let template = with(
        deal_alert(),
        json!({"body": "<p>Hi {{firstName}}</p>\n{{#each deals}}<p>{{title}}</p>\n<p>end</p>"}),
    );
    let (field, message) = refused(
        &app,
        "POST",
        TEMPLATES,
        &token,
        template,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(field, "body");
    assert!(message.contains("syntax error"), "{message}");
    assert!(
        message.contains("line ") && message.contains("column "),
        "{message}"
    );
}

#[tokio::test]
async fn fields_are_checked_and_named() {
    let app = spawn_app().await;
    let token = app.editor().await;
    for (change, expected) in [
        (json!({"key": "Deal Alert"}), "key"),
        (json!({"name": "  "}), "name"),
        (json!({"brandColor": "orange"}), "brandColor"),
        (
            json!({"headerImage": "http://cdn.example/h.png"}),
            "headerImage",
        ),
        (json!({"layout": "fancy"}), "layout"),
        (
            json!({"testRecipients": ["qa@example.com", "not-an-address"]}),
            "testRecipients[1]",
        ),
        (
            json!({"variables": [{"name": "firstName", "type": "colour"}]}),
            "variables[0]",
        ),
        (
            json!({"variables": [{"name": "n", "type": "number", "example": "one"}]}),
            "variables[0].example",
        ),
        (json!({"body": "{{{firstName}}}"}), "body"),
    ] {
        let (field, _) = refused(
            &app,
            "POST",
            TEMPLATES,
            &token,
            with(deal_alert(), change.clone()),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(field, expected, "{change}");
    }
}

#[tokio::test]
async fn a_taken_key_or_name_is_a_409_naming_it() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(&app, &token, deal_alert()).await;
    let (field, message) = refused(
        &app,
        "POST",
        TEMPLATES,
        &token,
        with(deal_alert(), json!({"name": "Another name"})),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(field, "key");
    assert!(message.contains("deal-alert"), "{message}");
    let (field, _) = refused(
        &app,
        "POST",
        TEMPLATES,
        &token,
        with(deal_alert(), json!({"key": "another-key"})),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(field, "name");
    create(
        &app,
        &token,
        with(deal_alert(), json!({"key": "welcome", "name": "Welcome"})),
    )
    .await;
    let (field, _) = refused(
        &app,
        "PATCH",
        &format!("{TEMPLATES}/welcome"),
        &token,
        json!({"name": "Deal alert"}),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(field, "name");
}

#[tokio::test]
async fn a_templates_key_never_changes() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(&app, &token, deal_alert()).await;
    let uri = format!("{TEMPLATES}/deal-alert");
    let (field, _) = refused(
        &app,
        "PATCH",
        &uri,
        &token,
        json!({"key": "deals"}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(field, "key");
    app.expect(
        "PATCH",
        &uri,
        Some(&token),
        Some(json!({"key": "deal-alert"})),
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn a_render_escapes_values_wraps_the_body_in_the_layout_and_inlines_its_css() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(
        &app,
        &token,
        with(
            deal_alert(),
            json!({"headerImage": "https://cdn.example/header.png"}),
        ),
    )
    .await;
    let rendered = app
        .expect(
            "POST",
            &format!("{TEMPLATES}/deal-alert/render"),
            Some(&token),
            Some(json!({"model": {
                "firstName": "<script>alert(1)</script>",
                "homeAirport": "LIS",
                "deals": [{"title": "Rome & back", "price": "€49"}],
                "dealsUrl": "https://deals.example/deals"
            }})),
            StatusCode::OK,
        )
        .await;
    let html = rendered["html"].as_str().expect("html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("Hi &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("0. Rome &amp; back for €49 (LIS)"), "{html}");
    // The layout: its header image, footer, and the preheader as preview text.
    assert!(html.contains("https://cdn.example/header.png"), "{html}");
    assert!(
        html.contains("Travel Deals, Rua Augusta 1, Lisbon"),
        "{html}"
    );
    assert!(html.contains("Fares we found for &lt;script&gt;"), "{html}");
    // The layout's `.footer` rule, now in the footer cell's own style.
    let footer_cell = html
        .split("<td")
        .find(|cell| cell.contains("Rua Augusta"))
        .expect("the footer cell");
    assert!(footer_cell.contains("style=\""), "{footer_cell}");
    assert!(footer_cell.contains("font-size: 12px"), "{footer_cell}");
    // And the brand colour in the brand bar's.
    assert!(html.contains("background-color: #ff6600"), "{html}");

    // Subject and preheader are text: no HTML escaping in a header.
    assert_eq!(
        rendered["subject"],
        "<script>alert(1)</script>, new deals from LIS"
    );
    assert_eq!(
        rendered["preheader"],
        "Fares we found for <script>alert(1)</script>"
    );
    let text = rendered["text"].as_str().expect("text");
    assert!(text.contains("Rome & back for €49"), "{text}");
    assert!(
        text.contains("Travel Deals, Rua Augusta 1, Lisbon"),
        "{text}"
    );
    assert!(!text.contains("<h1>"), "{text}");
}

#[tokio::test]
async fn a_render_without_a_required_variable_is_a_422_naming_it() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(&app, &token, deal_alert()).await;
    let uri = format!("{TEMPLATES}/deal-alert/render");
    let (field, message) = refused(
        &app,
        "POST",
        &uri,
        &token,
        json!({"model": {"firstName": "Ana", "dealsUrl": "https://deals.example"}}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(field, "model.homeAirport");
    assert!(message.contains("required"), "{message}");

    let (field, _) = refused(
        &app,
        "POST",
        &uri,
        &token,
        json!({"model": {"firstName": "Ana", "homeAirport": "LIS", "dealsUrl": "deals.example"}}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(field, "model.dealsUrl");

    // The optional list may be left out: the loop renders nothing.
    let rendered = app
        .expect(
            "POST",
            &uri,
            Some(&token),
            Some(json!({"model": {"firstName": "Ana", "homeAirport": "LIS", "dealsUrl": "https://deals.example"}})),
            StatusCode::OK,
        )
        .await;
    assert!(rendered["html"].as_str().expect("html").contains("Hi Ana"));
}

#[tokio::test]
async fn a_test_send_delivers_a_multipart_alternative_message_and_records_it() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(&[
        ("SMTP_URL", &sink.url()),
        ("MAIL_FROM", "Travel Deals <deals@travel.example>"),
    ])
    .await;
    let token = app.editor().await;
    create(
        &app,
        &token,
        with(deal_alert(), json!({"testRecipients": ["qa@example.com"]})),
    )
    .await;

    let outcome = app
        .expect(
            "POST",
            &format!("{TEMPLATES}/deal-alert/test"),
            Some(&token),
            Some(json!({"model": {
                "firstName": "<b>Ana</b>",
                "homeAirport": "LIS",
                "dealsUrl": "https://deals.example/deals"
            }})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(outcome["sent"], 1);
    assert_eq!(outcome["results"][0]["recipient"], "qa@example.com");
    assert_eq!(outcome["results"][0]["accepted"], true);

    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let mail = sink.parse(&messages[0]);
    assert_eq!(mail["contentType"], "multipart/alternative");
    assert_eq!(mail["parts"][0]["contentType"], "text/plain");
    assert_eq!(mail["parts"][1]["contentType"], "text/html");
    assert_eq!(mail["headers"]["Subject"], "<b>Ana</b>, new deals from LIS");
    assert_eq!(
        mail["headers"]["From"],
        "Travel Deals <deals@travel.example>"
    );
    assert_eq!(mail["headers"]["To"], "qa@example.com");
    let html = mail["parts"][1]["content"].as_str().expect("html");
    assert!(html.contains("Hi &lt;b&gt;Ana&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<b>Ana</b>"), "{html}");
    let text = mail["parts"][0]["content"].as_str().expect("text");
    assert!(text.contains("Hi <b>Ana</b>"), "{text}");

    let template = app
        .expect(
            "GET",
            &format!("{TEMPLATES}/deal-alert"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert!(template["lastTested"].is_string(), "{template}");
    assert_eq!(template["testsSent"], 1);
    let results = &template["lastTestResults"]["results"];
    assert_eq!(results[0]["recipient"], "qa@example.com");
    assert_eq!(results[0]["accepted"], true);
    assert!(
        results[0]["response"]
            .as_str()
            .expect("the server's answer")
            .starts_with("250"),
        "{results}"
    );
}

#[tokio::test]
async fn a_test_send_uses_the_examples_and_records_each_recipients_refusal() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(&[("SMTP_URL", &sink.url())]).await;
    let token = app.editor().await;
    create(&app, &token, deal_alert()).await;
    let outcome = app
        .expect(
            "POST",
            &format!("{TEMPLATES}/deal-alert/test"),
            Some(&token),
            Some(json!({"recipients": ["ana@example.com", "gone@refused.example", "bo@example.com"]})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(outcome["sent"], 2);
    let refusal = &outcome["results"][1];
    assert_eq!(refusal["recipient"], "gone@refused.example");
    assert_eq!(refusal["accepted"], false);
    assert!(
        refusal["error"].as_str().expect("error").contains("550"),
        "{refusal}"
    );
    assert_eq!(outcome["template"]["testsSent"], 2);
    assert_eq!(
        outcome["template"]["lastTestResults"]["results"][1],
        *refusal
    );

    let messages = sink.messages();
    assert_eq!(messages.len(), 2);
    let mail = sink.parse(&messages[0]);
    assert_eq!(mail["headers"]["Subject"], "Ana, new deals from LIS");
    let html = mail["parts"][1]["content"].as_str().expect("html");
    assert!(
        html.contains("Lisbon to Rome"),
        "the examples' list: {html}"
    );
}

#[tokio::test]
async fn test_recipients_are_checked_and_limited() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(&[("SMTP_URL", &sink.url())]).await;
    let token = app.editor().await;
    create(&app, &token, deal_alert()).await;
    let uri = format!("{TEMPLATES}/deal-alert/test");
    let (field, _) = refused(
        &app,
        "POST",
        &uri,
        &token,
        json!({}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(field, "recipients");
    let (field, _) = refused(
        &app,
        "POST",
        &uri,
        &token,
        json!({"recipients": ["ana@example.com", "Ana <ana@example.com>"]}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(field, "recipients[1]");
    let eleven: Vec<String> = (0..11).map(|i| format!("qa{i}@example.com")).collect();
    let (field, _) = refused(
        &app,
        "POST",
        &uri,
        &token,
        json!({"recipients": eleven}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(field, "recipients");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_a_clear_error_and_nothing_is_recorded_as_sent() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("address").port()
    };
    let app = spawn_app_with(&[("SMTP_URL", &format!("smtp://127.0.0.1:{closed_port}"))]).await;
    let token = app.editor().await;
    create(
        &app,
        &token,
        with(deal_alert(), json!({"testRecipients": ["qa@example.com"]})),
    )
    .await;
    let answer = app
        .expect(
            "POST",
            &format!("{TEMPLATES}/deal-alert/test"),
            Some(&token),
            None,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{closed_port}")),
        "{message}"
    );

    let template = app
        .expect(
            "GET",
            &format!("{TEMPLATES}/deal-alert"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(template["testsSent"], 0);
    assert!(template["lastTested"].is_null());
    assert!(template["lastTestResults"].is_null());
}

#[tokio::test]
async fn without_smtp_url_a_test_send_is_a_503_saying_so() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(&app, &token, deal_alert()).await;
    let answer = app
        .expect(
            "POST",
            &format!("{TEMPLATES}/deal-alert/test"),
            Some(&token),
            Some(json!({"recipients": ["qa@example.com"]})),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.contains("SMTP_URL"), "{message}");
}

#[tokio::test]
async fn the_history_lists_each_change_and_a_restore_brings_a_version_back() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(&app, &token, deal_alert()).await;
    let uri = format!("{TEMPLATES}/deal-alert");
    app.expect(
        "PATCH",
        &uri,
        Some(&token),
        Some(json!({"subject": "Cheap flights, {{firstName}}"})),
        StatusCode::OK,
    )
    .await;
    let history = app
        .expect(
            "GET",
            &format!("{uri}/history"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["action"], "update");
    assert_eq!(
        versions[0]["after"]["subject"],
        "Cheap flights, {{firstName}}"
    );
    let created_id = versions[1]["auditId"]
        .as_str()
        .expect("the create's audit id");

    let restored = app
        .expect(
            "POST",
            &format!("{uri}/restore"),
            Some(&token),
            Some(json!({"auditId": created_id})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(restored["subject"], deal_alert()["subject"]);
    let audit = app.audit_rows("emails").await;
    let last = audit.last().expect("the restore's row");
    assert_eq!(last["resourceId"], "deal-alert");
    assert_eq!(last["changes"]["after"]["restoredFrom"], created_id);

    // A deleted template comes back from its history.
    assert_eq!(
        app.send("DELETE", &uri, Some(&token), None).await.status,
        StatusCode::NO_CONTENT
    );
    let back = app
        .expect(
            "POST",
            &format!("{uri}/restore"),
            Some(&token),
            Some(json!({"auditId": created_id})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(back["key"], "deal-alert");
    assert_eq!(back["body"], deal_alert()["body"]);
}

#[tokio::test]
async fn a_restore_names_an_audit_id_of_this_template() {
    let app = spawn_app().await;
    let token = app.editor().await;
    create(&app, &token, deal_alert()).await;
    create(
        &app,
        &token,
        with(deal_alert(), json!({"key": "welcome", "name": "Welcome"})),
    )
    .await;
    let other = app
        .expect(
            "GET",
            &format!("{TEMPLATES}/welcome/history"),
            Some(&token),
            None,
            StatusCode::OK,
        )
        .await;
    let other_id = other["versions"][0]["auditId"].clone();
    let (field, _) = refused(
        &app,
        "POST",
        &format!("{TEMPLATES}/deal-alert/restore"),
        &token,
        json!({"auditId": other_id}),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(field, "auditId");
}

#[tokio::test]
async fn an_admin_may_edit_templates_but_not_delete_them() {
    let app = spawn_app().await;
    let editor = app.editor().await;
    create(&app, &editor, deal_alert()).await;
    let admin = app.admin("ops", "admin", None).await;
    let uri = format!("{TEMPLATES}/deal-alert");
    app.expect(
        "PATCH",
        &uri,
        Some(&admin),
        Some(json!({"active": false})),
        StatusCode::OK,
    )
    .await;
    app.expect("DELETE", &uri, Some(&admin), None, StatusCode::FORBIDDEN)
        .await;
    app.expect("GET", &uri, None, None, StatusCode::UNAUTHORIZED)
        .await;
}

/// An aiosmtpd server on a free local port, writing what it accepts to a
/// directory of its own; stopped and removed when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

const HOW_TO_INSTALL: &str = "\
The SMTP sink needs CPython 3.11 as `python3`, with its venv module \
(Debian/Ubuntu: `apt-get install python3.11 python3.11-venv`), and access to \
PyPI. The test creates functions/cms/tests/smtp/.venv and runs \
`pip install -r requirements.txt` there by itself; if that broke half-way, \
delete the .venv directory and run the test again.";

fn sink_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp")
}

impl SmtpSink {
    fn start() -> Self {
        static SINKS: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cms-smtp-sink-{}-{}",
            std::process::id(),
            SINKS.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("the sink's directory");
        let mut child = Command::new(python())
            .arg(sink_dir().join("sink.py"))
            .arg("serve")
            .arg(&dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start the SMTP sink: {e}\n\n{HOW_TO_INSTALL}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the sink's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the SMTP sink printed {line:?}, not its port"));
        Self { child, port, dir }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, oldest first.
    fn messages(&self) -> Vec<PathBuf> {
        let mut messages: Vec<PathBuf> = fs::read_dir(&self.dir)
            .expect("the sink's directory")
            .map(|entry| entry.expect("an entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "eml"))
            .collect();
        messages.sort();
        messages
    }

    /// A received message as Python's `email` package reads it.
    fn parse(&self, message: &Path) -> Value {
        let output = run(Command::new(python())
            .arg(sink_dir().join("sink.py"))
            .arg("parse")
            .arg(message)
            .env("PYTHONDONTWRITEBYTECODE", "1"))
        .unwrap_or_else(|error| panic!("{error}"));
        serde_json::from_slice(&output.stdout).expect("the parser prints JSON")
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The virtualenv's Python, set up once per test binary.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| set_up_venv().unwrap_or_else(|error| panic!("{error}\n\n{HOW_TO_INSTALL}")))
}

/// Creates the venv and installs the requirements unless a previous run did
/// with the same requirements. Safe against other test processes doing the
/// same at once: they wait on a file lock inside the venv directory.
fn set_up_venv() -> Result<PathBuf, String> {
    let dir = sink_dir();
    let venv = dir.join(".venv");
    fs::create_dir_all(&venv).map_err(|e| format!("creating {}: {e}", venv.display()))?;
    let lock_path = venv.join(".setup.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;

    let python = venv.join("bin/python");
    let requirements_path = dir.join("requirements.txt");
    let requirements = fs::read_to_string(&requirements_path)
        .map_err(|e| format!("reading {}: {e}", requirements_path.display()))?;
    // Written last, so an interrupted install is retried on the next run.
    let installed = venv.join(".installed-requirements.txt");
    if python.exists() && fs::read_to_string(&installed).is_ok_and(|r| r == requirements) {
        return Ok(python);
    }
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-input", "--requirement"])
        .arg(&requirements_path))?;
    fs::write(&installed, &requirements)
        .map_err(|e| format!("writing {}: {e}", installed.display()))?;
    Ok(python)
}

fn run(command: &mut Command) -> Result<Output, String> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| format!("could not run {shown}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{shown} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
