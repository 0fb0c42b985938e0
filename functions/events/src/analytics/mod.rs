//! Analytics events: a body read in one pass ([`reader`]), validated into
//! typed rows ([`batch`]), and stored ([`store`]).
//!
//! Two request shapes are in use and both are accepted:
//! - the batch the front end sends: `{"sessionId", "userId"?, "events":
//!   [{"eventType", "eventData"?, "timestamp"? (ms), "eventId"?}]}`;
//! - the single event of the migration README: `{"sessionId", "eventType",
//!   "eventData"?, "userId"?, "timestamp"?, "eventId"?}`.
//!
//! Retries store nothing twice. A row's id (an RFC 9562 version 8 UUID) is
//! derived from what identifies the event, so a resent batch maps to the
//! same ids and `ON CONFLICT DO NOTHING` drops it:
//! - with the client's `eventId`: a hash of session and `eventId` alone, so
//!   a resend is recognised whatever else it carries (such ids are not
//!   time-ordered: the price of not trusting the resend to repeat its
//!   timestamp);
//! - else, with a client timestamp: its milliseconds first, as in UUIDv7,
//!   then a hash of session, type, timestamp and data, so these rows still
//!   arrive in time order at the primary key's right edge. The data is
//!   hashed as the JSON text the client sent: a resend of the same body
//!   matches, and compact text with sorted keys (what this code hashed
//!   when it still parsed `eventData` into a `serde_json::Value`) gives
//!   the same ids as before;
//! - with neither, the event cannot be recognised when resent and gets a
//!   random UUIDv7.
//!
//! A `funnel` event (`eventData` `{stage, action, metadata?, duration?}`)
//! also writes its `conversion_funnels` row, in the same transaction and
//! with the same id.

mod batch;
mod reader;
mod store;

pub use batch::{
    Batch, FunnelStep, MAX_EVENT_DATA_BYTES, MAX_EVENT_DATA_DEPTH, MAX_EVENT_ID_CHARS,
    MAX_EVENT_TYPE_CHARS, MAX_EVENTS_PER_BATCH, MAX_FUNNEL_FIELD_CHARS, NewEvent, parse_batch,
};
pub use store::{COPY_THRESHOLD, Stored, store};

/// The request bodies [`parse_batch`] reads, for the API description. The
/// parser reads the body in one pass without building these (see
/// [`reader`]); the property test of `tests/api/storable.rs` and the API
/// test run hold the two together.
pub mod wire {
    use serde::Deserialize;
    use utoipa::ToSchema;

    /// Both shapes in use: the front end's batch, and the single event of
    /// the migration README.
    #[derive(Deserialize, ToSchema)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub enum EventsRequest {
        Batch(EventBatch),
        Single(SingleEvent),
    }

    /// The front end's batch: what all events share, and the events.
    #[derive(Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    pub struct EventBatch {
        #[schema(max_length = 128, min_length = 1)]
        session_id: String,
        #[schema(max_length = 128)]
        user_id: Option<String>,
        #[schema(min_items = 1, max_items = 1000)]
        events: Vec<Event>,
    }

    /// One event of a batch.
    #[derive(Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    pub struct Event {
        #[schema(max_length = 64, min_length = 1, example = "page_view")]
        event_type: String,
        /// Any JSON object of at most 16 KiB, as sent and as stored, nested
        /// at most 64 levels. `url` and `referrer` are read from it; a
        /// `funnel` event carries `{stage, action, metadata?, duration?}`.
        #[schema(value_type = Option<Object>)]
        event_data: Option<serde_json::Value>,
        /// Milliseconds since the epoch, or an RFC 3339 time: at most an
        /// hour ahead of the server, at most 30 days behind.
        timestamp: Option<serde_json::Value>,
        /// The client's id for the event: a resend with the same id is
        /// stored once.
        #[schema(max_length = 128)]
        event_id: Option<String>,
    }

    /// The single event of the migration README: an event with what a
    /// batch shares beside it.
    #[derive(Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    pub struct SingleEvent {
        #[schema(max_length = 128, min_length = 1)]
        session_id: String,
        #[schema(max_length = 128)]
        user_id: Option<String>,
        #[serde(flatten)]
        event: Event,
    }
}
