//! Who may do what in the admin API, and the record of what they did.
//!
//! - [`session`]: the Next.js site's NextAuth v4 and Auth.js v5 session
//!   tokens, read from cookies or `Authorization: Bearer`, and opened by
//!   [`jwe`] (compact JWE, `dir`, A256GCM and A256CBC-HS512).
//! - [`rbac`]: roles, resources, actions, and per-admin overrides.
//! - [`guard`]: [`Authorized`], the extractor every admin route declares its
//!   permission with, and [`Authorized::mutate`], the only way its changes
//!   are written: with their audit row, in one transaction.
//! - [`audit`]: audit rows, redaction, and verification of the database's
//!   hash chain over them.
//! - [`pseudonym`]: replacing a person's identifiers in the audit trail by
//!   keyed pseudonyms so that the chain still verifies.
//! - [`screen`]: what every admin router refuses before routing.
//!
//! Every function with admin routes (admin, cms, ...) uses this crate, so
//! the mechanism exists once.

pub mod audit;
pub mod guard;
pub mod jwe;
pub mod pseudonym;
pub mod rbac;
pub mod screen;
pub mod session;

pub use guard::{Access, Actor, Authorized, Change, action, resource};
pub use rbac::{Action, Permissions, Resource, Role};
