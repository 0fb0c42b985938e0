//! The migrations compiled into the binary.
//!
//! Each lives in `migrations/<timestamp>_<name>/migration.sql`, Prisma's
//! layout, and is recorded in one of two ledgers:
//!
//! - [`Ledger::Prisma`] (`_prisma_migrations`) for migrations the Prisma
//!   application also has in its history. Recording them there, with
//!   Prisma's columns and meaning, is what lets `prisma migrate deploy` see
//!   them as applied.
//! - [`Ledger::Bundle`] (`bundle.migrations`, same columns) for migrations
//!   only the bundle has. Prisma would list a row it has no folder for as
//!   "applied but missing locally" and `prisma migrate dev` would offer to
//!   reset the database over it, so these stay out of Prisma's table, and
//!   the table itself stays out of Prisma's schema: everything the bundle
//!   owns lives in schemas of its own (`bundle`, `audit_trail`).

use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Migrations that also exist in the Prisma application's history.
pub const SHARED_WITH_PRISMA: &[&str] = &["20251111113117_add_phase8_and_phase9_features"];

/// Later bundle migrations whose objects do not live on the contract's
/// tables: `migrate down` keeps their records (and their objects).
pub const INDEPENDENT_OF_CONTRACT: &[&str] = &["20261130120000_bundle_schema"];

/// The contract migration's name.
pub const CONTRACT_MIGRATION: &str = "20251111113117_add_phase8_and_phase9_features";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ledger {
    Prisma,
    Bundle,
}

impl Ledger {
    pub fn table(self) -> &'static str {
        match self {
            Self::Prisma => "_prisma_migrations",
            Self::Bundle => "bundle.migrations",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub name: String,
    pub sql: String,
}

impl Migration {
    pub fn new(name: impl Into<String>, sql: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            sql: sql.into(),
        }
    }

    /// Prisma's checksum: lowercase hex SHA-256 of `migration.sql`.
    pub fn checksum(&self) -> String {
        Sha256::digest(self.sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn ledger(&self) -> Ledger {
        if SHARED_WITH_PRISMA.contains(&self.name.as_str()) {
            Ledger::Prisma
        } else {
            Ledger::Bundle
        }
    }
}

/// Every embedded migration, oldest first.
pub fn embedded() -> Vec<Migration> {
    EMBEDDED
        .iter()
        .map(|(name, sql)| Migration::new(*name, *sql))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_runs_before_the_contract() {
        let names: Vec<String> = embedded().into_iter().map(|m| m.name).collect();
        let baseline = names.iter().position(|n| n.ends_with("_baseline_users"));
        let contract = names.iter().position(|n| n == CONTRACT_MIGRATION);
        assert!(baseline.is_some() && contract.is_some(), "{names:?}");
        assert!(baseline < contract);
    }

    #[test]
    fn only_the_contract_is_recorded_in_prismas_ledger() {
        for migration in embedded() {
            let expected = if migration.name == CONTRACT_MIGRATION {
                Ledger::Prisma
            } else {
                Ledger::Bundle
            };
            assert_eq!(migration.ledger(), expected, "{}", migration.name);
        }
    }

    #[test]
    fn checksum_is_lowercase_hex_sha256() {
        assert_eq!(
            Migration::new("x", "abc").checksum(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
