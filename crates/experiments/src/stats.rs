//! What an experiment's numbers say, computed as GrowthBook's frequentist
//! engine (the `gbstats` Python package, 0.8.0) computes them, so that the
//! results this site shows agree with what GrowthBook itself would show for
//! the same counts.
//!
//! Two things are answered:
//!
//! - [`compare`]: did a treatment move a metric relative to the control?
//!   A two-sided Welch t-test on the *relative* lift, with a delta-method
//!   standard error, Welch–Satterthwaite degrees of freedom and a 95%
//!   confidence interval (gbstats' `TwoSidedTTest` with its default config).
//! - [`sample_ratio_mismatch`]: did traffic split as configured? A Pearson
//!   chi-square test of units per arm against the weights (gbstats'
//!   `check_srm`). A mismatch means the assignment or the tracking is broken,
//!   and then no comparison of that experiment can be trusted.
//!
//! Limits, all inherited from gbstats' fixed-horizon test:
//!
//! - Peeking: a p-value is valid only at a sample size fixed in advance.
//!   Looking at a running test every day and stopping the first time
//!   `p < 0.05` makes false winners far more frequent than 5%.
//! - Multiple comparisons: each treatment and each metric is a separate test
//!   at 5%; with many of them, some will "win" by chance. Nothing here corrects
//!   for that.
//! - Large-sample approximation: the t-test and the delta method assume means
//!   that are roughly normal. Small arms or very skewed values (a few huge
//!   bookings) make the interval and the p-value unreliable, even when the
//!   numbers come out.
//! - Units are assumed independent: one value per unit (visitor), not per
//!   event.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, StudentsT};

/// Significance level of [`compare`]: its interval covers 95%, two-sided,
/// as gbstats' default `alpha`.
pub const ALPHA: f64 = 0.05;

/// A sample-ratio p-value below this means the split is broken. As
/// GrowthBook's default: strict, because the check runs on every experiment
/// at every look, and a false alarm discards an experiment's results.
pub const SRM_THRESHOLD: f64 = 0.001;

/// One arm's sufficient statistics, the numbers gbstats takes (`count`,
/// `main_sum`, `main_sum_squares`), so they can be summed in SQL without
/// moving per-unit rows.
///
/// A unit is a participant (visitor). For a [`MetricKind::Mean`] metric each
/// unit contributes one value, its total over the experiment: a visitor who
/// booked twice contributes the sum of both bookings (squared once, in
/// `sum_squares`), and a visitor who did not convert contributes 0 and still
/// counts in `units`. That is GrowthBook's default for mean metrics; leaving
/// non-converters out (its "ignore nulls" option) answers a different
/// question, value per converter, and is the caller's choice of `units`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmSummary {
    /// Units (participants) in the arm.
    pub units: u64,
    /// Sum of the units' values; conversions for a proportion metric.
    pub sum: f64,
    /// Sum of the squares of the units' values. Ignored for a proportion
    /// metric, whose 0/1 values make it equal to `sum`.
    pub sum_squares: f64,
}

impl ArmSummary {
    /// An arm of a proportion metric: `conversions` of `units` converted.
    #[must_use]
    pub fn from_conversions(units: u64, conversions: u64) -> Self {
        let conversions = conversions as f64;
        Self {
            units,
            sum: conversions,
            sum_squares: conversions,
        }
    }

    /// An arm of a mean metric from one value per unit (0 for a unit that
    /// did not convert).
    #[must_use]
    pub fn from_values<I: IntoIterator<Item = f64>>(values: I) -> Self {
        values.into_iter().fold(Self::default(), |arm, value| Self {
            units: arm.units + 1,
            sum: arm.sum + value,
            sum_squares: arm.sum_squares + value * value,
        })
    }
}

/// How a metric's per-unit values are modelled, which decides the per-unit
/// variance (gbstats' `ProportionStatistic` and `SampleMeanStatistic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricKind {
    /// Converted or not (units converted / units): variance `p(1 - p)`, the
    /// population variance of 0/1 values, as gbstats has it (no `n - 1`).
    Proportion,
    /// Any value per unit, such as booking value per participant: the sample
    /// variance (`n - 1` in the denominator); 0 for an arm of one unit.
    Mean,
}

/// Why a [`Comparison`] holds gbstats' uninformative default (lift 0,
/// interval `[0, 0]`, p-value 1) instead of an estimate. Serialized as
/// gbstats' own error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Uninformative {
    /// The control's mean is 0 (no units, or no conversions): a lift relative
    /// to it is undefined.
    #[serde(rename = "ZERO_NEGATIVE_BASELINE_VARIATION")]
    BaselineZero,
    /// An arm's variance is 0 or negative: every unit converted, none did,
    /// the arm has fewer than two units, or the sums are inconsistent. The
    /// t-test has no standard error to work with.
    #[serde(rename = "ZERO_NEGATIVE_VARIANCE")]
    ZeroVariance,
}

/// A treatment against the control, on the relative lift
/// `(mean_t - mean_c) / |mean_c|` (0.05 = +5%).
///
/// When gbstats refuses to estimate, this is its uninformative default:
/// every number 0 except `p_value` 1, and `error_message` says why. Check
/// `error_message` before showing the numbers: a p-value of 1 there means
/// "no information", not "no effect".
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// Relative lift of the treatment's mean over the control's.
    pub lift: f64,
    /// Lower end of the 95% confidence interval of `lift`.
    pub ci_lower: f64,
    /// Upper end of the 95% confidence interval of `lift`.
    pub ci_upper: f64,
    /// Two-sided p-value of "the lift is 0".
    pub p_value: f64,
    /// Delta-method standard error of `lift`.
    pub standard_error: f64,
    /// Welch–Satterthwaite degrees of freedom of the t distribution used
    /// (0 when uninformative: gbstats does not report them).
    pub degrees_of_freedom: f64,
    /// Set when the numbers above are the uninformative default.
    pub error_message: Option<Uninformative>,
}

impl Comparison {
    fn uninformative(reason: Uninformative) -> Self {
        Self {
            lift: 0.0,
            ci_lower: 0.0,
            ci_upper: 0.0,
            p_value: 1.0,
            standard_error: 0.0,
            degrees_of_freedom: 0.0,
            error_message: Some(reason),
        }
    }
}

/// An arm's mean and per-unit variance, as gbstats' statistics define them.
struct Moments {
    n: f64,
    mean: f64,
    variance: f64,
}

impl Moments {
    fn of(arm: &ArmSummary, kind: MetricKind) -> Self {
        let n = arm.units as f64;
        // gbstats answers 0 rather than dividing by zero; the checks in
        // `compare` then turn that into the uninformative default.
        let mean = if arm.units == 0 { 0.0 } else { arm.sum / n };
        let variance = match kind {
            MetricKind::Proportion => mean * (1.0 - mean),
            MetricKind::Mean if arm.units <= 1 => 0.0,
            // The textbook one-pass formula, as gbstats: it loses digits when
            // the variance is tiny next to the mean, but agreeing with
            // GrowthBook matters more here than those digits.
            MetricKind::Mean => (arm.sum_squares - arm.sum * arm.sum / n) / (n - 1.0),
        };
        Self { n, mean, variance }
    }
}

/// Compares a treatment arm with the control arm on the relative lift, 95%
/// two-sided (gbstats 0.8.0: `TwoSidedTTest(stat_a=control,
/// stat_b=treatment).compute_result()` with the default config).
///
/// Returns the uninformative default (see [`Comparison`]) when the control's
/// mean is 0, checked first, or either arm's variance is 0 or negative.
/// Non-finite sums give NaN numbers, as in gbstats.
#[must_use]
pub fn compare(control: &ArmSummary, treatment: &ArmSummary, kind: MetricKind) -> Comparison {
    let c = Moments::of(control, kind);
    let t = Moments::of(treatment, kind);
    if c.mean == 0.0 {
        return Comparison::uninformative(Uninformative::BaselineZero);
    }
    if c.variance <= 0.0 || t.variance <= 0.0 {
        return Comparison::uninformative(Uninformative::ZeroVariance);
    }

    // Dividing by |mean_c| keeps "positive lift = treatment higher" when the
    // control's mean is negative (a metric net of refunds). gbstats 0.8.0
    // divides by the signed mean; GrowthBook fixed that later (#6658). Both
    // agree whenever the control's mean is positive.
    let lift = (t.mean - c.mean) / c.mean.abs();
    // Delta method for a ratio of independent means; the sign of mean_c
    // drops out of the squares.
    let variance =
        t.variance / (c.mean.powi(2) * t.n) + c.variance * t.mean.powi(2) / (c.mean.powi(4) * c.n);
    let standard_error = variance.sqrt();
    // Welch–Satterthwaite on the arms' unscaled means, as gbstats (not on
    // the two terms of the relative variance above).
    let (vc, vt) = (c.variance / c.n, t.variance / t.n);
    let degrees_of_freedom =
        (vc + vt).powi(2) / (vt.powi(2) / (t.n - 1.0) + vc.powi(2) / (c.n - 1.0));

    let (p_value, halfwidth) = match StudentsT::new(0.0, 1.0, degrees_of_freedom) {
        Ok(dist) => (
            // `sf` rather than gbstats' `1 - cdf`: same value, without the
            // cancellation that rounds tiny p-values to 0.
            2.0 * dist.sf((lift / standard_error).abs()),
            t_quantile(&dist, 1.0 - ALPHA / 2.0) * standard_error,
        ),
        Err(_) => (f64::NAN, f64::NAN),
    };
    Comparison {
        lift,
        ci_lower: lift - halfwidth,
        ci_upper: lift + halfwidth,
        p_value,
        standard_error,
        degrees_of_freedom,
        error_message: None,
    }
}

/// The `p` quantile of a t distribution.
fn t_quantile(dist: &StudentsT, p: f64) -> f64 {
    let mut x = dist.inverse_cdf(p);
    // statrs 0.18 inverts an incomplete beta function that is off by about
    // 3e-5 (relative) at 200,000 degrees of freedom, enough to move a
    // large test's interval by 1e-6 from scipy's. A few Newton steps on the
    // accurate cdf bring it to scipy's precision.
    for _ in 0..3 {
        let step = (dist.cdf(x) - p) / dist.pdf(x);
        if !step.is_finite() {
            break;
        }
        x -= step;
    }
    x
}

/// Why [`sample_ratio_mismatch`] cannot answer: the arguments do not
/// describe a split (gbstats would raise or answer NaN).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum SrmError {
    /// Each arm needs exactly one weight.
    #[error("{observed} arms observed but {weights} weights configured")]
    LengthMismatch { observed: usize, weights: usize },
    /// A chi-square test of a split needs at least one degree of freedom.
    #[error("a sample-ratio test needs at least two arms, got {0}")]
    TooFewArms(usize),
    /// Weights are shares of traffic: finite and not negative.
    #[error("weight {weight} of arm {index} is not a finite non-negative number")]
    InvalidWeight { index: usize, weight: f64 },
}

/// The p-value of "traffic split as `weights` say", given the units observed
/// in each arm: Pearson's chi-square with `arms - 1` degrees of freedom
/// (gbstats' `check_srm`). Below [`SRM_THRESHOLD`], the split is broken.
///
/// Weights need not sum to 1. As in gbstats: with no units at all the answer
/// is 1, and an arm of weight 0 adds no term to the statistic but still
/// counts in the degrees of freedom and in the total that the other arms'
/// expected counts are shares of. So units in an arm that should get none
/// are barely noticed (100 of 10,000 in a 0/50/50 split: p = 0.37); check
/// for those separately, they always mean a broken split.
///
/// # Errors
///
/// [`SrmError`] when the lengths differ, there are fewer than two arms, or a
/// weight is negative or not finite.
pub fn sample_ratio_mismatch(observed: &[u64], weights: &[f64]) -> Result<f64, SrmError> {
    if observed.len() != weights.len() {
        return Err(SrmError::LengthMismatch {
            observed: observed.len(),
            weights: weights.len(),
        });
    }
    if observed.len() < 2 {
        return Err(SrmError::TooFewArms(observed.len()));
    }
    if let Some((index, &weight)) = weights
        .iter()
        .enumerate()
        .find(|&(_, w)| !(w.is_finite() && *w >= 0.0))
    {
        return Err(SrmError::InvalidWeight { index, weight });
    }

    // Summed as f64: a u64 total could overflow, and the test is approximate
    // far above f64's exact-integer range anyway.
    let total_observed: f64 = observed.iter().map(|&o| o as f64).sum();
    if total_observed == 0.0 {
        return Ok(1.0);
    }
    let total_weight: f64 = weights.iter().sum();
    let statistic: f64 = observed
        .iter()
        .zip(weights)
        .filter(|&(_, &w)| w > 0.0)
        .map(|(&o, &w)| {
            let expected = w / total_weight * total_observed;
            (o as f64 - expected).powi(2) / expected
        })
        .sum();
    let freedom = (observed.len() - 1) as f64;
    Ok(ChiSquared::new(freedom).map_or(f64::NAN, |chi2| chi2.sf(statistic)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn proportion(units: u64, conversions: u64) -> ArmSummary {
        ArmSummary::from_conversions(units, conversions)
    }

    #[test]
    fn a_lift_is_relative_to_the_control_mean() {
        let result = compare(
            &proportion(1000, 100),
            &proportion(1000, 120),
            MetricKind::Proportion,
        );
        assert!((result.lift - 0.2).abs() < 1e-12, "{result:?}");
        assert_eq!(result.error_message, None);
    }

    #[test]
    fn a_negative_control_mean_keeps_the_sign_of_the_lift() {
        // Net values after refunds: the treatment loses less, so it is better.
        let control = ArmSummary::from_values([-10.0, -30.0, -20.0, -40.0]);
        let treatment = ArmSummary::from_values([-5.0, -15.0, -10.0, -20.0]);
        let result = compare(&control, &treatment, MetricKind::Mean);
        assert!((result.lift - 0.5).abs() < 1e-12, "{result:?}");
        assert!(result.ci_lower < result.lift && result.lift < result.ci_upper);
    }

    #[test]
    fn a_control_without_conversions_gives_the_uninformative_default() {
        let result = compare(
            &proportion(500, 0),
            &proportion(500, 9),
            MetricKind::Proportion,
        );
        assert_eq!(
            result,
            Comparison::uninformative(Uninformative::BaselineZero)
        );
        assert_eq!(result.p_value, 1.0);
    }

    #[test]
    fn a_treatment_without_conversions_is_not_estimated_for_lack_of_variance() {
        let result = compare(
            &proportion(500, 9),
            &proportion(500, 0),
            MetricKind::Proportion,
        );
        assert_eq!(result.error_message, Some(Uninformative::ZeroVariance));
        assert_eq!(
            (result.lift, result.ci_lower, result.ci_upper),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn an_arm_where_everyone_converted_has_no_variance() {
        let result = compare(
            &proportion(40, 20),
            &proportion(40, 40),
            MetricKind::Proportion,
        );
        assert_eq!(result.error_message, Some(Uninformative::ZeroVariance));
    }

    #[test]
    fn a_mean_arm_of_one_unit_has_no_variance() {
        let control = ArmSummary::from_values([120.0]);
        let treatment = ArmSummary::from_values([0.0, 80.0, 200.0]);
        let result = compare(&control, &treatment, MetricKind::Mean);
        assert_eq!(result.error_message, Some(Uninformative::ZeroVariance));
    }

    #[test]
    fn empty_arms_are_not_estimated() {
        let empty = ArmSummary::default();
        let some = proportion(100, 10);
        let kind = MetricKind::Proportion;
        assert_eq!(
            compare(&empty, &some, kind).error_message,
            Some(Uninformative::BaselineZero)
        );
        assert_eq!(
            compare(&some, &empty, kind).error_message,
            Some(Uninformative::ZeroVariance)
        );
    }

    #[test]
    fn identical_arms_have_no_lift_and_a_p_value_of_one() {
        let arm = proportion(2000, 150);
        let result = compare(&arm, &arm, MetricKind::Proportion);
        assert_eq!(result.lift, 0.0);
        assert!((result.p_value - 1.0).abs() < 1e-12, "{result:?}");
        assert!(result.ci_lower < 0.0 && 0.0 < result.ci_upper);
    }

    #[test]
    fn a_proportion_ignores_the_sum_of_squares() {
        let control = proportion(1000, 100);
        let treatment = ArmSummary {
            sum_squares: 12345.0,
            ..proportion(1000, 130)
        };
        assert_eq!(
            compare(&control, &treatment, MetricKind::Proportion),
            compare(&control, &proportion(1000, 130), MetricKind::Proportion)
        );
    }

    #[test]
    fn a_proportion_uses_the_population_variance_and_a_mean_the_sample_variance() {
        // The same 0/1 data: as a mean metric, the variance gains n/(n-1),
        // so its interval is a little wider.
        let control = proportion(10, 3);
        let treatment = proportion(10, 6);
        let as_proportion = compare(&control, &treatment, MetricKind::Proportion);
        let as_mean = compare(&control, &treatment, MetricKind::Mean);
        assert_eq!(as_proportion.lift, as_mean.lift);
        let ratio = as_mean.standard_error / as_proportion.standard_error;
        assert!((ratio - (10.0_f64 / 9.0).sqrt()).abs() < 1e-12, "{ratio}");
    }

    #[test]
    fn more_units_narrow_the_interval() {
        let small = compare(
            &proportion(1000, 50),
            &proportion(1000, 60),
            MetricKind::Proportion,
        );
        let large = compare(
            &proportion(100_000, 5000),
            &proportion(100_000, 6000),
            MetricKind::Proportion,
        );
        assert!(large.ci_upper - large.ci_lower < small.ci_upper - small.ci_lower);
        assert!(large.p_value < small.p_value);
    }

    #[test]
    fn the_summary_of_values_holds_their_count_sum_and_sum_of_squares() {
        let arm = ArmSummary::from_values([0.0, 120.5, 0.0, 300.0]);
        assert_eq!(
            arm,
            ArmSummary {
                units: 4,
                sum: 420.5,
                sum_squares: 120.5 * 120.5 + 300.0 * 300.0,
            }
        );
    }

    #[test]
    fn a_comparison_serializes_in_camel_case_with_gbstats_messages() {
        let json = serde_json::to_value(Comparison::uninformative(Uninformative::ZeroVariance))
            .expect("serializable");
        assert_eq!(
            json,
            serde_json::json!({
                "lift": 0.0, "ciLower": 0.0, "ciUpper": 0.0, "pValue": 1.0,
                "standardError": 0.0, "degreesOfFreedom": 0.0,
                "errorMessage": "ZERO_NEGATIVE_VARIANCE",
            })
        );
    }

    #[test]
    fn a_split_as_configured_has_a_p_value_of_one() {
        let p = sample_ratio_mismatch(&[5000, 5000], &[0.5, 0.5]).expect("valid split");
        assert!((p - 1.0).abs() < 1e-12, "{p}");
    }

    #[test]
    fn weights_are_shares_and_need_not_sum_to_one() {
        let shares = sample_ratio_mismatch(&[1010, 2990], &[0.25, 0.75]);
        let ratio = sample_ratio_mismatch(&[1010, 2990], &[1.0, 3.0]);
        let (shares, ratio) = (shares.expect("valid"), ratio.expect("valid"));
        assert!((shares - ratio).abs() < 1e-12, "{shares} vs {ratio}");
    }

    #[test]
    fn a_lopsided_split_is_flagged() {
        let p = sample_ratio_mismatch(&[5400, 4600], &[0.5, 0.5]).expect("valid split");
        assert!(p < SRM_THRESHOLD, "{p}");
    }

    #[test]
    fn no_units_is_no_evidence_of_a_mismatch() {
        assert_eq!(sample_ratio_mismatch(&[0, 0, 0], &[1.0, 1.0, 1.0]), Ok(1.0));
    }

    #[test]
    fn arguments_that_do_not_describe_a_split_are_rejected() {
        assert_eq!(
            sample_ratio_mismatch(&[10, 20], &[0.5, 0.25, 0.25]),
            Err(SrmError::LengthMismatch {
                observed: 2,
                weights: 3
            })
        );
        assert_eq!(
            sample_ratio_mismatch(&[10], &[1.0]),
            Err(SrmError::TooFewArms(1))
        );
        assert_eq!(
            sample_ratio_mismatch(&[10, 20], &[0.5, -0.5]),
            Err(SrmError::InvalidWeight {
                index: 1,
                weight: -0.5
            })
        );
        assert!(matches!(
            sample_ratio_mismatch(&[10, 20], &[f64::NAN, 0.5]),
            Err(SrmError::InvalidWeight { index: 0, .. })
        ));
    }

    /// Arms of a proportion metric that gbstats estimates: at least two
    /// units, and neither none nor all of them converted.
    fn estimable_arm() -> impl Strategy<Value = ArmSummary> {
        (2_u64..200_000)
            .prop_flat_map(|units| (Just(units), 1..units))
            .prop_map(|(units, conversions)| proportion(units, conversions))
    }

    proptest! {
        #[test]
        fn an_estimate_is_consistent_with_itself(
            control in estimable_arm(),
            treatment in estimable_arm(),
        ) {
            let r = compare(&control, &treatment, MetricKind::Proportion);
            prop_assert_eq!(r.error_message, None);
            prop_assert!((0.0..=1.0).contains(&r.p_value), "{:?}", r);
            prop_assert!(r.ci_lower <= r.lift && r.lift <= r.ci_upper, "{:?}", r);
            prop_assert!(
                ((r.lift - r.ci_lower) - (r.ci_upper - r.lift)).abs()
                    <= 1e-9 * (1.0 + r.ci_upper - r.ci_lower),
                "{:?}", r
            );
            // Welch's degrees of freedom lie between the smaller arm's and
            // the pooled test's.
            let smaller = control.units.min(treatment.units) as f64 - 1.0;
            let pooled = (control.units + treatment.units) as f64 - 2.0;
            prop_assert!(
                smaller * (1.0 - 1e-9) <= r.degrees_of_freedom
                    && r.degrees_of_freedom <= pooled * (1.0 + 1e-9),
                "{:?}", r
            );
            // The test and the interval agree: significant exactly when the
            // interval excludes 0 (away from rounding at the boundary).
            if (r.p_value - ALPHA).abs() > 1e-9 {
                prop_assert_eq!(
                    r.p_value < ALPHA,
                    r.ci_lower > 0.0 || r.ci_upper < 0.0,
                    "{:?}", r
                );
            }
        }
    }
}
