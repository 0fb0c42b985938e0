//! The database schema the bundle shares with the Prisma application.
//!
//! - [`migrations`]: the migrations compiled into the binary, and which
//!   ledger records each.
//! - [`migrator`]: applies them safely (one transaction each, serialised by
//!   an advisory lock shared with Prisma, failures recorded and blocking).
//! - [`contract`]: the machine-readable contract and a diff of the live
//!   catalog against it.

pub mod contract;
pub mod migrations;
pub mod migrator;

pub use migrations::{Ledger, Migration};
pub use migrator::{MigrateError, Migrator};
