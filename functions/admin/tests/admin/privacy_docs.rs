//! docs/privacy.md against the database and the code: every personal
//! column of a migrated database is on the page, every column on the page
//! exists, the retention settings and their defaults are the code's, and a
//! table governed by a setting says so.
//!
//! "Personal" is decided by name, over every table of every schema the
//! bundle migrates (the contract's, `bundle`, `audit_trail`): a column
//! named in [`PERSONAL_NAMES`] anywhere, or in [`PERSONAL_COLUMNS`] in its
//! table, or listed by the erasure ([`erasure::PERSONAL_DATA`]). So a new
//! table or migration with a `userId`, a `url` or an `ipAddress` fails here
//! until the page says how long it is kept and why.

use std::collections::{BTreeMap, BTreeSet};

use admin::privacy::{erasure, retention};

use crate::spawn_app;

/// Column names that are personal in whatever table they appear.
const PERSONAL_NAMES: &[&str] = &[
    "userId",
    "sessionId",
    "ipAddress",
    "userAgent",
    "url",
    "referrer",
    "email",
    "userEmail",
    "eventData",
    "stack",
    "message",
    "changes",
    "resolvedBy",
    "createdBy",
    "notes",
    "testRecipients",
    "browser",
    "browserVersion",
    "os",
    "deviceType",
    "connectionType",
];

/// Columns personal in their table only (the name elsewhere is not:
/// `health_checks.metadata` is a probe's detail).
const PERSONAL_COLUMNS: &[(&str, &str)] = &[
    ("users", "name"),
    ("users", "image"),
    ("conversion_funnels", "metadata"),
    ("audit_logs", "errorMessage"),
    ("audit_logs", "resourceId"),
    ("bundle.observed_fares", "eventId"),
];

fn page() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/privacy.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The cells of the rows of the page's table whose header starts with
/// `first | second`, backticks removed.
fn table_rows(page: &str, first: &str, second: &str) -> Vec<Vec<String>> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().replace('`', ""))
            .collect()
    };
    let mut rows = Vec::new();
    let mut inside = false;
    for line in page.lines() {
        if !line.trim_start().starts_with('|') {
            inside = false;
            continue;
        }
        let row = cells(line);
        if row.len() >= 2 && row[0] == first && row[1] == second {
            inside = true;
        } else if inside && !row.iter().all(|c| c.chars().all(|ch| "-: ".contains(ch))) {
            rows.push(row);
        }
    }
    rows
}

/// `(table, column)` → the row's cells, from the page's personal fields.
fn documented() -> BTreeMap<(String, String), Vec<String>> {
    let mut fields = BTreeMap::new();
    for row in table_rows(&page(), "table", "column") {
        assert!(row.len() == 5, "a field's row has 5 cells: {row:?}");
        let key = (row[0].clone(), row[1].clone());
        assert!(
            fields.insert(key.clone(), row).is_none(),
            "{key:?} is listed twice"
        );
    }
    assert!(!fields.is_empty(), "docs/privacy.md lists no field");
    fields
}

/// Every column of the migrated database, as `(table, column)`; tables
/// outside `public` by their schema.
async fn catalog() -> BTreeSet<(String, String)> {
    let app = spawn_app().await;
    app.client
        .query(
            r#"SELECT CASE WHEN table_schema = 'public' THEN table_name::text
                           ELSE table_schema || '.' || table_name END, column_name::text
               FROM information_schema.columns
               WHERE table_schema IN ('public', 'bundle', 'audit_trail')"#,
            &[],
        )
        .await
        .expect("catalog")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn personal(catalog: &BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    let mut personal: BTreeSet<(String, String)> = catalog
        .iter()
        .filter(|(table, column)| {
            PERSONAL_NAMES.contains(&column.as_str())
                || PERSONAL_COLUMNS.contains(&(table.as_str(), column.as_str()))
        })
        .cloned()
        .collect();
    for data in erasure::PERSONAL_DATA {
        for column in data.columns {
            personal.insert((data.table.to_owned(), (*column).to_owned()));
        }
    }
    personal
}

#[tokio::test]
async fn every_personal_column_of_the_database_is_on_the_page() {
    let catalog = catalog().await;
    let documented = documented();

    let missing: Vec<_> = personal(&catalog)
        .into_iter()
        .filter(|field| !documented.contains_key(field))
        .collect();

    assert!(
        missing.is_empty(),
        "docs/privacy.md does not say how long these are kept, or why: {missing:?}"
    );
}

#[tokio::test]
async fn every_field_on_the_page_is_a_column_of_the_database() {
    let catalog = catalog().await;

    let unknown: Vec<_> = documented()
        .into_keys()
        .filter(|field| !catalog.contains(field))
        .collect();

    assert!(
        unknown.is_empty(),
        "docs/privacy.md lists columns that do not exist: {unknown:?}"
    );
}

#[test]
fn every_retention_setting_is_on_the_page_with_its_default_and_tables() {
    let rows = table_rows(&page(), "setting", "default");
    let listed: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| (row[0].clone(), row[1].clone(), row[2].clone()))
        .collect();

    let expected: Vec<(String, String, String)> = retention::SETTINGS
        .iter()
        .map(|s| {
            (
                s.variable.to_owned(),
                format!("{} days", s.default_days),
                s.tables.join(", "),
            )
        })
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn a_field_kept_by_a_retention_setting_names_it_and_no_other_does() {
    for ((table, column), row) in documented() {
        let kept = &row[3];
        let governing = retention::SETTINGS
            .iter()
            .find(|s| s.tables.contains(&table.as_str()));
        match governing {
            Some(setting) => assert!(
                kept.contains(setting.variable),
                "{table}.{column}: kept by {}, the page says {kept:?}",
                setting.variable
            ),
            None => assert!(
                !kept.contains("RETENTION_"),
                "{table}.{column}: no retention setting deletes {table}, the page says {kept:?}"
            ),
        }
    }
}
