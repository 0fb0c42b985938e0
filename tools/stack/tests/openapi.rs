//! The API description is the code's: the committed `openapi.json` is what
//! the handlers' types generate, and it describes exactly the routes that
//! are deployed and served locally.

use std::collections::BTreeSet;

const COMMITTED: &str = include_str!("../../../openapi.json");

#[test]
fn the_committed_openapi_json_is_the_one_the_code_generates() {
    assert!(
        COMMITTED == stack::openapi_json(),
        "openapi.json is stale: regenerate it with `cargo run -p stack -- openapi > openapi.json`"
    );
}

fn described_routes() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(&stack::openapi_json()).expect("the document is JSON");
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            ["get", "post", "put", "patch", "delete", "head"]
                .into_iter()
                .filter(|method| item.get(*method).is_some())
                .map(|method| (method.to_ascii_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_deployed_route_is_described_and_nothing_else() {
    assert_eq!(described_routes(), testkit::deployed_routes());
}

#[test]
fn every_locally_served_route_is_described_and_nothing_else() {
    assert_eq!(described_routes(), testkit::watched_routes());
}

#[test]
fn schemas_of_one_name_are_one_schema_across_functions() {
    let parts = [
        events::openapi(),
        admin::openapi(),
        cms::openapi(),
        health::openapi(),
    ];
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    for part in &parts {
        for (name, schema) in part.components.iter().flat_map(|c| c.schemas.iter()) {
            let text = serde_json::to_string(schema).expect("schema");
            if let Some(earlier) = seen.insert(name.clone(), text.clone()) {
                assert_eq!(earlier, text, "two different schemas are both named {name}");
            }
        }
    }
}
