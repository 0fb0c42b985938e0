//! Realistic synthetic fares for tests and the development sample: each
//! route has a base return fare, scaled by
//! - days to departure: dearest in the last days, cheapest 5 to 8 weeks
//!   out, a little dearer again far ahead;
//! - the departure's weekday (Friday and Sunday dear, Tuesday and Wednesday
//!   cheap) and month (summer and Christmas dear, winter cheap);
//! - the trip: one-way about 60% of a return, short trips a little dearer;
//! - multiplicative lognormal noise.
//!
//! The same seed and options give the same fares (ChaCha8, whose stream
//! rand keeps stable across versions).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};
use rand_distr::{Distribution, Normal};

use crate::Fare;

/// A route of the generator: origin, destination, base return fare (EUR).
pub const ROUTES: &[(&str, &str, f64)] = &[
    ("LHR", "JFK", 520.0),
    ("JFK", "LHR", 540.0),
    ("CDG", "BCN", 140.0),
    ("BCN", "CDG", 135.0),
    ("FRA", "BKK", 780.0),
    ("AMS", "LIS", 190.0),
    ("MAD", "FCO", 160.0),
    ("LHR", "DXB", 610.0),
    ("MUC", "ATH", 230.0),
    ("DUB", "EDI", 95.0),
];

/// The currency of every generated fare.
pub const CURRENCY: &str = "EUR";

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// When the first fare is observed.
    pub start: NaiveDateTime,
    /// Fares are observed at uniformly random times over this many days.
    pub days: u32,
    /// How many fares.
    pub count: usize,
    /// The standard deviation of the log noise.
    pub noise: f64,
}

impl Default for Options {
    /// 6,000 fares observed over 180 days from 2026-01-01, noise 0.12.
    fn default() -> Self {
        Options {
            start: NaiveDate::from_ymd_opt(2026, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .unwrap_or_default(),
            days: 180,
            count: 6_000,
            noise: 0.12,
        }
    }
}

/// The farthest ahead a generated departure is.
pub const MAX_DAYS_AHEAD: i64 = 330;

/// (days to departure, multiplier): the days-to-departure curve.
const DAYS_CURVE: &[(f64, f64)] = &[
    (0.0, 1.85),
    (3.0, 1.65),
    (7.0, 1.42),
    (14.0, 1.2),
    (21.0, 1.06),
    (35.0, 0.93),
    (49.0, 0.9),
    (60.0, 0.91),
    (90.0, 0.97),
    (150.0, 1.04),
    (240.0, 1.1),
    (330.0, 1.14),
];
/// Monday first.
const WEEKDAY: [f64; 7] = [1.0, 0.93, 0.94, 1.0, 1.12, 1.03, 1.1];
/// January first.
const SEASON: [f64; 12] = [
    0.86, 0.85, 0.92, 1.0, 1.02, 1.12, 1.26, 1.22, 1.0, 0.95, 0.88, 1.16,
];

fn days_factor(days: i64) -> f64 {
    let x = days as f64;
    let upper = DAYS_CURVE.partition_point(|&(k, _)| k <= x);
    if upper == 0 {
        return DAYS_CURVE[0].1;
    }
    if upper == DAYS_CURVE.len() {
        return DAYS_CURVE[DAYS_CURVE.len() - 1].1;
    }
    let (k0, v0) = DAYS_CURVE[upper - 1];
    let (k1, v1) = DAYS_CURVE[upper];
    v0 + (v1 - v0) * (x - k0) / (k1 - k0)
}

fn trip_factor(nights: Option<i64>) -> f64 {
    match nights {
        None => 0.6,
        Some(0..=3) => 1.08,
        Some(4..=7) => 1.0,
        Some(8..=14) => 0.97,
        Some(_) => 1.03,
    }
}

/// The noise-free fare of a trip observed at `observed_at` (None for a route
/// the generator does not have): what a perfect model would predict.
pub fn expected_price(
    origin: &str,
    destination: &str,
    depart_date: NaiveDate,
    return_date: Option<NaiveDate>,
    observed_at: NaiveDateTime,
) -> Option<f64> {
    let &(_, _, base) = ROUTES
        .iter()
        .find(|(o, d, _)| *o == origin && *d == destination)?;
    Some(route_price(base, depart_date, return_date, observed_at))
}

fn route_price(
    base: f64,
    depart_date: NaiveDate,
    return_date: Option<NaiveDate>,
    observed_at: NaiveDateTime,
) -> f64 {
    let days = (depart_date - observed_at.date()).num_days();
    let nights = return_date.map(|r| (r - depart_date).num_days());
    base * days_factor(days)
        * WEEKDAY[depart_date.weekday().num_days_from_monday() as usize]
        * SEASON[depart_date.month0() as usize]
        * trip_factor(nights)
}

/// `options.count` fares, deterministic by `seed`.
pub fn fares(seed: u64, options: &Options) -> Vec<Fare> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A deviation that is negative or not finite means no noise.
    let noise = Normal::new(0.0, options.noise).ok();
    let span_seconds = i64::from(options.days.max(1)) * 86_400;
    (0..options.count)
        .map(|_| {
            let &(origin, destination, base) = &ROUTES[rng.random_range(0..ROUTES.len())];
            let observed_at = options.start + Duration::seconds(rng.random_range(0..span_seconds));
            // Most searches are for the next few months, fewer far ahead.
            let share: f64 = rng.random();
            #[allow(clippy::cast_possible_truncation)] // within 0..=MAX_DAYS_AHEAD
            let days = (share.powf(1.6) * MAX_DAYS_AHEAD as f64).floor() as i64;
            let depart_date = observed_at.date() + Duration::days(days);
            let return_date = if rng.random_bool(0.35) {
                None
            } else {
                Some(depart_date + Duration::days(rng.random_range(1..=21)))
            };
            let expected = route_price(base, depart_date, return_date, observed_at);
            let factor = noise.map_or(1.0, |n| n.sample(&mut rng).exp());
            let price = (expected * factor * 100.0).round() / 100.0;
            Fare {
                origin: origin.to_string(),
                destination: destination.to_string(),
                depart_date,
                return_date,
                observed_at,
                price,
                currency: CURRENCY.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_fares_and_another_seed_others() {
        let options = Options {
            count: 200,
            ..Options::default()
        };
        assert_eq!(fares(7, &options), fares(7, &options));
        assert_ne!(fares(7, &options), fares(8, &options));
    }

    #[test]
    fn fares_are_cheapest_weeks_ahead_and_dearest_in_the_last_days() {
        assert!(days_factor(49) < days_factor(7));
        assert!(days_factor(49) < days_factor(300));
        assert!(days_factor(0) > days_factor(300));
    }

    #[test]
    fn generated_fares_lie_in_the_window_and_depart_after_being_observed() {
        let options = Options {
            count: 500,
            ..Options::default()
        };
        let end = options.start + Duration::days(i64::from(options.days));
        for fare in fares(3, &options) {
            assert!(fare.observed_at >= options.start && fare.observed_at < end);
            assert!(fare.depart_date >= fare.observed_at.date());
            assert!(fare.return_date.is_none_or(|r| r > fare.depart_date));
            assert!(fare.price > 0.0);
        }
    }
}
