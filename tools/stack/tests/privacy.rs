//! An erasure, end to end: a visitor goes through every public route that
//! stores something about them, an admin's actions put them in the audit
//! trail, the jobs copy their data onward; then one erasure through the
//! admin API leaves no row, in any table of the database, that carries
//! their identifiers, while another visitor's rows are all still there and
//! the audit chain verifies. Everything goes through the whole bundle's
//! HTTP router, as a browser and the site would send it; only the
//! accounts (`users`, the site application's) and the first super admin's
//! grant are inserted directly.

use std::collections::BTreeMap;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use serde_json::{Value, json};
use testkit::TestDatabase;
use testkit::session::{fixture_secret, v4_token};

/// A test key of the audit trail's pseudonyms (hex, 32 bytes).
const PSEUDONYM_KEY: &str = "8f1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3";

const SENTRY_KEY: &str = "0123456789abcdef0123456789abcdef";
const SENTRY_PROJECT: u64 = 42;

/// The experiment both visitors take part in.
const EXPERIMENT: &str = "checkout-test";

/// The address the super admin works from: neither visitor's network.
const STAFF_ADDRESS: &str = "192.0.2.10";
const STAFF_AGENT: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";

/// A signed-in visitor and their browser.
struct Visitor {
    user_id: &'static str,
    email: &'static str,
    session_id: &'static str,
    /// The address their requests come from.
    address: &'static str,
    /// What the intake stores of it: the /24 network.
    network: &'static str,
    user_agent: &'static str,
    /// Their booking's order number.
    order: &'static str,
    /// The id their Sentry SDK gave an error event (which the SDK sends
    /// without the hyphens).
    sentry_event: &'static str,
}

/// The visitor who asks to be erased.
const ANA: Visitor = Visitor {
    user_id: "cluser0ana5e1d9c",
    email: "ana.5e1d9c@mail.example",
    session_id: "session_1764500000123_k3j9x2ana",
    address: "203.0.113.57",
    network: "203.0.113.0",
    user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.61731 Safari/537.36",
    order: "order-ana-5e1d9c",
    sentry_event: "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
};

/// A visitor who must be left as they were.
const BEN: Visitor = Visitor {
    user_id: "cluser0ben0a7b42",
    email: "ben.0a7b42@mail.example",
    session_id: "session_1764500000456_p8q2wben",
    address: "198.51.100.23",
    network: "198.51.100.0",
    user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0.40417",
    order: "order-ben-0a7b42",
    sentry_event: "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
};

impl Visitor {
    /// Every string that names them in a row: their ids, their email, the
    /// address and network they came from, their user agent, and the ids
    /// only their own browser sent (their order, their SDK's event).
    fn identifiers(&self) -> [&'static str; 8] {
        [
            self.user_id,
            self.email,
            self.session_id,
            self.address,
            self.network,
            self.user_agent,
            self.order,
            self.sentry_event,
        ]
    }

    /// A request from their browser.
    fn request(&self, method: &str, uri: &str, body: &Value) -> Request<Body> {
        browser_request(
            method,
            uri,
            self.user_agent,
            self.address,
            Some(body),
            "application/json",
        )
    }

    /// A session token of theirs.
    fn token(&self) -> String {
        v4_token(&fixture_secret(), self.user_id)
    }
}

fn browser_request(
    method: &str,
    uri: &str,
    user_agent: &str,
    address: &str,
    body: Option<&Value>,
    content_type: &str,
) -> Request<Body> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("user-agent", user_agent)
        .header("x-forwarded-for", address)
        .header("referer", "https://deals.example/flights/lhr-jfk");
    match body {
        Some(body) => request
            .header("content-type", content_type)
            .body(Body::from(body.to_string())),
        None => request.header("content-length", "0").body(Body::empty()),
    }
    .expect("a request")
}

/// The bundle, the database, and an admin function of the same settings
/// for running the jobs.
struct Site {
    stack: stack::Stack,
    jobs: admin::App,
    client: tokio_postgres::Client,
    /// Dropped last, after the connections to it.
    _db: TestDatabase,
}

fn settings(db: &TestDatabase) -> platform::config::Env {
    let dsn = format!("https://{SENTRY_KEY}@api.deals.example/{SENTRY_PROJECT}");
    db.env(&[
        ("NEXTAUTH_SECRET", fixture_secret().as_str()),
        ("PRIVACY_PSEUDONYM_KEY", PSEUDONYM_KEY),
        ("SENTRY_DSNS", dsn.as_str()),
    ])
}

impl Site {
    async fn open() -> Self {
        let db = TestDatabase::migrated().await;
        let stack = stack::Stack::build(&settings(&db)).expect("the stack");
        let jobs = admin::App::build(&settings(&db)).expect("the jobs' function");
        let client = db.connect().await;
        Self {
            stack,
            jobs,
            client,
            _db: db,
        }
    }

    /// Sends `request` through the bundle's router; asserts a 2xx unless
    /// `expected` names the status; returns the JSON body (null if empty).
    async fn send(&self, request: Request<Body>, expected: Option<StatusCode>) -> Value {
        let described = format!("{} {}", request.method(), request.uri());
        let (status, _, bytes) = testkit::send(self.stack.router(), request).await;
        let text = String::from_utf8_lossy(&bytes);
        match expected {
            Some(expected) => assert_eq!(status, expected, "{described}: {text}"),
            None => assert!(status.is_success(), "{described}: {status} {text}"),
        }
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    /// An admin request of the super admin, from the office.
    async fn staff(&self, method: &str, uri: &str, body: Option<Value>) -> Value {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("user-agent", STAFF_AGENT)
            .header("x-forwarded-for", STAFF_ADDRESS)
            .header(
                "cookie",
                format!(
                    "next-auth.session-token={}",
                    v4_token(&fixture_secret(), "root-admin")
                ),
            );
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.header("content-length", "0").body(Body::empty()),
        }
        .expect("a request");
        self.send(request, None).await
    }

    async fn account(&self, id: &str, email: &str) {
        self.client
            .execute(
                r#"INSERT INTO "users" ("id", "email", "name", "updatedAt") VALUES ($1, $2, $1, now())"#,
                &[&id, &email],
            )
            .await
            .expect("an account");
    }

    /// Runs a job as the scheduled direct invoke `payload` would.
    async fn run_job(&self, payload: Value) -> Value {
        let command = admin::commands::Command::from_payload(payload).expect("a command");
        self.run(&command).await
    }

    async fn run(&self, command: &admin::commands::Command) -> Value {
        let mut client = self
            .jobs
            .state
            .access
            .pool
            .get()
            .await
            .expect("a connection");
        admin::commands::execute(&mut client, command, admin::bootstrap::Channel::Cli)
            .await
            .expect("the job")
    }

    async fn text(&self, sql: &str) -> String {
        self.client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    /// Rows holding `needle` in any text, json, jsonb, array, uuid or
    /// network address column of any table of the database's schemas, by
    /// `schema.table.column`, the site's accounts (`users`) aside. The columns are read from the
    /// catalogue, so a table no one thought of is searched too.
    async fn occurrences(&self, needle: &str) -> BTreeMap<String, i64> {
        let columns = self
            .client
            .query(
                r#"SELECT c.table_schema, c.table_name, c.column_name
                   FROM information_schema.columns c
                   JOIN information_schema.tables t USING (table_schema, table_name)
                   WHERE c.table_schema IN ('public', 'bundle', 'audit_trail')
                     AND t.table_type = 'BASE TABLE'
                     AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY',
                                         'uuid', 'inet', 'cidr')
                     AND NOT (c.table_schema = 'public' AND c.table_name = 'users')
                   ORDER BY 1, 2, 3"#,
                &[],
            )
            .await
            .expect("the catalogue's columns");
        assert!(columns.len() > 50, "the catalogue lists the columns");
        let mut found = BTreeMap::new();
        for column in &columns {
            let (schema, table, name): (String, String, String) =
                (column.get(0), column.get(1), column.get(2));
            // Identifiers from the catalogue, quoted; the needle a parameter
            // (strpos: a substring, with no LIKE wildcards to escape).
            let sql = format!(
                r#"SELECT count(*) FROM "{schema}"."{table}" WHERE strpos("{name}"::text, $1) > 0"#
            );
            let count: i64 = self
                .client
                .query_one(&sql, &[&needle])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0);
            if count > 0 {
                found.insert(format!("{schema}.{table}.{name}"), count);
            }
        }
        found
    }

    /// [`Self::occurrences`] of each of `visitor`'s identifiers.
    async fn traces(&self, visitor: &Visitor) -> BTreeMap<&'static str, BTreeMap<String, i64>> {
        let mut traces = BTreeMap::new();
        for identifier in visitor.identifiers() {
            traces.insert(identifier, self.occurrences(identifier).await);
        }
        traces
    }
}

/// The super admin (inserted: someone has to be first), and the
/// experiment, created and started through the admin API.
async fn staff_and_experiment(site: &Site) {
    site.account("root-admin", "root@deals.example").await;
    site.client
        .execute(
            r#"INSERT INTO "admin_users" ("id", "userId", "role", "updatedAt")
               VALUES ('root-admin', 'root-admin', 'super_admin', now())"#,
            &[],
        )
        .await
        .expect("the super admin");
    site.staff(
        "POST",
        "/api/admin/flags",
        Some(json!({
            "key": EXPERIMENT,
            "name": "Checkout test",
            "enabled": true,
            "rolloutPercentage": 100,
            "variants": [{"id": "control", "weight": 50}, {"id": "one-page", "weight": 50}],
            "isExperiment": true,
            "successMetric": "booking_complete"
        })),
    )
    .await;
    site.staff(
        "POST",
        &format!("/api/admin/experiments/{EXPERIMENT}/start"),
        None,
    )
    .await;
}

/// `visitor`'s visit: a page view before signing in, then signed in a
/// search, results with a fare, the booking funnel and a booking; Web
/// Vitals in both shapes; their own browser error and one everyone gets,
/// and a Sentry SDK's event; the experiment, its conversion; flags, a
/// price prediction and a deal's view counter, which store nothing of
/// them.
async fn visit(site: &Site, visitor: &Visitor, depart: &str) {
    let session = visitor.session_id;
    let user = visitor.user_id;

    // A page-view beacon before signing in: `sendBeacon` sends a string.
    let beacon = json!({"sessionId": session, "eventType": "page_view",
        "eventData": {"url": "https://deals.example/", "referrer": "https://search.example/?q=cheap+flights"}});
    site.send(
        browser_request(
            "POST",
            "/api/analytics/events",
            visitor.user_agent,
            visitor.address,
            Some(&beacon),
            "text/plain;charset=UTF-8",
        ),
        Some(StatusCode::ACCEPTED),
    )
    .await;

    site.send(
        visitor.request(
            "POST",
            "/ofrep/v1/evaluate/flags",
            &json!({"context": {"targetingKey": user, "sessionId": session, "email": visitor.email}}),
        ),
        None,
    )
    .await;
    let assigned = site
        .send(
            visitor.request(
                "POST",
                "/api/experiments/assign",
                &json!({"sessionId": session, "userId": user, "flags": [EXPERIMENT]}),
            ),
            None,
        )
        .await;
    assert!(
        assigned.to_string().contains(EXPERIMENT),
        "enrolled: {assigned}"
    );

    let fare = json!({"origin": "LHR", "destination": "JFK", "departDate": depart,
        "price": 412.5, "currency": "EUR", "url": "https://deals.example/flights/lhr-jfk"});
    let batch = json!({"sessionId": session, "userId": user, "events": [
        {"eventType": "page_view", "eventData": {"url": "https://deals.example/flights", "referrer": "https://deals.example/"}},
        {"eventType": "flight_search", "eventData": {"origin": "LHR", "destination": "JFK", "departDate": depart, "passengers": 1}},
        {"eventType": "results_view", "eventData": fare},
        {"eventType": "funnel", "eventData": {"stage": "search", "action": "complete"}},
        {"eventType": "booking_start", "eventData": {"price": 412.5, "currency": "EUR"}},
        {"eventType": "funnel", "eventData": {"stage": "checkout", "action": "enter", "duration": 5200,
            "metadata": {"contactEmail": visitor.email, "userId": user}}},
        {"eventType": "booking_complete", "eventData": {"revenue": 412.5, "currency": "EUR", "bookingId": visitor.order}}
    ]});
    let stored = site
        .send(
            visitor.request("POST", "/api/analytics/events", &batch),
            Some(StatusCode::ACCEPTED),
        )
        .await;
    assert_eq!(stored["stored"], 7, "{stored}");
    assert_eq!(stored["funnelSteps"], 2, "{stored}");

    // The front end's shape, then web-vitals' `Metric` as the library
    // hands it over.
    site.send(
        visitor.request(
            "POST",
            "/api/analytics/vitals",
            &json!({"sessionId": session, "userId": user, "metricName": "LCP", "value": 2100,
                "rating": "good", "url": "https://deals.example/flights", "connectionType": "4g"}),
        ),
        Some(StatusCode::ACCEPTED),
    )
    .await;
    site.send(
        visitor.request(
            "POST",
            &format!("/api/analytics/vitals?sessionId={session}"),
            &json!([{"name": "CLS", "value": 0.02, "rating": "good", "delta": 0.02,
                "id": "v5-1764500000123-4242", "navigationType": "navigate", "entries": []}]),
        ),
        Some(StatusCode::ACCEPTED),
    )
    .await;

    site.send(
        visitor.request(
            "POST",
            "/api/analytics/errors",
            &json!({"message": format!("Cannot read properties of undefined (reading 'seat') for {user}"),
                "errorType": "TypeError", "sessionId": session, "userId": user,
                "url": "https://deals.example/checkout", "severity": "error",
                "fingerprint": format!("seat-map-{user}")}),
        ),
        Some(StatusCode::ACCEPTED),
    )
    .await;
    site.send(
        visitor.request(
            "POST",
            "/api/analytics/errors",
            &json!({"message": "ChunkLoadError: loading chunk 42 failed", "errorType": "ChunkLoadError",
                "sessionId": session, "userId": user, "url": "https://deals.example/deals",
                "fingerprint": "chunk-load-42"}),
        ),
        Some(StatusCode::ACCEPTED),
    )
    .await;
    let event = json!({
        "event_id": visitor.sentry_event.replace('-', ""),
        "level": "error",
        "platform": "javascript",
        "user": {"id": user, "email": visitor.email, "ip_address": visitor.address},
        "tags": {"sessionId": session},
        "request": {"url": "https://deals.example/deals/lisbon", "headers": {"User-Agent": visitor.user_agent}},
        "exception": {"values": [{"type": "RangeError", "value": format!("invalid date for {user}")}]}
    });
    let envelope = format!(
        "{}\n{}\n{event}\n",
        json!({"event_id": event["event_id"]}),
        json!({"type": "event", "length": event.to_string().len()})
    );
    let request = Request::builder()
        .method("POST")
        .uri(format!(
            "/api/{SENTRY_PROJECT}/envelope/?sentry_key={SENTRY_KEY}&sentry_version=7"
        ))
        .header("user-agent", visitor.user_agent)
        .header("x-forwarded-for", visitor.address)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Body::from(envelope))
        .expect("an envelope");
    site.send(request, Some(StatusCode::OK)).await;

    site.send(
        visitor.request(
            "POST",
            "/api/experiments/convert",
            &json!({"flagKey": EXPERIMENT, "sessionId": session, "userId": user,
                "value": 412.5, "conversionId": visitor.order}),
        ),
        None,
    )
    .await;

    // No model is active: a 503, and nothing about the person either way.
    site.send(
        visitor.request(
            "POST",
            "/api/predictions/price",
            &json!({"origin": "LHR", "destination": "JFK", "departDate": depart, "currentPrice": 412.5}),
        ),
        Some(StatusCode::SERVICE_UNAVAILABLE),
    )
    .await;
    // A counter of a deal that does not exist: nothing stored at all.
    let (status, _, _) = testkit::send(
        site.stack.router(),
        browser_request(
            "POST",
            "/api/deals/lisbon-in-spring/view",
            visitor.user_agent,
            visitor.address,
            None,
            "application/json",
        ),
    )
    .await;
    assert!(!status.is_server_error(), "deal view: {status}");
}

/// Ana is made an admin for a while: she creates a flag from her browser,
/// so the trail holds her id, email, address and agent as the actor, and
/// her id as the grant's subject; then her grant is revoked.
async fn ana_works_as_an_admin_for_a_while(site: &Site) {
    site.staff(
        "POST",
        "/api/admin/users",
        Some(json!({"userId": ANA.user_id, "role": "admin"})),
    )
    .await;
    let mut request = ANA.request(
        "POST",
        "/api/admin/flags",
        &json!({"key": "spring-banner", "name": "Spring banner"}),
    );
    request.headers_mut().insert(
        "cookie",
        format!("next-auth.session-token={}", ANA.token())
            .parse()
            .expect("a cookie"),
    );
    site.send(request, Some(StatusCode::CREATED)).await;
    site.staff("DELETE", &format!("/api/admin/users/{}", ANA.user_id), None)
        .await;
}

/// Tables whose columns held `visitor`'s identifiers.
fn tables(traces: &BTreeMap<&'static str, BTreeMap<String, i64>>) -> Vec<String> {
    let mut tables: Vec<String> = traces
        .values()
        .flat_map(|found| found.keys())
        .map(|column| {
            column
                .rsplit_once('.')
                .map_or("", |(table, _)| table)
                .to_owned()
        })
        .collect();
    tables.sort();
    tables.dedup();
    tables
}

#[tokio::test]
async fn an_erasure_leaves_no_row_naming_a_visitor_seen_through_every_route() {
    let site = Site::open().await;
    let depart = site
        .text("SELECT to_char(current_date + 30, 'YYYY-MM-DD')")
        .await;
    site.account(ANA.user_id, ANA.email).await;
    site.account(BEN.user_id, BEN.email).await;
    staff_and_experiment(&site).await;

    visit(&site, &ANA, &depart).await;
    visit(&site, &BEN, &depart).await;
    ana_works_as_an_admin_for_a_while(&site).await;
    let cohorts = site.run_job(json!({"command": "cohorts"})).await;
    site.run_job(json!({"command": "rollup"})).await;
    site.run_job(json!({"command": "fares-sync"})).await;

    // Her data reached every table that keeps a visitor, the derived ones
    // included: otherwise the check after the erasure would prove little.
    let before = site.traces(&ANA).await;
    let held = tables(&before);
    for table in [
        "public.analytics_events",
        "public.conversion_funnels",
        "public.performance_metrics",
        "public.error_logs",
        "public.experiment_participations",
        "public.user_cohorts",
        "public.audit_logs",
        "bundle.experiment_conversions",
        "bundle.sentry_events",
    ] {
        assert!(
            held.iter().any(|t| t == table),
            "{table} holds nothing of Ana before the erasure (cohorts: {cohorts}); found: {before:#?}"
        );
    }
    let ben_before = site.traces(&BEN).await;
    assert!(
        tables(&ben_before).len() >= 6,
        "Ben's rows: {ben_before:#?}"
    );

    let erasure = site
        .staff(
            "POST",
            "/api/admin/privacy/erasure",
            Some(json!({"userId": ANA.user_id})),
        )
        .await;
    assert_eq!(erasure["usersMatched"], 1, "{erasure}");
    // Her own error group and her SDK's are deleted; the group Ben
    // reported too is kept, without her.
    let counts: BTreeMap<String, (u64, u64)> = erasure["tables"]
        .as_array()
        .expect("counts per table")
        .iter()
        .map(|t| {
            let count = |field: &str| t[field].as_u64().expect("a count");
            let table = t["table"].as_str().expect("a table").to_owned();
            (table, (count("deleted"), count("anonymised")))
        })
        .collect();
    let expected: BTreeMap<String, (u64, u64)> = [
        ("analytics_events", (8, 0)),
        ("conversion_funnels", (2, 0)),
        ("performance_metrics", (2, 0)),
        ("error_logs", (2, 1)),
        ("bundle.sentry_events", (1, 0)),
        ("experiment_participations", (1, 0)),
        ("bundle.experiment_conversions", (1, 0)),
        ("user_cohorts", (1, 0)),
    ]
    .into_iter()
    .map(|(table, count)| (table.to_owned(), count))
    .collect();
    assert_eq!(counts, expected, "{erasure}");

    let after = site.traces(&ANA).await;
    let left: Vec<String> = after
        .iter()
        .flat_map(|(identifier, found)| {
            found
                .iter()
                .map(move |(column, rows)| format!("{column}: {rows} row(s) hold {identifier:?}"))
        })
        .collect();
    assert!(
        left.is_empty(),
        "after the erasure ({erasure}):\n{}",
        left.join("\n")
    );
    assert_eq!(site.traces(&BEN).await, ben_before, "Ben's rows changed");

    let verified = site.staff("GET", "/api/admin/audit/verify", None).await;
    assert_eq!(verified["intact"], true, "{verified}");
    let whole_chain = admin::commands::Command::from_args(["audit-verify".to_owned()])
        .expect("the full verification");
    let full = site.run(&whole_chain).await;
    assert_eq!(full["intact"], true, "{full}");
}
