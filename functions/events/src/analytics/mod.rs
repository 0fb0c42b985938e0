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
