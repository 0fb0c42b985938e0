//! The bar for the price model, on synthetic fares it never saw.

use chrono::{Duration, NaiveDate};
use pricing::{Model, Question, TrainError, TrainOptions, Unpredictable, synthetic, train};

fn trained(seed: u64) -> pricing::Trained {
    train(
        &synthetic::fares(seed, &synthetic::Options::default()),
        &TrainOptions::default(),
    )
    .expect("enough synthetic fares")
}

#[test]
fn on_held_out_fares_it_beats_the_per_route_median_by_a_quarter_in_mape() {
    for seed in [1, 2, 3] {
        let metrics = trained(seed).metrics;
        assert!(
            metrics.mape <= 0.75 * metrics.baseline_mape,
            "seed {seed}: {metrics:?}"
        );
        assert!(metrics.holdout_rows >= 1_000, "seed {seed}: {metrics:?}");
    }
}

#[test]
fn its_80_percent_interval_covers_75_to_85_percent_of_held_out_fares() {
    for seed in [1, 2, 3] {
        let metrics = trained(seed).metrics;
        assert!(
            (0.75..=0.85).contains(&metrics.interval_coverage),
            "seed {seed}: {metrics:?}"
        );
    }
}

#[test]
fn it_learns_the_shape_of_fares_close_to_and_far_from_departure() {
    let model = trained(4).model;
    let curve = &model.days_to_departure;
    assert!(curve.at(2.0) > curve.at(49.0) + 0.3, "{curve:?}");
    assert!(curve.at(300.0) > curve.at(49.0), "{curve:?}");
    // One-way is well below any return trip.
    assert!(model.trip.one_way < model.trip.nights.at(7.0) - 0.3);
}

#[test]
fn the_summary_says_what_it_was_trained_on() {
    let options = synthetic::Options::default();
    let result = trained(5);
    assert_eq!(result.summary.rows, options.count);
    assert_eq!(result.summary.routes, synthetic::ROUTES.len());
    assert!(result.summary.holdout_from > result.summary.from);
    assert!(result.summary.to <= options.start + Duration::days(i64::from(options.days)));
    assert_eq!(result.metrics.train_rows, options.count - options.count / 5);
}

#[test]
fn a_model_read_back_from_json_predicts_exactly_the_same() {
    let model = trained(6).model;
    let text = serde_json::to_string(&model).expect("serialise");
    let back: Model = serde_json::from_str(&text).expect("deserialise");
    let asked_at = NaiveDate::from_ymd_opt(2026, 7, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .expect("time");
    for days in [1, 20, 60, 200] {
        let question = Question {
            origin: "LHR".into(),
            destination: "JFK".into(),
            depart_date: asked_at.date() + Duration::days(days),
            return_date: Some(asked_at.date() + Duration::days(days + 7)),
            asked_at,
            current_price: None,
        };
        assert_eq!(back.predict(&question), model.predict(&question));
    }
}

#[test]
fn a_route_it_never_saw_is_unpredictable() {
    let model = trained(7).model;
    let question = Question {
        origin: "LHR".into(),
        destination: "SYD".into(),
        depart_date: NaiveDate::from_ymd_opt(2026, 9, 1).expect("date"),
        return_date: None,
        asked_at: NaiveDate::from_ymd_opt(2026, 7, 1)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .expect("time"),
        current_price: None,
    };
    assert!(matches!(
        model.predict(&question),
        Err(Unpredictable::UnknownRoute { .. })
    ));
}

#[test]
fn too_few_fares_or_routes_train_nothing() {
    let few = synthetic::fares(
        8,
        &synthetic::Options {
            count: 150,
            ..synthetic::Options::default()
        },
    );
    assert_eq!(
        train(&few, &TrainOptions::default()).map(|_| ()),
        Err(TrainError::TooFewFares {
            rows: 150,
            min: 200
        })
    );
    let one_route: Vec<_> = synthetic::fares(9, &synthetic::Options::default())
        .into_iter()
        .filter(|f| f.origin == "LHR" && f.destination == "JFK")
        .collect();
    assert!(one_route.len() >= 200);
    assert_eq!(
        train(&one_route, &TrainOptions::default()).map(|_| ()),
        Err(TrainError::TooFewRoutes { routes: 1, min: 2 })
    );
}

/// `count` one-fare routes of made-up codes, as a visitor's script could
/// send them as fare events.
fn junk_routes(count: usize) -> Vec<pricing::Fare> {
    let template = synthetic::fares(10, &synthetic::Options::default())
        .into_iter()
        .next()
        .expect("a fare");
    (0..count)
        .map(|i| {
            let letter = |n: usize| char::from(b'A' + u8::try_from(n % 26).expect("letter"));
            pricing::Fare {
                origin: format!("Q{}{}", letter(i / 26), letter(i)),
                destination: "ZZZ".into(),
                ..template.clone()
            }
        })
        .collect()
}

#[test]
fn routes_with_too_few_fares_are_not_fitted() {
    let mut fares = synthetic::fares(10, &synthetic::Options::default());
    fares.extend(junk_routes(300));
    let result = train(&fares, &TrainOptions::default()).expect("trained");
    assert_eq!(result.model.routes.len(), synthetic::ROUTES.len());
    assert!(!result.model.knows_route("QAA", "ZZZ"));
    assert!(result.summary.dropped_rows >= 240, "{:?}", result.summary);
}

#[test]
fn at_most_max_routes_are_fitted_the_best_supported_first() {
    let fares = synthetic::fares(11, &synthetic::Options::default());
    let options = TrainOptions {
        max_routes: 3,
        ..TrainOptions::default()
    };
    let result = train(&fares, &options).expect("trained");
    assert_eq!(result.model.routes.len(), 3);
    let fewest_kept = result
        .model
        .routes
        .values()
        .map(|r| r.rows)
        .min()
        .expect("routes");
    let full = train(&fares, &TrainOptions::default()).expect("trained");
    let left_out = full
        .model
        .routes
        .iter()
        .filter(|(key, _)| !result.model.routes.contains_key(*key))
        .map(|(_, r)| r.rows)
        .max()
        .expect("routes left out");
    assert!(fewest_kept >= left_out, "{fewest_kept} < {left_out}");
}
