//! Fitting the model: ridge regression of log price on the model's features,
//! solved from the normal equations (XᵀX + λD) β = Xᵀy by Cholesky
//! (nalgebra). The design matrix is never built: each fare touches at most
//! seven columns, so XᵀX (a few dozen columns square) is accumulated fare by
//! fare, and training memory does not grow with the number of fares.
//!
//! Route levels are unpenalised; every other effect is shrunk towards 0 with
//! the same λ, which also makes the redundant parameterisation (the route
//! levels, the days curve, the weekday and month effects each could absorb a
//! constant) solvable without choosing reference categories: an effect the
//! data cannot tell apart stays 0, the average.
//!
//! The newest fares (by when they were observed) are held out: the model is
//! fitted on the older ones and measured on them, and that fitted model is
//! the one stored, so the metrics describe exactly what is served.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{Datelike, NaiveDateTime};
use nalgebra::{DMatrix, DVector};
use serde::{Serialize, Serializer};

use crate::{Curve, Fare, Model, Question, ResidualBand, RouteLevel, TripEffect};

/// Knots of the days-to-departure curve: dense where fares move fast.
const DAYS_KNOTS: &[f64] = &[
    0.0, 3.0, 7.0, 14.0, 21.0, 28.0, 42.0, 56.0, 90.0, 120.0, 180.0, 270.0, 365.0,
];
/// Knots of the nights-away curve of return trips.
const NIGHTS_KNOTS: &[f64] = &[0.0, 2.0, 4.0, 7.0, 10.0, 14.0, 21.0, 30.0];
/// Upper limits (days to departure) of the residual bands; the last is open.
const RESIDUAL_BANDS: &[i64] = &[7, 21, 60];
/// Fewer training rows than this in a band: the band uses all residuals.
const MIN_BAND_ROWS: usize = 50;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The newest share of fares held out to measure the model.
    pub holdout_fraction: f64,
    /// The ridge penalty of every effect but the route levels.
    pub ridge_lambda: f64,
    /// Fewer valid fares than this: no model.
    pub min_rows: usize,
    /// Fewer routes than this: no model.
    pub min_routes: usize,
    /// A route with fewer training fares than this is left out: its level
    /// would rest on noise.
    pub min_route_rows: usize,
    /// At most this many routes (those with the most training fares): the
    /// normal equations are dense, one column per route, so their memory
    /// grows with the square of the routes and the solve with the cube, and
    /// fares come from visitors' browsers, who can name any pair of codes.
    pub max_routes: usize,
    /// See [`Model::wait_threshold`].
    pub wait_threshold: f64,
    /// See [`Model::confidence_rows`].
    pub confidence_rows: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            holdout_fraction: 0.2,
            ridge_lambda: 1.0,
            min_rows: 200,
            min_routes: 2,
            min_route_rows: 5,
            max_routes: 1_000,
            wait_threshold: 0.05,
            confidence_rows: 30.0,
        }
    }
}

/// How the model did on the held-out newest fares.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldoutMetrics {
    /// Mean absolute percentage error (0.1 = 10%).
    pub mape: f64,
    /// Mean absolute error, in the fares' currency units.
    pub mae: f64,
    /// Share of held-out fares inside the 80% interval.
    pub interval_coverage: f64,
    /// MAPE of the naive per-route median of training prices, on the same fares.
    pub baseline_mape: f64,
    pub train_rows: usize,
    /// Held-out fares measured.
    pub holdout_rows: usize,
    /// Held-out fares the model could not answer (a route or a distance to
    /// departure it never saw), not in the metrics.
    pub unpredictable_rows: usize,
}

/// What a model was trained on (`trainingData`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingSummary {
    /// Valid fares used, training and holdout.
    pub rows: usize,
    /// The first and last observation.
    #[serde(serialize_with = "utc")]
    pub from: NaiveDateTime,
    #[serde(serialize_with = "utc")]
    pub to: NaiveDateTime,
    /// Routes the model knows.
    pub routes: usize,
    /// The first observation held out.
    #[serde(serialize_with = "utc")]
    pub holdout_from: NaiveDateTime,
    /// Fares left out: no positive price, departing before being observed,
    /// returning before departing, not in their route's main currency, or of
    /// a route with too few fares (or beyond the most routes fitted).
    pub dropped_rows: usize,
}

fn utc<S: Serializer>(at: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

#[derive(Debug, Clone)]
pub struct Trained {
    pub model: Model,
    pub metrics: HoldoutMetrics,
    pub summary: TrainingSummary,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrainError {
    TooFewFares {
        rows: usize,
        min: usize,
    },
    TooFewRoutes {
        routes: usize,
        min: usize,
    },
    /// The held-out fares are all of routes or distances the training part lacks.
    NothingToMeasure,
    /// The normal equations are not positive definite (a non-finite value).
    Numerical,
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::TooFewFares { rows, min } => {
                write!(
                    f,
                    "too few fares to train on: {rows} valid, at least {min} needed"
                )
            }
            TrainError::TooFewRoutes { routes, min } => write!(
                f,
                "too few routes to train on: {routes}, at least {min} needed"
            ),
            TrainError::NothingToMeasure => write!(
                f,
                "none of the held-out newest fares is of a route and distance the older ones cover"
            ),
            TrainError::Numerical => write!(f, "the fit failed numerically"),
        }
    }
}

impl std::error::Error for TrainError {}

/// Column layout of the fit: route levels, then the effects.
struct Layout {
    routes: Vec<String>,
    days: usize,
    weekday: usize,
    month: usize,
    one_way: usize,
    nights: usize,
    width: usize,
}

impl Layout {
    fn new(routes: Vec<String>) -> Self {
        let days = routes.len();
        let weekday = days + DAYS_KNOTS.len();
        let month = weekday + 7;
        let one_way = month + 12;
        let nights = one_way + 1;
        let width = nights + NIGHTS_KNOTS.len();
        Layout {
            routes,
            days,
            weekday,
            month,
            one_way,
            nights,
            width,
        }
    }

    /// The non-zero columns of a fare's row.
    fn row(&self, route: usize, fare: &Fare) -> Vec<(usize, f64)> {
        let days = (fare.depart_date - fare.observed_at.date()).num_days() as f64;
        let mut row = Vec::with_capacity(7);
        row.push((route, 1.0));
        row.extend(
            crate::hat_weights(DAYS_KNOTS, days)
                .into_iter()
                .map(|(i, w)| (self.days + i, w)),
        );
        row.push((
            self.weekday + fare.depart_date.weekday().num_days_from_monday() as usize,
            1.0,
        ));
        row.push((self.month + fare.depart_date.month0() as usize, 1.0));
        match fare.return_date {
            None => row.push((self.one_way, 1.0)),
            Some(back) => {
                let nights = (back - fare.depart_date).num_days() as f64;
                row.extend(
                    crate::hat_weights(NIGHTS_KNOTS, nights)
                        .into_iter()
                        .map(|(i, w)| (self.nights + i, w)),
                );
            }
        }
        row.retain(|&(_, w)| w != 0.0);
        row
    }
}

fn is_valid(fare: &Fare) -> bool {
    fare.price.is_finite()
        && fare.price > 0.0
        && fare.depart_date >= fare.observed_at.date()
        && fare.return_date.is_none_or(|back| back >= fare.depart_date)
}

/// Fits a model on the older fares and measures it on the newest
/// `holdout_fraction` of them.
pub fn train(fares: &[Fare], options: &TrainOptions) -> Result<Trained, TrainError> {
    let mut valid: Vec<&Fare> = fares.iter().filter(|f| is_valid(f)).collect();
    let mut dropped_rows = fares.len() - valid.len();
    let route_count = valid
        .iter()
        .map(|f| Model::route_key(&f.origin, &f.destination))
        .collect::<std::collections::HashSet<_>>()
        .len();
    if valid.len() < options.min_rows.max(2) {
        return Err(TrainError::TooFewFares {
            rows: valid.len(),
            min: options.min_rows.max(2),
        });
    }
    if route_count < options.min_routes {
        return Err(TrainError::TooFewRoutes {
            routes: route_count,
            min: options.min_routes,
        });
    }
    valid.sort_by_key(|f| f.observed_at);
    let fraction = options.holdout_fraction.clamp(0.0, 0.9);
    #[allow(clippy::cast_possible_truncation)] // a share of a length, within it
    let holdout_len = ((valid.len() as f64 * fraction).ceil() as usize).clamp(1, valid.len() - 1);
    let (training, holdout) = valid.split_at(valid.len() - holdout_len);

    // Each route's fares in its most common currency: levels in one unit.
    let mut currencies: HashMap<String, HashMap<&str, usize>> = HashMap::new();
    for fare in training {
        *currencies
            .entry(Model::route_key(&fare.origin, &fare.destination))
            .or_default()
            .entry(fare.currency.as_str())
            .or_default() += 1;
    }
    let route_currency: BTreeMap<String, String> = currencies
        .into_iter()
        .map(|(route, counts)| {
            let main = counts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
                .map(|(c, _)| c.to_string())
                .unwrap_or_default();
            (route, main)
        })
        .collect();
    let in_main_currency = |fare: &&Fare| {
        route_currency
            .get(&Model::route_key(&fare.origin, &fare.destination))
            .is_some_and(|c| *c == fare.currency)
    };
    let training: Vec<&Fare> = training.iter().copied().filter(in_main_currency).collect();

    // The routes fitted: enough fares each, the best supported first.
    let mut route_sizes: HashMap<String, usize> = HashMap::new();
    for fare in &training {
        *route_sizes
            .entry(Model::route_key(&fare.origin, &fare.destination))
            .or_default() += 1;
    }
    let mut supported: Vec<(String, usize)> = route_sizes
        .into_iter()
        .filter(|&(_, rows)| rows >= options.min_route_rows)
        .collect();
    supported.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    supported.truncate(options.max_routes);
    let route_currency: BTreeMap<String, String> = supported
        .into_iter()
        .filter_map(|(route, _)| {
            let currency = route_currency.get(&route)?.clone();
            Some((route, currency))
        })
        .collect();
    if route_currency.len() < options.min_routes.max(1) {
        return Err(TrainError::TooFewRoutes {
            routes: route_currency.len(),
            min: options.min_routes.max(1),
        });
    }
    let training: Vec<&Fare> = training
        .into_iter()
        .filter(|fare| {
            route_currency.contains_key(&Model::route_key(&fare.origin, &fare.destination))
        })
        .collect();
    dropped_rows += valid.len() - holdout_len - training.len();

    let layout = Layout::new(route_currency.keys().cloned().collect());
    let route_index: HashMap<&str, usize> = layout
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (r.as_str(), i))
        .collect();
    let mut route_rows = vec![0u64; layout.routes.len()];
    let mut xtx = DMatrix::<f64>::zeros(layout.width, layout.width);
    let mut xty = DVector::<f64>::zeros(layout.width);
    let mut rows = Vec::with_capacity(training.len());
    for fare in &training {
        let route = route_index[Model::route_key(&fare.origin, &fare.destination).as_str()];
        route_rows[route] += 1;
        let row = layout.row(route, fare);
        let y = fare.price.ln();
        for &(i, wi) in &row {
            xty[i] += wi * y;
            for &(j, wj) in &row {
                xtx[(i, j)] += wi * wj;
            }
        }
        rows.push((row, y));
    }
    for i in 0..layout.width {
        // The route levels get only a negligible ridge, against round-off.
        xtx[(i, i)] += if i < layout.days {
            1e-9
        } else {
            options.ridge_lambda
        };
    }
    let beta = xtx.cholesky().ok_or(TrainError::Numerical)?.solve(&xty);
    if beta.iter().any(|b| !b.is_finite()) {
        return Err(TrainError::Numerical);
    }

    // Residual spread per band of days to departure.
    let mut residuals: Vec<Vec<f64>> = vec![Vec::new(); RESIDUAL_BANDS.len() + 1];
    let mut max_days = 0i64;
    for ((row, y), fare) in rows.iter().zip(&training) {
        let fitted: f64 = row.iter().map(|&(i, w)| w * beta[i]).sum();
        let days = (fare.depart_date - fare.observed_at.date()).num_days();
        max_days = max_days.max(days);
        let band = RESIDUAL_BANDS.partition_point(|&max| max < days);
        residuals[band].push(y - fitted);
    }
    let mut all: Vec<f64> = residuals.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let bands = residuals
        .into_iter()
        .enumerate()
        .map(|(band, mut values)| {
            values.sort_by(f64::total_cmp);
            let source = if values.len() >= MIN_BAND_ROWS {
                &values
            } else {
                &all
            };
            ResidualBand {
                max_days: RESIDUAL_BANDS.get(band).copied(),
                low: quantile(source, 0.1),
                high: quantile(source, 0.9),
                rows: values.len() as u64,
            }
        })
        .collect();

    let slice = |from: usize, len: usize| beta.rows(from, len).iter().copied().collect::<Vec<_>>();
    let mut weekday = [0.0; 7];
    weekday.copy_from_slice(&slice(layout.weekday, 7));
    let mut month = [0.0; 12];
    month.copy_from_slice(&slice(layout.month, 12));
    let model = Model {
        format: Model::FORMAT,
        routes: layout
            .routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                (
                    route.clone(),
                    RouteLevel {
                        intercept: beta[i],
                        currency: route_currency[route].clone(),
                        rows: route_rows[i],
                    },
                )
            })
            .collect(),
        days_to_departure: Curve {
            knots: DAYS_KNOTS.to_vec(),
            effects: slice(layout.days, DAYS_KNOTS.len()),
        },
        weekday,
        month,
        trip: TripEffect {
            one_way: beta[layout.one_way],
            nights: Curve {
                knots: NIGHTS_KNOTS.to_vec(),
                effects: slice(layout.nights, NIGHTS_KNOTS.len()),
            },
        },
        residuals: bands,
        max_days_to_departure: max_days,
        wait_threshold: options.wait_threshold,
        confidence_rows: options.confidence_rows,
        ridge_lambda: options.ridge_lambda,
    };

    let metrics = measure(&model, &training, holdout)?;
    let summary = TrainingSummary {
        rows: training.len() + holdout.len(),
        from: valid[0].observed_at,
        to: valid[valid.len() - 1].observed_at,
        routes: model.routes.len(),
        holdout_from: holdout[0].observed_at,
        dropped_rows,
    };
    Ok(Trained {
        model,
        metrics,
        summary,
    })
}

/// The model and the per-route median baseline on the held-out fares.
fn measure(
    model: &Model,
    training: &[&Fare],
    holdout: &[&Fare],
) -> Result<HoldoutMetrics, TrainError> {
    let mut by_route: HashMap<String, Vec<f64>> = HashMap::new();
    for fare in training {
        by_route
            .entry(Model::route_key(&fare.origin, &fare.destination))
            .or_default()
            .push(fare.price);
    }
    let medians: HashMap<String, f64> = by_route
        .into_iter()
        .map(|(route, mut prices)| {
            prices.sort_by(f64::total_cmp);
            (route, quantile(&prices, 0.5))
        })
        .collect();

    let (mut ape, mut ae, mut covered, mut baseline_ape) = (0.0, 0.0, 0usize, 0.0);
    let (mut measured, mut unpredictable) = (0usize, 0usize);
    for fare in holdout {
        let key = Model::route_key(&fare.origin, &fare.destination);
        let question = Question {
            origin: fare.origin.clone(),
            destination: fare.destination.clone(),
            depart_date: fare.depart_date,
            return_date: fare.return_date,
            asked_at: fare.observed_at,
            current_price: None,
        };
        let same_currency = model
            .routes
            .get(&key)
            .is_some_and(|r| r.currency == fare.currency);
        match (model.predict(&question), medians.get(&key)) {
            (Ok(prediction), Some(&median)) if same_currency => {
                measured += 1;
                ape += (prediction.price - fare.price).abs() / fare.price;
                ae += (prediction.price - fare.price).abs();
                baseline_ape += (median - fare.price).abs() / fare.price;
                if prediction.low <= fare.price && fare.price <= prediction.high {
                    covered += 1;
                }
            }
            _ => unpredictable += 1,
        }
    }
    if measured == 0 {
        return Err(TrainError::NothingToMeasure);
    }
    let n = measured as f64;
    Ok(HoldoutMetrics {
        mape: ape / n,
        mae: ae / n,
        interval_coverage: covered as f64 / n,
        baseline_mape: baseline_ape / n,
        train_rows: training.len(),
        holdout_rows: measured,
        unpredictable_rows: unpredictable,
    })
}

/// The `q` quantile of sorted values, interpolating linearly between ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    #[allow(clippy::cast_possible_truncation)] // within 0..len by the clamp
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let t = position - below as f64;
    sorted[below] * (1.0 - t) + sorted[above] * t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let values = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&values, 0.5), 3.0);
        assert_eq!(quantile(&values, 0.1), 1.4);
        assert_eq!(quantile(&values, 1.0), 5.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
