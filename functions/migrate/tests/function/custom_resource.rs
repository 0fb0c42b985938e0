use migrate::custom_resource::PHYSICAL_RESOURCE_ID;
use serde_json::Value;
use testkit::{TestDatabase, fixture};

use crate::{handler_for, invoke, response_listener};

fn request(kind: &str, response_url: &str) -> Value {
    let mut payload = fixture(&format!("cloudformation-{kind}.json"));
    payload["ResponseURL"] = response_url.into();
    payload
}

async fn table_count(db: &TestDatabase) -> i64 {
    db.connect()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '\\_%'",
            &[],
        )
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn create_migrates_and_puts_success_with_a_stable_physical_id() {
    let db = TestDatabase::empty().await;
    let (url, mut replies) = response_listener().await;
    invoke(&handler_for(db.url()), request("create", &url))
        .await
        .expect("handled");
    let reply = replies.recv().await.expect("a reply was PUT");
    assert_eq!(reply.body["Status"], "SUCCESS");
    assert_eq!(reply.body["PhysicalResourceId"], PHYSICAL_RESOURCE_ID);
    assert_eq!(
        reply.body["RequestId"],
        "82304eb2-bdda-469f-a33b-a3f1406d0a52"
    );
    assert_eq!(reply.body["LogicalResourceId"], "CustomResource");
    assert!(
        reply.body["StackId"]
            .as_str()
            .is_some_and(|s| s.starts_with("arn:aws:cloudformation"))
    );
    assert_eq!(
        reply.body["Data"]["Applied"],
        schema::migrations::embedded().len()
    );
    assert_eq!(table_count(&db).await, 18, "17 contract tables and users");
}

#[tokio::test]
async fn the_reply_has_no_content_type_because_the_url_is_signed_without_one() {
    let db = TestDatabase::empty().await;
    let (url, mut replies) = response_listener().await;
    invoke(&handler_for(db.url()), request("create", &url))
        .await
        .expect("handled");
    let reply = replies.recv().await.expect("reply");
    assert!(
        reply.headers.get("content-type").is_none(),
        "{:?}",
        reply.headers
    );
}

#[tokio::test]
async fn update_migrates_and_keeps_the_physical_id_it_was_given() {
    let db = TestDatabase::empty().await;
    let (url, mut replies) = response_listener().await;
    let mut payload = request("update", &url);
    payload["PhysicalResourceId"] = PHYSICAL_RESOURCE_ID.into();
    invoke(&handler_for(db.url()), payload)
        .await
        .expect("handled");
    let reply = replies.recv().await.expect("reply");
    assert_eq!(reply.body["Status"], "SUCCESS");
    assert_eq!(reply.body["PhysicalResourceId"], PHYSICAL_RESOURCE_ID);
}

#[tokio::test]
async fn delete_puts_success_and_drops_nothing() {
    let db = TestDatabase::migrated().await;
    let (url, mut replies) = response_listener().await;
    invoke(&handler_for(db.url()), request("delete", &url))
        .await
        .expect("handled");
    let reply = replies.recv().await.expect("reply");
    assert_eq!(reply.body["Status"], "SUCCESS");
    assert_eq!(
        reply.body["PhysicalResourceId"],
        "custom-resource-f4bd5382-3de3-4caf-b7ad-1be06b899647"
    );
    assert_eq!(table_count(&db).await, 18);
}

#[tokio::test]
async fn a_failed_migration_puts_failed_with_the_reason() {
    let db = TestDatabase::empty().await;
    db.connect()
        .await
        .batch_execute(
            r#"CREATE TABLE "_bundle_migrations" ("id" VARCHAR(36) PRIMARY KEY, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
                 "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
                 "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
               INSERT INTO "_bundle_migrations" ("id", "checksum", "migration_name", "logs") VALUES ('x', 'y', '20990101000000_bad', 'boom');"#,
        )
        .await
        .expect("failed row");
    let (url, mut replies) = response_listener().await;
    invoke(&handler_for(db.url()), request("create", &url))
        .await
        .expect("handled");
    let reply = replies.recv().await.expect("reply");
    assert_eq!(reply.body["Status"], "FAILED");
    let reason = reply.body["Reason"].as_str().expect("reason");
    assert!(
        reason.contains("20990101000000_bad") && reason.contains("boom"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_unreachable_database_still_gets_a_failed_reply() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let (url, mut replies) = response_listener().await;
    let handler = handler_for(&format!(
        "postgres://nobody@127.0.0.1:{closed_port}/nothing?sslmode=disable"
    ));
    invoke(&handler, request("create", &url))
        .await
        .expect("handled");
    let reply = replies.recv().await.expect("reply");
    assert_eq!(reply.body["Status"], "FAILED");
    assert!(reply.body["Reason"].as_str().is_some_and(|r| !r.is_empty()));
}

#[tokio::test]
async fn a_missing_database_url_still_gets_a_failed_reply_naming_the_variable() {
    let (url, mut replies) = response_listener().await;
    let handler = migrate::App::build(&platform::config::Env::from_pairs([]));
    invoke(&handler, request("create", &url))
        .await
        .expect("handled");
    let reply = replies.recv().await.expect("reply");
    assert_eq!(reply.body["Status"], "FAILED");
    assert!(
        reply.body["Reason"]
            .as_str()
            .is_some_and(|r| r.contains("POSTGRES_URL"))
    );
}
