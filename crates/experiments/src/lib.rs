//! Feature flags and experiments, without I/O: which variant a visitor
//! gets (GrowthBook's hashing and bucket ranges), whether a visitor matches
//! a flag's targeting (GrowthBook's condition syntax), and what an
//! experiment's numbers say (GrowthBook's frequentist engine).

pub mod bucketing;
pub mod condition;
pub mod flag;
pub mod stats;
