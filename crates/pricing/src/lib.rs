//! The flight price model: a log-price linear model whose fitted numbers are
//! stored as data (`ml_models.trainingData.parameters`,
//! `bundle.model_versions.parameters`), so anyone can read what it learnt.
//!
//! log(price) = route level + f(days to departure) + weekday of departure
//!            + month of departure + g(trip: one-way or nights away) + noise
//!
//! `f` and `g` are piecewise-linear curves through fixed knots (fares rise
//! steeply in the last weeks and are higher very early, which no single slope
//! can say). The 80% prediction interval is the point prediction times the
//! empirical 10th and 90th percentiles of the training residuals (in log
//! space), per band of days to departure, since fares close to departure vary
//! more.
//!
//! Prediction needs only serde, serde_json and chrono (serving keeps a small
//! bootstrap); training (`train` feature) adds nalgebra, the synthetic fare
//! generator (`synthetic` feature) adds rand.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[cfg(feature = "synthetic")]
pub mod synthetic;
#[cfg(feature = "train")]
mod train;
#[cfg(feature = "train")]
pub use train::{HoldoutMetrics, TrainError, TrainOptions, Trained, TrainingSummary, train};

/// A fare seen on a given date for a given trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Fare {
    pub origin: String,
    pub destination: String,
    pub depart_date: NaiveDate,
    pub return_date: Option<NaiveDate>,
    pub observed_at: NaiveDateTime,
    pub price: f64,
    pub currency: String,
}

/// What a visitor asks: the price of this trip, asked at `asked_at`, maybe
/// with the price they are being offered now.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub origin: String,
    pub destination: String,
    pub depart_date: NaiveDate,
    pub return_date: Option<NaiveDate>,
    pub asked_at: NaiveDateTime,
    pub current_price: Option<f64>,
}

/// Book now or wait for a lower price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    BookNow,
    Wait,
}

impl Recommendation {
    /// The stored and answered spelling: `book_now` or `wait`.
    pub fn as_str(self) -> &'static str {
        match self {
            Recommendation::BookNow => "book_now",
            Recommendation::Wait => "wait",
        }
    }
}

/// The model's answer to a [`Question`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prediction {
    /// The expected (median) price when asked, in `currency`.
    pub price: f64,
    /// The 80% prediction interval: 10% of fares fall below `low`, 10% above `high`.
    pub low: f64,
    pub high: f64,
    /// 0..1, see [`confidence`].
    pub confidence: f64,
    pub recommendation: Recommendation,
    /// `wait`: today's price less the lowest price expected before departure;
    /// `book_now`: 0 (booking now saves nothing over booking now).
    pub savings_estimate: f64,
    /// The currency of the route's fares the model learnt from.
    pub currency: String,
    /// What the model saw and concluded: route, days to departure, weekday,
    /// month, nights, today's price and the cheapest expected day.
    pub features: serde_json::Value,
}

/// Why the model gives no answer; `field` names the question's field at fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Unpredictable {
    /// No fares of this route (origin to destination) were in the training data.
    UnknownRoute {
        origin: String,
        destination: String,
    },
    /// The departure date is before the day of the question.
    DepartureInThePast,
    /// Further ahead than any fare the model learnt from.
    TooFarAhead {
        days: i64,
        max_days: i64,
    },
    ReturnBeforeDeparture,
    /// Not a positive finite number.
    InvalidCurrentPrice,
}

impl Unpredictable {
    /// The question's field (as the API spells it) that makes it unanswerable.
    pub fn field(&self) -> &'static str {
        match self {
            Unpredictable::UnknownRoute { .. } => "destination",
            Unpredictable::DepartureInThePast | Unpredictable::TooFarAhead { .. } => "departDate",
            Unpredictable::ReturnBeforeDeparture => "returnDate",
            Unpredictable::InvalidCurrentPrice => "currentPrice",
        }
    }
}

impl fmt::Display for Unpredictable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unpredictable::UnknownRoute {
                origin,
                destination,
            } => write!(
                f,
                "the model has seen no fares from {origin} to {destination}"
            ),
            Unpredictable::DepartureInThePast => write!(f, "the departure date has passed"),
            Unpredictable::TooFarAhead { days, max_days } => write!(
                f,
                "the departure is {days} days ahead; the model knows fares at most {max_days} days ahead"
            ),
            Unpredictable::ReturnBeforeDeparture => {
                write!(f, "the return date is before the departure date")
            }
            Unpredictable::InvalidCurrentPrice => {
                write!(f, "the current price must be a positive number")
            }
        }
    }
}

impl std::error::Error for Unpredictable {}

/// A piecewise-linear curve: `effects[i]` at `knots[i]`, straight lines in
/// between, flat beyond the first and last knot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub knots: Vec<f64>,
    pub effects: Vec<f64>,
}

impl Curve {
    pub fn at(&self, x: f64) -> f64 {
        hat_weights(&self.knots, x)
            .iter()
            .map(|&(i, w)| w * self.effects.get(i).copied().unwrap_or(0.0))
            .sum()
    }
}

/// The two knots around `x` and their linear-interpolation weights (which
/// sum to 1): the "hat" basis the curves are fitted in.
pub(crate) fn hat_weights(knots: &[f64], x: f64) -> [(usize, f64); 2] {
    let Some(&first) = knots.first() else {
        return [(0, 0.0), (0, 0.0)];
    };
    if x <= first || knots.len() == 1 {
        return [(0, 1.0), (0, 0.0)];
    }
    let last = knots.len() - 1;
    if x >= knots[last] {
        return [(last, 1.0), (last, 0.0)];
    }
    let upper = knots.partition_point(|&k| k <= x);
    let (lo, hi) = (knots[upper - 1], knots[upper]);
    let t = (x - lo) / (hi - lo);
    [(upper - 1, 1.0 - t), (upper, t)]
}

/// A route's level: the log price of its fares with every other effect at 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteLevel {
    pub intercept: f64,
    /// The currency of its fares (training keeps the route's most common one).
    pub currency: String,
    /// Training rows of the route: how much the level rests on.
    pub rows: u64,
}

/// The trip's effect: one-way, or a curve over the nights away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TripEffect {
    pub one_way: f64,
    pub nights: Curve,
}

/// The spread of log residuals for questions up to `max_days` to departure
/// (the last band has no limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResidualBand {
    pub max_days: Option<i64>,
    /// The 10th and 90th percentile of log(actual / predicted).
    pub low: f64,
    pub high: f64,
    pub rows: u64,
}

/// The fitted model, stored as JSON: every number it predicts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// The meaning of these fields; a change of meaning bumps it.
    pub format: u32,
    /// Keyed `ORIGIN-DESTINATION` (direction matters).
    pub routes: BTreeMap<String, RouteLevel>,
    /// Effect of days between the question and the departure.
    pub days_to_departure: Curve,
    /// Effect of the departure's weekday, Monday first.
    pub weekday: [f64; 7],
    /// Effect of the departure's month, January first.
    pub month: [f64; 12],
    pub trip: TripEffect,
    /// Prediction interval bands, by days to departure, ascending.
    pub residuals: Vec<ResidualBand>,
    /// Farthest departure (days ahead) seen in training.
    pub max_days_to_departure: i64,
    /// `wait` when a later day is expected to be cheaper by more than this share.
    pub wait_threshold: f64,
    /// Rows per route at which the route's level counts as well supported
    /// (half of the confidence's route factor).
    pub confidence_rows: f64,
    /// The ridge penalty the effects were fitted with.
    pub ridge_lambda: f64,
}

/// The soonest day before departure the recommendation considers for buying:
/// the last days are for the desperate, not for planning.
const LAST_BUYING_DAYS: i64 = 3;

impl Model {
    /// `ml_models.modelType`.
    pub const TYPE: &str = "log-linear-ridge";
    /// The `format` this code reads and writes.
    pub const FORMAT: u32 = 1;

    /// `ml_models.features`: what a prediction depends on.
    pub fn features() -> Vec<String> {
        [
            "route",
            "daysToDeparture",
            "departWeekday",
            "departMonth",
            "tripNights",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    pub fn route_key(origin: &str, destination: &str) -> String {
        format!(
            "{}-{}",
            origin.trim().to_ascii_uppercase(),
            destination.trim().to_ascii_uppercase()
        )
    }

    pub fn knows_route(&self, origin: &str, destination: &str) -> bool {
        self.routes
            .contains_key(&Self::route_key(origin, destination))
    }

    /// The expected log price of a trip asked `days` before departure.
    fn log_price(
        &self,
        route: &RouteLevel,
        days: i64,
        depart: NaiveDate,
        nights: Option<i64>,
    ) -> f64 {
        let weekday = depart.weekday().num_days_from_monday() as usize;
        let month = depart.month0() as usize;
        let trip = match nights {
            None => self.trip.one_way,
            Some(n) => self.trip.nights.at(n as f64),
        };
        route.intercept
            + self.days_to_departure.at(days as f64)
            + self.weekday[weekday]
            + self.month[month]
            + trip
    }

    fn band(&self, days: i64) -> Option<&ResidualBand> {
        self.residuals
            .iter()
            .find(|b| b.max_days.is_none_or(|max| days <= max))
    }

    pub fn predict(&self, q: &Question) -> Result<Prediction, Unpredictable> {
        let key = Self::route_key(&q.origin, &q.destination);
        let route = self
            .routes
            .get(&key)
            .ok_or_else(|| Unpredictable::UnknownRoute {
                origin: q.origin.clone(),
                destination: q.destination.clone(),
            })?;
        let today = q.asked_at.date();
        let days = (q.depart_date - today).num_days();
        if days < 0 {
            return Err(Unpredictable::DepartureInThePast);
        }
        if days > self.max_days_to_departure {
            return Err(Unpredictable::TooFarAhead {
                days,
                max_days: self.max_days_to_departure,
            });
        }
        let nights = match q.return_date {
            Some(back) if back < q.depart_date => return Err(Unpredictable::ReturnBeforeDeparture),
            Some(back) => Some((back - q.depart_date).num_days()),
            None => None,
        };
        if let Some(current) = q.current_price
            && !(current.is_finite() && current > 0.0)
        {
            return Err(Unpredictable::InvalidCurrentPrice);
        }

        let log_price = self.log_price(route, days, q.depart_date, nights);
        let price = log_price.exp();
        let (low_residual, high_residual) = self.band(days).map_or((0.0, 0.0), |b| (b.low, b.high));
        let low = (log_price + low_residual).exp();
        let high = (log_price + high_residual).exp();
        let confidence = confidence(
            (high - low) / price,
            route.rows as f64,
            self.confidence_rows,
        );

        // The cheapest day to buy from tomorrow until a few days before
        // departure, by the model's expectation for this same departure.
        let today_price = q.current_price.unwrap_or(price);
        let mut cheapest: Option<(NaiveDate, f64)> = None;
        for later in 1..=(days - LAST_BUYING_DAYS) {
            let expected = self
                .log_price(route, days - later, q.depart_date, nights)
                .exp();
            if cheapest.is_none_or(|(_, best)| expected < best) {
                cheapest = Some((today + Duration::days(later), expected));
            }
        }
        let (recommendation, savings_estimate) = match cheapest {
            Some((_, best)) if best < today_price * (1.0 - self.wait_threshold) => {
                (Recommendation::Wait, today_price - best)
            }
            _ => (Recommendation::BookNow, 0.0),
        };

        let features = json!({
            "route": key,
            "daysToDeparture": days,
            "departWeekday": q.depart_date.weekday().to_string(),
            "departMonth": q.depart_date.month(),
            "tripNights": nights,
            "routeRows": route.rows,
            "todayPrice": today_price,
            "cheapestLaterDate": cheapest.map(|(d, _)| d.to_string()),
            "cheapestLaterPrice": cheapest.map(|(_, p)| p),
        });
        Ok(Prediction {
            price,
            low,
            high,
            confidence,
            recommendation,
            savings_estimate,
            currency: route.currency.clone(),
            features,
        })
    }
}

/// How much to trust a prediction, 0..1: the product of
/// - a width factor `1 / (1 + w)`, `w` the 80% interval's width relative to
///   the price (a ±10% interval gives 0.83, ±50% gives 0.5), and
/// - a support factor `n / (n + n0)`, `n` the route's training rows and `n0`
///   the model's `confidenceRows` (at `n0` rows the factor is 0.5).
pub fn confidence(relative_width: f64, route_rows: f64, confidence_rows: f64) -> f64 {
    let width = 1.0 / (1.0 + relative_width.max(0.0));
    let support = route_rows / (route_rows + confidence_rows.max(f64::MIN_POSITIVE));
    (width * support).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    /// A model whose fares are cheapest 40 days out: 100 at 40 days, 150 at
    /// 0 and 120 at 200 days, with no weekday, month or trip effect.
    fn u_shaped() -> Model {
        let mut routes = BTreeMap::new();
        routes.insert(
            "LHR-JFK".to_string(),
            RouteLevel {
                intercept: 100f64.ln(),
                currency: "EUR".into(),
                rows: 400,
            },
        );
        Model {
            format: Model::FORMAT,
            routes,
            days_to_departure: Curve {
                knots: vec![0.0, 40.0, 200.0],
                effects: vec![1.5f64.ln(), 0.0, 1.2f64.ln()],
            },
            weekday: [0.0; 7],
            month: [0.0; 12],
            trip: TripEffect {
                one_way: 0.0,
                nights: Curve {
                    knots: vec![0.0],
                    effects: vec![0.0],
                },
            },
            residuals: vec![ResidualBand {
                max_days: None,
                low: -0.1,
                high: 0.1,
                rows: 400,
            }],
            max_days_to_departure: 365,
            wait_threshold: 0.05,
            confidence_rows: 30.0,
            ridge_lambda: 1.0,
        }
    }

    fn question(days_ahead: i64, current_price: Option<f64>) -> Question {
        let asked_at = date("2026-03-01").and_hms_opt(10, 0, 0).expect("time");
        Question {
            origin: "lhr".into(),
            destination: "JFK".into(),
            depart_date: date("2026-03-01") + Duration::days(days_ahead),
            return_date: None,
            asked_at,
            current_price,
        }
    }

    #[test]
    fn a_curve_interpolates_between_knots_and_is_flat_beyond_them() {
        let curve = Curve {
            knots: vec![0.0, 10.0, 20.0],
            effects: vec![1.0, 3.0, 2.0],
        };
        assert_eq!(curve.at(-5.0), 1.0);
        assert_eq!(curve.at(5.0), 2.0);
        assert_eq!(curve.at(15.0), 2.5);
        assert_eq!(curve.at(99.0), 2.0);
    }

    #[test]
    fn the_price_is_the_exponent_of_the_summed_effects() {
        let prediction = u_shaped().predict(&question(40, None)).expect("known");
        assert!((prediction.price - 100.0).abs() < 1e-9);
        assert!((prediction.low - 100.0 * (-0.1f64).exp()).abs() < 1e-9);
        assert!((prediction.high - 100.0 * 0.1f64.exp()).abs() < 1e-9);
        assert_eq!(prediction.currency, "EUR");
    }

    #[test]
    fn an_unknown_route_is_unpredictable_and_names_the_destination() {
        let mut q = question(40, None);
        q.destination = "XYZ".into();
        let err = u_shaped().predict(&q).expect_err("unknown");
        assert!(matches!(err, Unpredictable::UnknownRoute { .. }));
        assert_eq!(err.field(), "destination");
        assert!(!u_shaped().knows_route("LHR", "XYZ"));
        assert!(u_shaped().knows_route("lhr", "jfk"));
    }

    #[test]
    fn a_past_departure_a_return_before_it_and_a_bad_price_are_unpredictable() {
        let model = u_shaped();
        assert_eq!(
            model.predict(&question(-1, None)),
            Err(Unpredictable::DepartureInThePast)
        );
        assert_eq!(
            model.predict(&question(400, None)).map_err(|e| e.field()),
            Err("departDate")
        );
        let mut back_early = question(40, None);
        back_early.return_date = Some(back_early.depart_date - Duration::days(1));
        assert_eq!(
            model.predict(&back_early),
            Err(Unpredictable::ReturnBeforeDeparture)
        );
        assert_eq!(
            model.predict(&question(40, Some(-3.0))),
            Err(Unpredictable::InvalidCurrentPrice)
        );
        assert_eq!(
            model.predict(&question(40, Some(f64::NAN))),
            Err(Unpredictable::InvalidCurrentPrice)
        );
    }

    #[test]
    fn far_ahead_of_the_cheapest_weeks_it_recommends_waiting_and_says_how_much_it_saves() {
        let prediction = u_shaped().predict(&question(200, None)).expect("known");
        assert_eq!(prediction.recommendation, Recommendation::Wait);
        assert!((prediction.price - 120.0).abs() < 1e-6);
        assert!((prediction.savings_estimate - 20.0).abs() < 1e-6);
        assert_eq!(prediction.features["cheapestLaterDate"], "2026-08-08");
    }

    #[test]
    fn in_the_last_weeks_prices_only_rise_so_it_recommends_booking_now() {
        let prediction = u_shaped().predict(&question(20, None)).expect("known");
        assert_eq!(prediction.recommendation, Recommendation::BookNow);
        assert_eq!(prediction.savings_estimate, 0.0);
    }

    #[test]
    fn an_offer_already_below_what_later_days_promise_is_booked_now() {
        // 120 expected today, 100 at best later; an offer of 90 beats that.
        let prediction = u_shaped()
            .predict(&question(200, Some(90.0)))
            .expect("known");
        assert_eq!(prediction.recommendation, Recommendation::BookNow);
        assert_eq!(prediction.savings_estimate, 0.0);
    }

    #[test]
    fn a_high_offer_is_worth_waiting_on_even_when_the_model_expects_no_drop() {
        // At 20 days the model expects only rises (to 150), yet an offer of
        // 200 is above every later expectation.
        let prediction = u_shaped()
            .predict(&question(20, Some(200.0)))
            .expect("known");
        assert_eq!(prediction.recommendation, Recommendation::Wait);
        assert!(prediction.savings_estimate > 40.0);
    }

    #[test]
    fn a_saving_below_the_threshold_is_not_worth_waiting_for() {
        // 41 days out the price is a hair above the 40-day minimum.
        let prediction = u_shaped().predict(&question(41, None)).expect("known");
        assert_eq!(prediction.recommendation, Recommendation::BookNow);
    }

    #[test]
    fn days_close_to_departure_leave_nothing_to_wait_for() {
        let prediction = u_shaped()
            .predict(&question(2, Some(10_000.0)))
            .expect("known");
        assert_eq!(prediction.recommendation, Recommendation::BookNow);
        assert_eq!(
            prediction.features["cheapestLaterDate"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn confidence_falls_with_the_interval_width_and_rises_with_the_route_rows() {
        assert!(confidence(0.2, 400.0, 30.0) > confidence(0.8, 400.0, 30.0));
        assert!(confidence(0.2, 400.0, 30.0) > confidence(0.2, 10.0, 30.0));
        assert!((confidence(0.0, 30.0, 30.0) - 0.5).abs() < 1e-12);
        assert!((0.0..=1.0).contains(&confidence(5.0, 1.0, 30.0)));
    }

    #[test]
    fn a_model_read_back_from_its_json_predicts_the_same() {
        let model = u_shaped();
        let text = serde_json::to_string(&model).expect("serialise");
        let back: Model = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(back, model);
        let q = question(120, Some(130.0));
        assert_eq!(back.predict(&q), model.predict(&q));
    }
}
