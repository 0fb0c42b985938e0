//! The experiments crate against outside oracles: GrowthBook's public SDK
//! test cases, and GrowthBook's own statistics engine.

mod gbstats;
mod growthbook_cases;
