//! Pseudonymising a person in the audit trail, which is append-only and
//! hash-chained, so that the chain still verifies.
//!
//! From migration `20261201160000_audit_pseudonyms` on, a row's link in
//! `audit_trail.chain` does not cover its identifying columns (`userId`,
//! `userEmail`, `resourceId`, `changes`, `ipAddress`, `userAgent`,
//! `errorMessage`) as written, but `sha256(salt || value)` of each, with a
//! random 16-byte salt per row and column in `audit_trail.salts`. The other
//! columns are covered as before. A verification recomputes the digests
//! from the columns, so a column altered any other way is still `altered`.
//!
//! [`pseudonymise_person`] replaces the person's identifiers by
//! `pseudonym:<first 16 hex of HMAC-SHA256(key, value)>` through the
//! database's `audit_trail.pseudonymise`, the one procedure the append-only
//! triggers let through. For each column it changes, it records in
//! `audit_trail.pseudonymisations` the digest the link covers and the
//! sha256 of the value put in its place, then erases that column's salt: a
//! digest of an address or an email could be brute-forced back while its
//! salt is at hand. A verification takes the recorded digest for a column
//! only while the column still holds exactly the recorded value. The
//! records are append-only and chained among themselves (each hash covers
//! the one before); the report's `recordsHead`, written into the erasure's
//! own audit row, anchors them in the main chain.
//!
//! Rows chained before the migration have links over their raw columns:
//! they are kept as they are and reported (`kept`), because replacing a
//! value would break their link, and re-linking them would rewrite every
//! later link, so that no head hash recorded elsewhere would prove anything
//! about the trail any more. Rows written with the triggers off have no
//! salts either, and are kept too (verification reports them `unchained`).
//!
//! The same key gives the same pseudonym, so a pseudonymised person's
//! actions still read as one person's; without the key, the pseudonym does
//! not lead back to them. The key comes from `PRIVACY_PSEUDONYM_KEY`
//! (hex, at least 32 bytes): lost, the pseudonyms stay valid; leaked, a
//! guessed identifier can be confirmed, so it is a secret like any other.

use std::collections::BTreeSet;

use hmac::Mac as _;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::GenericClient;

/// The environment variable holding the key, hex.
pub const KEY_VAR: &str = "PRIVACY_PSEUDONYM_KEY";
/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// What every pseudonym starts with.
pub const PSEUDONYM_PREFIX: &str = "pseudonym:";
/// At most this many kept rows are listed; the count stays exact.
pub const MAX_LISTED_KEPT: usize = 100;
/// Why a row was kept.
pub const KEPT_REASON: &str = "chained before migration 20261201160000_audit_pseudonyms (or without its triggers): its link covers the raw values, so replacing them would break the chain";

/// Identifiers of at least this many characters are also replaced inside
/// longer texts (`changes` strings and keys, `errorMessage`); shorter ones
/// only where a whole value equals them, so that `u1` does not eat into
/// `u10`.
const MIN_SUBSTRING_CHARS: usize = 8;

/// The person an erasure names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    UserId(String),
    Email(String),
    SessionId(String),
}

/// What [`pseudonymise_person`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PseudonymReport {
    /// The run, as named in `audit_trail.pseudonymisations`.
    pub procedure: String,
    /// Audit rows changed, and columns changed in them.
    pub rows_pseudonymised: u64,
    pub columns_pseudonymised: u64,
    /// Rows holding the person's identifiers that were left as they are
    /// (see [`KEPT_REASON`]); at most [`MAX_LISTED_KEPT`] listed.
    pub rows_kept: u64,
    pub kept_audit_ids: Vec<String>,
    pub kept_reason: Option<String>,
    /// The head of the records' chain after this run: written into the
    /// erasure's audit row, it anchors the records in the main chain.
    pub records_head: Option<String>,
}

/// Why a key was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{KEY_VAR} is not set")]
    Missing,
    #[error("{KEY_VAR} must be hex")]
    NotHex,
    #[error("{KEY_VAR} must be at least {MIN_KEY_BYTES} bytes ({} hex digits)", MIN_KEY_BYTES * 2)]
    TooShort,
}

/// The key from [`KEY_VAR`].
pub fn key_from_env() -> Result<Vec<u8>, KeyError> {
    parse_key(&std::env::var(KEY_VAR).map_err(|_| KeyError::Missing)?)
}

/// A hex key of at least [`MIN_KEY_BYTES`].
pub fn parse_key(hex: &str) -> Result<Vec<u8>, KeyError> {
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::NotHex);
    }
    let key: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    if key.len() < MIN_KEY_BYTES {
        return Err(KeyError::TooShort);
    }
    Ok(key)
}

/// `pseudonym:` and the first 16 hex digits of HMAC-SHA256(key, value).
pub fn pseudonym(key: &[u8], value: &str) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{PSEUDONYM_PREFIX}{hex}")
}

/// Replaces the person's identifiers in `audit_logs` by their pseudonyms,
/// within the caller's transaction `tx` (which commits or rolls back with
/// the rest of the erasure):
/// - `userId`, `userEmail` and `resourceId` equal to one of their ids or
///   emails (ids known to `users` for an email, and emails known for an
///   id, in `users` or recorded beside the id in the trail);
/// - `ipAddress` and `userAgent` of the rows they wrote;
/// - their ids and emails in `changes` (strings and keys) and in
///   `errorMessage`.
///
/// A session id is not in the trail: nothing to do. Fails (and the caller
/// should roll back) on a row that no longer matches its link: replacing
/// its values would hide the alteration.
pub async fn pseudonymise_person(
    tx: &impl GenericClient,
    person: &Person,
    key: &[u8],
) -> Result<PseudonymReport, tokio_postgres::Error> {
    let mut report = PseudonymReport {
        procedure: platform::ids::new_id(),
        ..PseudonymReport::default()
    };
    let identifiers = identifiers(tx, person).await?;
    if identifiers.ids.is_empty() && identifiers.emails.is_empty() {
        report.records_head = records_head(tx).await?;
        return Ok(report);
    }
    let all: Vec<String> = identifiers.all().into_iter().collect();
    let rows = tx
        .query(
            r#"SELECT a."id", to_jsonb(a), s."auditId" IS NOT NULL
               FROM "audit_logs" a LEFT JOIN "audit_trail"."salts" s ON s."auditId" = a."id"
               WHERE a."userId" = ANY($1) OR a."userEmail" = ANY($1) OR a."resourceId" = ANY($1)
                  OR EXISTS (SELECT 1 FROM unnest($1::text[]) v(v)
                             WHERE strpos(a."changes"::text, v.v) > 0 OR strpos(a."errorMessage", v.v) > 0)
               ORDER BY a."timestamp", a."id""#,
            &[&all],
        )
        .await?;
    for row in rows {
        let audit_id: String = row.get(0);
        let current: Value = row.get(1);
        let pseudonymisable: bool = row.get(2);
        let replacement = identifiers.replacement(&current, key);
        if replacement.is_empty() {
            continue;
        }
        if !pseudonymisable {
            report.rows_kept += 1;
            if report.kept_audit_ids.len() < MAX_LISTED_KEPT {
                report.kept_audit_ids.push(audit_id);
            }
            report.kept_reason = Some(KEPT_REASON.to_owned());
            continue;
        }
        let changed: i32 = tx
            .query_one(
                r#"SELECT "audit_trail"."pseudonymise"($1, $2, $3)"#,
                &[&audit_id, &Value::Object(replacement), &report.procedure],
            )
            .await?
            .get(0);
        if changed > 0 {
            report.rows_pseudonymised += 1;
            report.columns_pseudonymised += u64::try_from(changed).unwrap_or(0);
        }
    }
    report.records_head = records_head(tx).await?;
    Ok(report)
}

async fn records_head(tx: &impl GenericClient) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            r#"SELECT "hash" FROM "audit_trail"."pseudonymisations" ORDER BY "seq" DESC LIMIT 1"#,
            &[],
        )
        .await?
        .map(|row| row.get(0)))
}

/// The values that name the person in the trail.
#[derive(Debug, Default)]
struct Identifiers {
    ids: BTreeSet<String>,
    emails: BTreeSet<String>,
}

impl Identifiers {
    fn all(&self) -> BTreeSet<String> {
        self.ids.union(&self.emails).cloned().collect()
    }

    fn names(&self, value: &str) -> bool {
        self.ids.contains(value) || self.emails.contains(value)
    }

    /// The new values of the row's columns that name the person (column
    /// -> JSON value), empty when none does.
    fn replacement(&self, row: &Value, key: &[u8]) -> serde_json::Map<String, Value> {
        let text = |column: &str| row.get(column).and_then(Value::as_str);
        let mut replacement = serde_json::Map::new();
        let mut replace_whole = |column: &str| {
            if let Some(value) = text(column).filter(|value| self.names(value)) {
                replacement.insert(column.to_owned(), Value::from(pseudonym(key, value)));
            }
        };
        replace_whole("userId");
        replace_whole("userEmail");
        replace_whole("resourceId");
        let theirs = text("userId").is_some_and(|v| self.ids.contains(v))
            || text("userEmail").is_some_and(|v| self.emails.contains(v));
        if theirs {
            for column in ["ipAddress", "userAgent"] {
                if let Some(value) = text(column).filter(|v| !v.starts_with(PSEUDONYM_PREFIX)) {
                    replacement.insert(column.to_owned(), Value::from(pseudonym(key, value)));
                }
            }
        }
        if let Some(message) = text("errorMessage") {
            let replaced = self.replace_in(message, key);
            if replaced != message {
                replacement.insert("errorMessage".to_owned(), Value::from(replaced));
            }
        }
        if let Some(changes) = row.get("changes").filter(|c| !c.is_null()) {
            let replaced = self.replace_in_json(changes, key);
            if &replaced != changes {
                replacement.insert("changes".to_owned(), replaced);
            }
        }
        replacement
    }

    /// `text` with the person's identifiers replaced: whole, or inside it
    /// for those long enough not to match by chance.
    fn replace_in(&self, text: &str, key: &[u8]) -> String {
        if self.names(text) {
            return pseudonym(key, text);
        }
        let mut replaced = text.to_owned();
        for identifier in self.all() {
            if identifier.chars().count() >= MIN_SUBSTRING_CHARS && replaced.contains(&identifier) {
                replaced = replaced.replace(&identifier, &pseudonym(key, &identifier));
            }
        }
        replaced
    }

    fn replace_in_json(&self, value: &Value, key: &[u8]) -> Value {
        match value {
            Value::String(text) => Value::String(self.replace_in(text, key)),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.replace_in_json(item, key))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.replace_in(k, key), self.replace_in_json(v, key)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// The person's ids and emails: the one named, those `users` pairs with
/// it, and, for an id, the emails the trail recorded beside it.
async fn identifiers(
    tx: &impl GenericClient,
    person: &Person,
) -> Result<Identifiers, tokio_postgres::Error> {
    let mut found = Identifiers::default();
    match person {
        // The trail records no session.
        Person::SessionId(_) => {}
        Person::UserId(id) => {
            found.ids.insert(id.clone());
            for row in tx
                .query(
                    r#"SELECT "email" FROM "users" WHERE "id" = $1 AND "email" IS NOT NULL
                       UNION SELECT DISTINCT "userEmail" FROM "audit_logs" WHERE "userId" = $1"#,
                    &[id],
                )
                .await?
            {
                found.emails.insert(row.get(0));
            }
        }
        Person::Email(email) => {
            found.emails.insert(email.clone());
            for row in tx
                .query(r#"SELECT "id" FROM "users" WHERE "email" = $1"#, &[email])
                .await?
            {
                found.ids.insert(row.get(0));
            }
        }
    }
    found.ids.retain(|id| !id.is_empty());
    found.emails.retain(|email| !email.is_empty());
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudonym_is_the_prefix_and_16_hex_of_the_keyed_hmac() {
        let key = [7u8; 32];
        let one = pseudonym(&key, "user-1");
        assert_eq!(one.len(), PSEUDONYM_PREFIX.len() + 16);
        assert!(one.starts_with(PSEUDONYM_PREFIX));
        assert_eq!(one, pseudonym(&key, "user-1"));
        assert_ne!(one, pseudonym(&key, "user-2"));
        assert_ne!(one, pseudonym(&[8u8; 32], "user-1"));
    }

    #[test]
    fn a_key_must_be_hex_of_at_least_32_bytes() {
        assert_eq!(parse_key(&"ab".repeat(31)), Err(KeyError::TooShort));
        assert_eq!(parse_key(&"zz".repeat(32)), Err(KeyError::NotHex));
        assert_eq!(parse_key("abc"), Err(KeyError::NotHex));
        assert_eq!(parse_key(&"ab".repeat(32)).map(|k| k.len()), Ok(32));
    }

    #[test]
    fn a_short_id_is_replaced_only_where_a_whole_value_equals_it() {
        let person = Identifiers {
            ids: BTreeSet::from(["u1".to_owned()]),
            emails: BTreeSet::from(["ann@example.com".to_owned()]),
        };
        let key = [1u8; 32];
        assert_eq!(person.replace_in("u10", &key), "u10");
        assert_eq!(person.replace_in("u1", &key), pseudonym(&key, "u1"));
        assert_eq!(
            person.replace_in("granted to ann@example.com", &key),
            format!("granted to {}", pseudonym(&key, "ann@example.com"))
        );
    }
}
