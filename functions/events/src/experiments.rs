//! `POST /api/experiments/assign` and `POST /api/experiments/convert`:
//! enrolling visitors in running experiments, and recording what they did.
//!
//! A visitor is their `userId` when signed in, else their `sessionId`; the
//! same key is the OFREP `targetingKey`, so evaluation and assignment agree
//! (the split is GrowthBook's hash v2 of that key, seeded with the flag
//! key). Assignment is sticky: once a participation is recorded, the
//! visitor gets the recorded variant whatever the flag says later, because
//! the stored row, not the hash, is the answer. While an experiment is in
//! flight the admin API refuses changes that would move anyone (see the
//! admin's `flags` module), so the hash and the record agree too.
//!
//! A participation is unique per flag and user, and per flag and session
//! (the contract's unique indexes); both are honoured with one statement
//! that reads the visitor's existing rows and inserts the missing ones.

use std::collections::HashMap;

use axum::{Json, extract::State};
use chrono::NaiveDateTime;
use deadpool_postgres::GenericClient;
use platform::{ApiError, ApiResult};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::fields::{self, MAX_SESSION_ID_CHARS, MAX_USER_ID_CHARS};
use crate::{AppState, beacon::Beacon, db};

/// Most flags one assign may name.
pub const MAX_FLAGS_PER_ASSIGN: usize = 100;

/// Who the visitor is.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub session_id: String,
    pub user_id: Option<String>,
}

impl Visitor {
    /// The key the split hashes: the user when known, else the session.
    pub fn key(&self) -> &str {
        self.user_id.as_deref().unwrap_or(&self.session_id)
    }

    fn read(object: &Map<String, Value>) -> ApiResult<Self> {
        let session_id =
            fields::text(object, "sessionId", "sessionId", MAX_SESSION_ID_CHARS, true)?
                .unwrap_or_default()
                .to_owned();
        let user_id = fields::text(object, "userId", "userId", MAX_USER_ID_CHARS, false)?
            .filter(|u| !u.trim().is_empty())
            .map(str::to_owned);
        Ok(Self {
            session_id,
            user_id,
        })
    }
}

fn object(body: &Value) -> ApiResult<&Map<String, Value>> {
    body.as_object()
        .ok_or_else(|| ApiError::bad_request("invalid_body", "the body must be a JSON object"))
}

fn refuse_unknown(object: &Map<String, Value>, known: &[&str]) -> ApiResult<()> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::invalid_field(
            unknown.clone(),
            format!(
                "is not a field of this request (fields: {})",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// An assign request, checked.
#[derive(Debug)]
pub struct AssignRequest {
    pub visitor: Visitor,
    /// Only these flags, when given.
    pub flags: Option<Vec<String>>,
    /// What targeting reads, with `targetingKey` set to the visitor's key.
    pub attributes: Value,
}

impl AssignRequest {
    pub fn read(body: &Value) -> ApiResult<Self> {
        let object = object(body)?;
        refuse_unknown(object, &["sessionId", "userId", "flags", "attributes"])?;
        let visitor = Visitor::read(object)?;
        let flags = match object.get("flags") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.len() <= MAX_FLAGS_PER_ASSIGN => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        item.as_str().map(str::to_owned).ok_or_else(|| {
                            ApiError::invalid_field(format!("flags[{i}]"), "must be a flag key")
                        })
                    })
                    .collect::<ApiResult<Vec<_>>>()?,
            ),
            Some(Value::Array(_)) => {
                return Err(ApiError::invalid_field(
                    "flags",
                    format!("must list at most {MAX_FLAGS_PER_ASSIGN} keys"),
                ));
            }
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "flags",
                    "must be an array of flag keys",
                ));
            }
        };
        let mut attributes = match object.get("attributes") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(attributes)) => attributes.clone(),
            Some(_) => return Err(ApiError::invalid_field("attributes", "must be an object")),
        };
        attributes.insert(
            "targetingKey".into(),
            Value::String(visitor.key().to_owned()),
        );
        Ok(Self {
            visitor,
            flags,
            attributes: Value::Object(attributes),
        })
    }
}

/// A visitor's variant in one experiment.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub flag_key: String,
    pub variant: String,
    /// The variant's `config`, or its id.
    #[schema(value_type = Object)]
    pub value: Value,
    /// Recorded by this request (false: recorded before).
    pub new: bool,
    #[schema(value_type = String)]
    pub assigned_at: NaiveDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assigned {
    /// Every running experiment the visitor takes part in, by flag key.
    pub assignments: Vec<Assignment>,
}

/// The new participations, where the visitor has none: one row per flag,
/// skipped on either unique index, ("flagId", "userId") or ("flagId",
/// "sessionId"). For a new visitor this one statement is the whole write.
const INSERT_PARTICIPATIONS: &str = r#"
INSERT INTO "experiment_participations" ("id", "flagId", "userId", "sessionId", "variant", "assignedAt")
SELECT n.id, n.flag, $1, $2, n.variant, $3
FROM unnest($4::text[], $5::text[], $6::text[]) AS n(flag, variant, id)
ON CONFLICT DO NOTHING
RETURNING "flagId", "variant", "assignedAt""#;

/// [`INSERT_PARTICIPATIONS`] for one flag, the common case (one running
/// experiment): a plain VALUES row costs PostgreSQL measurably less than
/// the same row through unnest (bench/README.md, `bench/flags.sh`).
const INSERT_PARTICIPATION: &str = r#"
INSERT INTO "experiment_participations" ("id", "flagId", "userId", "sessionId", "variant", "assignedAt")
VALUES ($6, $4, $1, $2, $5, $3)
ON CONFLICT DO NOTHING
RETURNING "flagId", "variant", "assignedAt""#;

/// The visitor's recorded participations in `$1`, the user's row before
/// the session's. By the same unique indexes.
const RECORDED_PARTICIPATIONS: &str = r#"
SELECT DISTINCT ON ("flagId") "flagId", "variant", "assignedAt"
FROM "experiment_participations"
WHERE "flagId" = ANY($1::text[])
  AND ("sessionId" = $2 OR ($3::text IS NOT NULL AND "userId" = $3))
ORDER BY "flagId", ("userId" IS NOT DISTINCT FROM $3) DESC, "assignedAt""#;

/// What [`record`] answers per flag id: the variant, when it was
/// assigned, and whether this request recorded it.
pub type Recorded = HashMap<String, (String, NaiveDateTime, bool)>;

/// Records the visitor's participations: `candidates` are (flag id,
/// variant) for the experiments they are eligible for now, `running` every
/// running experiment asked about (a recorded participation is answered
/// even where the visitor would not be eligible any more). Repeatable: a
/// repeat finds its rows.
///
/// The insert goes first: for a new visitor (the common case) it records
/// every candidate and nothing else is asked. Flags it skipped (recorded
/// before, or by a concurrent request of the same visitor) and running
/// experiments the visitor is not eligible for are then read, and the
/// stored row is the answer: assignment is sticky.
pub async fn record(
    client: &impl GenericClient,
    visitor: &Visitor,
    running: &[String],
    candidates: &[(String, String)],
) -> Result<Recorded, tokio_postgres::Error> {
    let mut recorded = Recorded::new();
    let now = platform::clock::now_millis();
    let inserted = match candidates {
        [] => Vec::new(),
        [(flag, variant)] => {
            let insert = client.prepare_cached(INSERT_PARTICIPATION).await?;
            let id = platform::ids::new_id();
            client
                .query(
                    &insert,
                    &[
                        &visitor.user_id,
                        &visitor.session_id,
                        &now,
                        flag,
                        variant,
                        &id,
                    ],
                )
                .await?
        }
        _ => {
            let (flags, variants): (Vec<&str>, Vec<&str>) = candidates
                .iter()
                .map(|(flag, variant)| (flag.as_str(), variant.as_str()))
                .unzip();
            let ids: Vec<String> = candidates.iter().map(|_| platform::ids::new_id()).collect();
            let insert = client.prepare_cached(INSERT_PARTICIPATIONS).await?;
            client
                .query(
                    &insert,
                    &[
                        &visitor.user_id,
                        &visitor.session_id,
                        &now,
                        &flags,
                        &variants,
                        &ids,
                    ],
                )
                .await?
        }
    };
    for row in inserted {
        recorded.insert(row.get(0), (row.get(1), row.get(2), true));
    }
    let unanswered: Vec<&String> = running
        .iter()
        .filter(|flag| !recorded.contains_key(*flag))
        .collect();
    if !unanswered.is_empty() {
        let read = client.prepare_cached(RECORDED_PARTICIPATIONS).await?;
        for row in client
            .query(&read, &[&unanswered, &visitor.session_id, &visitor.user_id])
            .await?
        {
            recorded.insert(row.get(0), (row.get(1), row.get(2), false));
        }
    }
    Ok(recorded)
}

#[utoipa::path(
    post,
    path = "/api/experiments/assign",
    tag = "flags",
    summary = "Enrol a visitor in the running experiments",
    description = "`{sessionId, userId?, flags?: [key], attributes?}`. Returns the visitor's variant in every running experiment (or those named) they are eligible for, recording each participation once; a recorded variant is kept even if the experiment's configuration changes later. The split is the same as OFREP's for `targetingKey` = userId, else sessionId. Known bots get a 202 that records nothing.",
    request_body(content((Object = "application/json"), (Object = "text/plain"))),
    responses(
        (status = 200, description = "The visitor's variants.", body = Assigned),
        (status = 202, description = "Dropped as a bot's.", body = crate::beacon::Dropped),
        platform::api_doc::Invalid, platform::api_doc::TooLarge, platform::api_doc::WrongMediaType, platform::api_doc::Unavailable,
    )
)]
pub async fn assign(State(state): State<AppState>, beacon: Beacon) -> ApiResult<Json<Assigned>> {
    let request = AssignRequest::read(&beacon.json()?)?;
    let snapshot = state.flags.snapshot().await?;
    let wanted = |key: &str| {
        request
            .flags
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|k| k == key))
    };
    let experiments: Vec<_> = snapshot
        .running_experiments()
        .filter(|flag| wanted(&flag.key))
        .collect();
    if experiments.is_empty() {
        return Ok(Json(Assigned {
            assignments: Vec::new(),
        }));
    }
    let running: Vec<String> = experiments.iter().map(|f| f.id.clone()).collect();
    let candidates: Vec<(String, String)> = experiments
        .iter()
        .filter_map(|flag| {
            let evaluation = flag
                .evaluate(&request.attributes, Some(request.visitor.key()))
                .ok()
                .filter(|e| e.chosen)?;
            Some((flag.id.clone(), evaluation.variant?.id.clone()))
        })
        .collect();
    let recorded = db::write_retrying(&state.pool, "recording participations", |connection| {
        let (visitor, running, candidates) = (&request.visitor, &running, &candidates);
        async move {
            let recorded = record(&connection, visitor, running, candidates).await;
            (connection, recorded)
        }
    })
    .await?;
    let assignments = experiments
        .iter()
        .filter_map(|flag| {
            let (variant, assigned_at, new) = recorded.get(&flag.id)?;
            let value = flag
                .variants
                .iter()
                .find(|v| &v.id == variant)
                .map_or_else(|| Value::String(variant.clone()), |v| v.value());
            Some(Assignment {
                flag_key: flag.key.clone(),
                variant: variant.clone(),
                value,
                new: *new,
                assigned_at: *assigned_at,
            })
        })
        .collect();
    Ok(Json(Assigned { assignments }))
}

/// A conversion, checked.
#[derive(Debug)]
pub struct ConvertRequest {
    pub flag_key: String,
    pub visitor: Visitor,
    pub value: Option<f64>,
    pub conversion_id: Option<String>,
}

/// Longest `conversionId` (an order number, a UUID).
pub const MAX_CONVERSION_ID_CHARS: usize = 200;

impl ConvertRequest {
    pub fn read(body: &Value) -> ApiResult<Self> {
        let object = object(body)?;
        refuse_unknown(
            object,
            &["flagKey", "sessionId", "userId", "value", "conversionId"],
        )?;
        let flag_key = fields::text(object, "flagKey", "flagKey", 100, true)?
            .unwrap_or_default()
            .to_owned();
        let visitor = Visitor::read(object)?;
        let value = match object.get("value") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_f64()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| ApiError::invalid_field("value", "must be a finite number"))?,
            ),
        };
        let conversion_id = fields::text(
            object,
            "conversionId",
            "conversionId",
            MAX_CONVERSION_ID_CHARS,
            false,
        )?
        .map(str::to_owned);
        Ok(Self {
            flag_key,
            visitor,
            value,
            conversion_id,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Converted {
    pub flag_key: String,
    pub variant: String,
    #[schema(value_type = String)]
    pub converted_at: NaiveDateTime,
    /// The participation's total so far.
    pub conversion_value: Option<f64>,
    /// This `conversionId` was recorded before: nothing was added.
    pub duplicate: bool,
}

/// The visitor's participation (by user first, else by session), its
/// conversion receipt when a `conversionId` is given, and the update, in
/// one statement; then what the participation holds.
const CONVERT_SQL: &str = r#"WITH participation AS (
    SELECT "id" FROM "experiment_participations"
    WHERE "flagId" = $1 AND ("sessionId" = $2 OR ($3::text IS NOT NULL AND "userId" = $3))
    ORDER BY ("userId" IS NOT DISTINCT FROM $3) DESC, "assignedAt"
    LIMIT 1
), receipt AS (
    INSERT INTO "bundle"."experiment_conversions" ("flagId", "conversionId", "participationId", "value")
    SELECT $1, $5, "id", $4 FROM participation WHERE $5::text IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING "participationId"
), updated AS (
    UPDATE "experiment_participations" p SET
        "converted" = true,
        "convertedAt" = coalesce(p."convertedAt", $6),
        "conversionValue" = CASE WHEN $4::float8 IS NULL THEN p."conversionValue"
                                 ELSE coalesce(p."conversionValue", 0) + $4 END
    FROM participation
    WHERE p."id" = participation."id"
      AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM receipt))
    RETURNING p."variant", p."convertedAt", p."conversionValue"
)
SELECT u."variant", u."convertedAt", u."conversionValue", false FROM updated u
UNION ALL
SELECT p."variant", p."convertedAt", p."conversionValue", true
FROM "experiment_participations" p JOIN participation ON p."id" = participation."id"
WHERE NOT EXISTS (SELECT 1 FROM updated)"#;

/// Marks the visitor's participation in `flag_id` converted: the first
/// conversion's time is kept, values add up, and a `conversionId` seen
/// before adds nothing. One statement, so it commits whole. `None`: the
/// visitor has no participation in the flag.
async fn convert(
    client: &impl GenericClient,
    flag_id: &str,
    request: &ConvertRequest,
) -> Result<Option<(String, NaiveDateTime, Option<f64>, bool)>, tokio_postgres::Error> {
    let statement = client.prepare_cached(CONVERT_SQL).await?;
    let row = client
        .query_opt(
            &statement,
            &[
                &flag_id,
                &request.visitor.session_id,
                &request.visitor.user_id,
                &request.value,
                &request.conversion_id,
                &platform::clock::now_millis(),
            ],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
}

#[utoipa::path(
    post,
    path = "/api/experiments/convert",
    tag = "flags",
    summary = "Record a visitor's conversion in an experiment",
    description = "`{flagKey, sessionId, userId?, value?, conversionId?}`. The first conversion's time is kept and values add up. With a `conversionId` (an order number) a retry adds nothing: send one whenever the client may retry. A visitor who never took part in the flag is a 404 naming `flagKey`. Known bots get a 202 that records nothing.",
    request_body(content((Object = "application/json"), (Object = "text/plain"))),
    responses(
        (status = 200, description = "Recorded (or recorded before, with the same conversionId).", body = Converted),
        (status = 202, description = "Dropped as a bot's.", body = crate::beacon::Dropped),
        platform::api_doc::Invalid, platform::api_doc::NotFound, platform::api_doc::TooLarge, platform::api_doc::WrongMediaType, platform::api_doc::Unavailable,
    )
)]
pub async fn convert_route(
    State(state): State<AppState>,
    beacon: Beacon,
) -> ApiResult<Json<Converted>> {
    let request = ConvertRequest::read(&beacon.json()?)?;
    let snapshot = state.flags.snapshot().await?;
    let Some(crate::flags::Entry::Ready(flag, _)) = snapshot.get(&request.flag_key) else {
        return Err(ApiError::no_such(
            "flagKey",
            format!("names no experiment: {:?} is not a flag", request.flag_key),
        ));
    };
    let flag_id = flag.id.clone();
    // With a conversionId the statement is repeatable (the receipt makes a
    // repeat add nothing), so a lost connection is retried; without one a
    // repeat would add the value twice, so it runs once on a checked
    // connection.
    let converted = if request.conversion_id.is_some() {
        db::write_retrying(&state.pool, "recording a conversion", |connection| {
            let (flag_id, request) = (&flag_id, &request);
            async move {
                let converted = convert(&connection, flag_id, request).await;
                (connection, converted)
            }
        })
        .await?
    } else {
        let connection = db::checked(&state.pool).await?;
        convert(&connection, &flag_id, &request)
            .await
            .map_err(ApiError::internal("recording a conversion"))?
    };
    let (variant, converted_at, conversion_value, duplicate) = converted.ok_or_else(|| {
        ApiError::no_such(
            "flagKey",
            format!(
                "has no participation of this visitor: assign them to {:?} first",
                request.flag_key
            ),
        )
    })?;
    Ok(Json(Converted {
        flag_key: request.flag_key,
        variant,
        converted_at,
        conversion_value,
        duplicate,
    }))
}
