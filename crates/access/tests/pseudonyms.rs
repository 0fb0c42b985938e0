//! Pseudonymising a person in the hash-chained audit trail
//! (`access::pseudonym`), against a real database.

use access::audit::{self, Person, Problem, Verification};
use access::pseudonym::{KEPT_REASON, pseudonym};
use serde_json::{Value, json};

const KEY: [u8; 32] = [42; 32];

struct Trail {
    db: testkit::TestDatabase,
    client: tokio_postgres::Client,
}

async fn trail() -> Trail {
    let db = testkit::TestDatabase::migrated().await;
    let client = db.connect().await;
    Trail { db, client }
}

impl Trail {
    /// An audit row written the way the Prisma application writes one: a
    /// plain insert, chained by the trigger.
    async fn row(&self, id: &str, user_id: &str, email: &str, changes: Value) {
        self.client
            .execute(
                r#"INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource",
                       "resourceId", "changes", "ipAddress", "userAgent")
                   VALUES ($1, $2, $3, 'admin', 'update', 'users', 'target-1', $4, $5, $6)"#,
                &[
                    &id,
                    &user_id,
                    &email,
                    &changes,
                    &format!("10.0.0.{}", id.len()),
                    &format!("Browser of {user_id}"),
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("inserting {id}: {e}"));
    }

    /// An audit row linked over its raw columns, as every row was before
    /// the pseudonyms' migration: written with the triggers off, then
    /// linked to the head with the database's own `audit_trail.link`.
    async fn row_chained_before(&self, id: &str, user_id: &str, email: &str) {
        self.client
            .batch_execute(&format!(
                r#"BEGIN;
                   SET LOCAL session_replication_role = replica;
                   INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "ipAddress")
                   VALUES ('{id}', '{user_id}', '{email}', 'admin', 'update', 'deals', 'deal-1', '10.9.9.9');
                   COMMIT;
                   INSERT INTO "audit_trail"."chain" ("auditId", "prevHash", "hash", "chainedAt")
                   SELECT a."id", h."prev", "audit_trail"."link"(h."prev", to_jsonb(a), a."timestamp" AT TIME ZONE 'UTC', false),
                          a."timestamp" AT TIME ZONE 'UTC'
                   FROM "audit_logs" a,
                        (SELECT coalesce((SELECT "hash" FROM "audit_trail"."chain" ORDER BY "seq" DESC LIMIT 1),
                                         repeat('0', 64)) AS "prev") h
                   WHERE a."id" = '{id}';"#
            ))
            .await
            .unwrap_or_else(|e| panic!("chaining {id}: {e}"));
    }

    async fn pooled(&self) -> deadpool_postgres::Object {
        platform::db::pool_for(
            &self.db.settings(),
            1,
            std::time::Duration::from_secs(10),
            platform::db::Checkout::Verified,
        )
        .expect("pool")
        .get()
        .await
        .expect("connection")
    }

    async fn verified(&self) -> Verification {
        audit::verify(&mut self.pooled().await)
            .await
            .expect("verify")
    }

    async fn verified_incrementally(&self) -> Verification {
        audit::verify_incremental(&mut self.pooled().await, 1_000)
            .await
            .expect("verify")
    }

    /// Runs the procedure in a transaction of its own and commits it.
    async fn pseudonymise(&mut self, person: Person) -> audit::PseudonymReport {
        let tx = self.client.transaction().await.expect("transaction");
        let report = audit::pseudonymise_person(&tx, &person, &KEY)
            .await
            .expect("pseudonymise");
        tx.commit().await.expect("commit");
        report
    }

    /// Runs `sql` with triggers off, as a superuser bypassing the guards would.
    async fn behind_the_triggers(&self, sql: &str) {
        self.client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT;"
            ))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn whole_trail_text(&self) -> String {
        self.client
            .query_one(
                r#"SELECT coalesce(string_agg(to_jsonb(a)::text, E'\n' ORDER BY a."id"), '') FROM "audit_logs" a"#,
                &[],
            )
            .await
            .expect("trail")
            .get(0)
    }

    async fn audit_row(&self, id: &str) -> Value {
        self.client
            .query_one(
                r#"SELECT to_jsonb(a) FROM "audit_logs" a WHERE a."id" = $1"#,
                &[&id],
            )
            .await
            .expect("row")
            .get(0)
    }
}

/// Ann's rows and Bob's: one of Bob's grants something to Ann, naming her
/// in its changes.
async fn ann_and_bob(trail: &Trail) {
    trail
        .row(
            "ann-1",
            "ann-id-0001",
            "ann@example.com",
            json!({"after": {"theme": "dark"}}),
        )
        .await;
    trail
        .row(
            "bob-1",
            "bob-id-0001",
            "bob@example.com",
            json!({"by": "bob@example.com", "after": {"grantee": "ann@example.com", "ann-id-0001": "admin"}}),
        )
        .await;
    trail
        .row("ann-2", "ann-id-0001", "ann@example.com", Value::Null)
        .await;
    trail
        .row(
            "bob-2",
            "bob-id-0001",
            "bob@example.com",
            json!({"after": {"n": 1}}),
        )
        .await;
}

fn kinds(report: &Verification) -> Vec<&'static str> {
    report
        .problems
        .iter()
        .map(|problem| match problem {
            Problem::Altered { .. } => "altered",
            Problem::Missing { .. } => "missing",
            Problem::BrokenLink { .. } => "broken_link",
            Problem::Unchained { .. } => "unchained",
            Problem::CheckpointMismatch { .. } => "checkpoint_mismatch",
            Problem::Restarted { .. } => "restarted",
            Problem::PseudonymisationAltered { .. } => "pseudonymisation_altered",
            Problem::OutOfOrder { .. } => "out_of_order",
        })
        .collect()
}

fn altered_ids(report: &Verification) -> Vec<&str> {
    report
        .problems
        .iter()
        .filter_map(|problem| match problem {
            Problem::Altered { audit_id, .. } => Some(audit_id.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn after_pseudonymising_a_user_the_whole_chain_verifies() {
    let mut trail = trail().await;
    ann_and_bob(&trail).await;
    let report = trail
        .pseudonymise(Person::UserId("ann-id-0001".into()))
        .await;
    assert_eq!(report.rows_pseudonymised, 3, "{report:?}");
    assert_eq!(report.rows_kept, 0);
    let verification = trail.verified().await;
    assert!(verification.intact, "{verification:?}");
    assert_eq!(verification.links, 4);
}

#[tokio::test]
async fn after_pseudonymising_a_user_an_incremental_verification_passes_over_their_rows() {
    let mut trail = trail().await;
    ann_and_bob(&trail).await;
    assert!(trail.verified_incrementally().await.intact);
    trail
        .row("ann-3", "ann-id-0001", "ann@example.com", Value::Null)
        .await;
    trail
        .pseudonymise(Person::Email("ann@example.com".into()))
        .await;
    let verification = trail.verified_incrementally().await;
    assert!(verification.intact, "{verification:?}");
    assert_eq!(verification.links, 1);
}

#[tokio::test]
async fn after_pseudonymising_a_user_their_identifiers_appear_nowhere_in_the_trail() {
    let mut trail = trail().await;
    ann_and_bob(&trail).await;
    trail
        .pseudonymise(Person::UserId("ann-id-0001".into()))
        .await;
    let text = trail.whole_trail_text().await;
    for identifier in ["ann-id-0001", "ann@example.com", "Browser of ann-id-0001"] {
        assert!(!text.contains(identifier), "{identifier} in {text}");
    }
    let ann = trail.audit_row("ann-1").await;
    assert_eq!(ann["userId"], pseudonym(&KEY, "ann-id-0001"));
    assert_eq!(ann["userEmail"], pseudonym(&KEY, "ann@example.com"));
    assert_eq!(ann["ipAddress"], pseudonym(&KEY, "10.0.0.5"));
    assert_eq!(
        trail.audit_row("bob-1").await["changes"],
        json!({"by": "bob@example.com", "after": {
            "grantee": pseudonym(&KEY, "ann@example.com"),
            pseudonym(&KEY, "ann-id-0001"): "admin",
        }})
    );
}

#[tokio::test]
async fn pseudonymising_a_user_leaves_another_users_identifiers_as_they_were() {
    let mut trail = trail().await;
    ann_and_bob(&trail).await;
    let before = trail.audit_row("bob-2").await;
    trail
        .pseudonymise(Person::UserId("ann-id-0001".into()))
        .await;
    assert_eq!(trail.audit_row("bob-2").await, before);
    let bob = trail.audit_row("bob-1").await;
    assert_eq!(bob["userId"], "bob-id-0001");
    assert_eq!(bob["userEmail"], "bob@example.com");
    assert_eq!(bob["userAgent"], "Browser of bob-id-0001");
}

#[tokio::test]
async fn a_session_id_names_no_one_in_the_trail() {
    let mut trail = trail().await;
    ann_and_bob(&trail).await;
    let before = trail.whole_trail_text().await;
    let report = trail
        .pseudonymise(Person::SessionId("ann-id-0001".into()))
        .await;
    assert_eq!((report.rows_pseudonymised, report.rows_kept), (0, 0));
    assert_eq!(trail.whole_trail_text().await, before);
}

#[tokio::test]
async fn an_update_outside_the_procedure_is_still_refused() {
    let trail = trail().await;
    ann_and_bob(&trail).await;
    let error = trail
        .client
        .execute(
            r#"UPDATE "audit_logs" SET "userId" = 'pseudonym:0000000000000000' WHERE "id" = 'ann-1'"#,
            &[],
        )
        .await
        .expect_err("refused");
    assert!(format!("{error:?}").contains("append-only"), "{error:?}");
}

#[tokio::test]
async fn with_the_procedures_setting_on_an_update_of_a_column_that_names_no_one_is_refused() {
    let trail = trail().await;
    ann_and_bob(&trail).await;
    let error = trail
        .client
        .batch_execute(
            r#"BEGIN; SET LOCAL audit_trail.pseudonymising = 'on';
               UPDATE "audit_logs" SET "success" = false WHERE "id" = 'ann-1'; COMMIT;"#,
        )
        .await
        .expect_err("refused");
    assert!(format!("{error:?}").contains("append-only"), "{error:?}");
}

#[tokio::test]
async fn an_identifying_column_changed_without_the_procedure_is_still_detected() {
    let trail = trail().await;
    ann_and_bob(&trail).await;
    trail
        .behind_the_triggers(
            r#"UPDATE "audit_logs" SET "userEmail" = 'someone@else.org' WHERE "id" = 'ann-2'"#,
        )
        .await;
    assert_eq!(altered_ids(&trail.verified().await), ["ann-2"]);
}

#[tokio::test]
async fn a_column_set_to_a_pseudonym_without_the_procedure_is_detected() {
    let trail = trail().await;
    ann_and_bob(&trail).await;
    trail
        .behind_the_triggers(&format!(
            r#"UPDATE "audit_logs" SET "userId" = '{}' WHERE "id" = 'bob-2'"#,
            pseudonym(&KEY, "bob-id-0001")
        ))
        .await;
    assert_eq!(altered_ids(&trail.verified().await), ["bob-2"]);
}

#[tokio::test]
async fn a_pseudonymised_column_changed_afterwards_is_detected() {
    let mut trail = trail().await;
    ann_and_bob(&trail).await;
    trail
        .pseudonymise(Person::UserId("ann-id-0001".into()))
        .await;
    trail
        .behind_the_triggers(r#"UPDATE "audit_logs" SET "userId" = 'pseudonym:ffffffffffffffff' WHERE "id" = 'ann-1'"#)
        .await;
    assert_eq!(altered_ids(&trail.verified().await), ["ann-1"]);
}

#[tokio::test]
async fn a_salt_erased_without_the_procedure_is_detected() {
    let trail = trail().await;
    ann_and_bob(&trail).await;
    trail
        .behind_the_triggers(
            r#"UPDATE "audit_trail"."salts" SET "ipAddress" = NULL WHERE "auditId" = 'bob-1'"#,
        )
        .await;
    assert_eq!(altered_ids(&trail.verified().await), ["bob-1"]);
}

#[tokio::test]
async fn a_row_whose_salts_were_removed_and_values_replaced_by_their_digests_is_detected() {
    let trail = trail().await;
    ann_and_bob(&trail).await;
    // The digests a link covers, put in the columns, with the salts gone:
    // the link says it covers digests, so raw columns do not match it.
    trail
        .behind_the_triggers(
            r#"UPDATE "audit_logs" a SET "userId" = "audit_trail"."covered"(to_jsonb(a), s, NULL)->>'userId'
               FROM "audit_trail"."salts" s WHERE s."auditId" = a."id" AND a."id" = 'bob-2';
               DELETE FROM "audit_trail"."salts" WHERE "auditId" = 'bob-2'"#,
        )
        .await;
    assert_eq!(altered_ids(&trail.verified().await), ["bob-2"]);
}

#[tokio::test]
async fn a_record_of_the_procedure_changed_afterwards_is_detected() {
    let mut trail = trail().await;
    ann_and_bob(&trail).await;
    trail
        .pseudonymise(Person::UserId("ann-id-0001".into()))
        .await;
    // The row and its record rewritten together to another pseudonym: the
    // row still matches its link, the record no longer its chain.
    let other = json!("pseudonym:ffffffffffffffff");
    trail
        .behind_the_triggers(&format!(
            r#"UPDATE "audit_logs" SET "userId" = 'pseudonym:ffffffffffffffff' WHERE "id" = 'ann-1';
               UPDATE "audit_trail"."pseudonymisations" SET "pseudonymisedDigest" = "audit_trail"."value_digest"('{other}')
               WHERE "auditId" = 'ann-1' AND "column" = 'userId'"#
        ))
        .await;
    let verification = trail.verified().await;
    assert_eq!(
        kinds(&verification),
        ["pseudonymisation_altered"],
        "{verification:?}"
    );
}

#[tokio::test]
async fn rows_chained_before_the_migration_are_kept_and_reported_and_the_chain_still_verifies() {
    let mut trail = trail().await;
    trail
        .row_chained_before("old-ann", "ann-id-0001", "ann@example.com")
        .await;
    ann_and_bob(&trail).await;
    let report = trail
        .pseudonymise(Person::UserId("ann-id-0001".into()))
        .await;
    assert_eq!(report.rows_kept, 1);
    assert_eq!(report.kept_audit_ids, ["old-ann"]);
    assert_eq!(report.kept_reason.as_deref(), Some(KEPT_REASON));
    assert_eq!(report.rows_pseudonymised, 3);
    assert_eq!(trail.audit_row("old-ann").await["userId"], "ann-id-0001");
    let verification = trail.verified().await;
    assert!(verification.intact, "{verification:?}");
}

#[tokio::test]
async fn the_procedure_refuses_a_row_that_no_longer_matches_its_link() {
    let mut trail = trail().await;
    ann_and_bob(&trail).await;
    trail
        .behind_the_triggers(r#"UPDATE "audit_logs" SET "action" = 'delete' WHERE "id" = 'ann-2'"#)
        .await;
    let tx = trail.client.transaction().await.expect("transaction");
    let error = audit::pseudonymise_person(&tx, &Person::UserId("ann-id-0001".into()), &KEY)
        .await
        .expect_err("refused");
    assert!(
        format!("{error:?}").contains("no longer matches its link"),
        "{error:?}"
    );
}

#[tokio::test]
async fn pseudonymising_twice_changes_nothing_more_and_still_verifies() {
    let mut trail = trail().await;
    ann_and_bob(&trail).await;
    trail
        .pseudonymise(Person::UserId("ann-id-0001".into()))
        .await;
    let again = trail
        .pseudonymise(Person::UserId("ann-id-0001".into()))
        .await;
    assert_eq!(again.rows_pseudonymised, 0);
    // Bob's grant named Ann in its changes, and Bob: its changes,
    // pseudonymised for Ann, are pseudonymised again for Bob.
    let bob = trail
        .pseudonymise(Person::Email("bob@example.com".into()))
        .await;
    assert_eq!(bob.rows_pseudonymised, 2);
    let verification = trail.verified().await;
    assert!(verification.intact, "{verification:?}");
}
