//! Which variant a visitor gets: GrowthBook's deterministic hashing and bucket
//! ranges, reproduced bit for bit.
//!
//! Why reproduce rather than invent: a visitor must land in the same variant
//! whether the assignment is computed here or by a GrowthBook SDK (in the
//! browser, or in GrowthBook's own analysis), so every number below follows
//! the JavaScript SDK's `packages/sdk-js/src/util.ts`
//! (<https://github.com/growthbook/growthbook/blob/main/packages/sdk-js/src/util.ts>)
//! including its float arithmetic, and is checked against the SDK's shared
//! test cases (`tests/spec/growthbook_cases.rs`).

/// The FNV-1a 32-bit hash of a string's UTF-16 code units.
///
/// UTF-16 rather than UTF-8 because the SDK hashes `charCodeAt` values: a
/// non-ASCII visitor id must hash as it does in the browser.
fn fnv1a32(text: &str) -> u32 {
    fnv1a32_from(FNV_OFFSET, text)
}

const FNV_OFFSET: u32 = 0x811c_9dc5;

/// FNV-1a 32 continued from `state`: hashing `b` from the state after `a`
/// is hashing `a + b`, without building the concatenation (evaluation runs
/// this for every flag of every request).
fn fnv1a32_from(state: u32, text: &str) -> u32 {
    text.encode_utf16().fold(state, |hash, unit| {
        (hash ^ u32::from(unit)).wrapping_mul(0x0100_0193)
    })
}

/// FNV-1a 32 of `n`'s decimal digits (what the SDK's `hash(n + "")` reads),
/// without formatting a string.
fn fnv1a32_of_decimal(n: u32) -> u32 {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    digits[at..].iter().fold(FNV_OFFSET, |hash, digit| {
        (hash ^ u32::from(*digit)).wrapping_mul(0x0100_0193)
    })
}

/// A deterministic number in `[0, 1)` for `value`, salted by `seed`, as the
/// SDK's `hash(seed, value, version)`.
///
/// Version 1 is GrowthBook's original (biased, 1000 buckets) algorithm, kept
/// because experiments started with it must keep their assignments; version 2
/// (unbiased, 10 000 buckets) is what new experiments use. Any other version
/// is unknown to the SDK and yields `None`, which callers treat as "not in the
/// experiment".
#[must_use]
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        2 => {
            let first = fnv1a32_from(fnv1a32(seed), value);
            Some(f64::from(fnv1a32_of_decimal(first) % 10_000) / 10_000.0)
        }
        1 => Some(f64::from(fnv1a32_from(fnv1a32(value), seed) % 1_000) / 1_000.0),
        _ => None,
    }
}

/// `variations` equal weights, as the SDK's `getEqualWeights`: the fallback
/// whenever an experiment's own weights are missing or unusable.
#[must_use]
pub fn equal_weights(variations: usize) -> Vec<f64> {
    if variations == 0 {
        return Vec::new();
    }
    // Each weight is the same `1 / n` division the SDK performs; the usize to
    // f64 conversion is exact for any realistic number of variations.
    #[allow(clippy::cast_precision_loss)]
    let weight = 1.0 / variations as f64;
    vec![weight; variations]
}

/// The `[start, end)` slice of `[0, 1)` owned by each variation, as the SDK's
/// `getBucketRanges`.
///
/// Ranges start at the cumulative weight of the variations before them and
/// cover only `coverage` of their weight, so lowering the coverage drops
/// visitors from the experiment without moving anyone between variations.
/// Like the SDK, unusable input is repaired rather than refused: coverage is
/// clamped to `[0, 1]`, and weights fall back to equal ones when their count
/// differs from `variations` or they do not sum to 1 ± 0.01.
#[must_use]
pub fn bucket_ranges(variations: usize, coverage: f64, weights: Option<&[f64]>) -> Vec<(f64, f64)> {
    // A NaN coverage stays NaN, as in the SDK, and then matches no range.
    let coverage = coverage.clamp(0.0, 1.0);
    let equal = equal_weights(variations);
    let mut weights = weights.unwrap_or(&equal);
    if weights.len() != variations {
        weights = &equal;
    }
    // Summed left to right from 0, as `reduce` does, so that the ±0.01
    // tolerance sees the same float as the SDK.
    let total = weights.iter().fold(0.0, |sum, weight| sum + weight);
    // Not `!(0.99..=1.01).contains(..)`: a NaN total keeps its weights in
    // the SDK, since both comparisons are false.
    #[allow(clippy::manual_range_contains)]
    if total < 0.99 || total > 1.01 {
        weights = &equal;
    }
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|weight| {
            let start = cumulative;
            cumulative += weight;
            (start, start + coverage * weight)
        })
        .collect()
}

/// The index of the first range holding `n` (start inclusive, end
/// exclusive), as the SDK's `chooseVariation`; `None` where the SDK returns
/// -1, i.e. the visitor falls outside the experiment's coverage.
#[must_use]
pub fn choose_variation(n: f64, ranges: &[(f64, f64)]) -> Option<usize> {
    ranges
        .iter()
        .position(|&(start, end)| n >= start && n < end)
}

/// A namespace: experiments sharing an `id` and holding disjoint
/// `[start, end)` slices of it never enrol the same visitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// Shared by the mutually exclusive experiments.
    pub id: String,
    /// Inclusive lower bound in `[0, 1]`.
    pub start: f64,
    /// Exclusive upper bound in `[0, 1]`.
    pub end: f64,
}

/// Whether the visitor identified by `value` falls in this experiment's slice
/// of `namespace`, as the SDK's `inNamespace`.
///
/// The hash is salted with `"__" + id` (and uses version 1, as the SDK does)
/// so that a visitor's namespace slot is independent of their variant in any
/// one experiment.
#[must_use]
pub fn in_namespace(value: &str, namespace: &Namespace) -> bool {
    hash(&format!("__{}", namespace.id), value, 1)
        .is_some_and(|n| n >= namespace.start && n < namespace.end)
}

/// The variation a visitor gets in an experiment, or `None` when they fall
/// outside its coverage.
///
/// `seed` is the flag (or experiment) key and `value` the visitor's hashing
/// key; the hash is version 2, GrowthBook's default for new experiments, and
/// the number of variations is the number of `weights`. This is the SDK's
/// `hash` → `getBucketRanges` → `chooseVariation` chain, so a visitor gets the
/// same variation here as from a GrowthBook SDK given the same settings.
#[must_use]
pub fn assign(seed: &str, value: &str, coverage: f64, weights: &[f64]) -> Option<usize> {
    let n = hash(seed, value, 2)?;
    choose_variation(n, &bucket_ranges(weights.len(), coverage, Some(weights)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_decimal_hashes_as_its_digits_do() {
        for n in [0, 7, 10, 4_294_967_295, 123_456_789] {
            assert_eq!(fnv1a32_of_decimal(n), fnv1a32(&n.to_string()), "{n}");
        }
    }

    #[test]
    fn hashes_utf16_code_units_like_the_browser() {
        // "é" is one UTF-16 unit (0xE9) but two UTF-8 bytes: hashing bytes
        // would give a different value than the SDK.
        let by_units = (0x811c_9dc5_u32 ^ 0xE9).wrapping_mul(0x0100_0193);
        assert_eq!(fnv1a32("é"), by_units);
        // An astral character is two surrogate units.
        let surrogates = [0xD83D_u32, 0xDE00]
            .iter()
            .fold(0x811c_9dc5_u32, |h, u| (h ^ u).wrapping_mul(0x0100_0193));
        assert_eq!(fnv1a32("😀"), surrogates);
    }

    #[test]
    fn an_unknown_hash_version_assigns_nobody() {
        assert_eq!(hash("seed", "visitor", 3), None);
        assert_eq!(hash("seed", "visitor", 0), None);
    }

    #[test]
    fn weights_of_no_variation_give_no_ranges() {
        assert!(bucket_ranges(0, 1.0, Some(&[])).is_empty());
        assert_eq!(assign("flag", "visitor", 1.0, &[]), None);
    }

    #[test]
    fn nan_coverage_enrols_nobody_as_in_the_sdk() {
        assert_eq!(assign("flag", "visitor", f64::NAN, &[0.5, 0.5]), None);
    }

    /// Positive integers normalised to weights summing to 1 (within float
    /// rounding), as an admin form would produce.
    fn weights_summing_to_one() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0_u32..1_000, 1..8).prop_filter_map("some weight", |raw| {
            let total: u32 = raw.iter().sum();
            (total > 0).then(|| {
                raw.iter()
                    .map(|&w| f64::from(w) / f64::from(total))
                    .collect()
            })
        })
    }

    proptest! {
        #[test]
        fn hash_v2_is_always_in_the_unit_interval(seed in ".*", value in ".*") {
            let n = hash(&seed, &value, 2).expect("version 2 is known");
            prop_assert!((0.0..1.0).contains(&n), "{n}");
        }

        #[test]
        fn full_coverage_always_assigns_a_variation(
            seed in ".*",
            value in ".*",
            weights in weights_summing_to_one(),
        ) {
            let variation = assign(&seed, &value, 1.0, &weights);
            prop_assert!(variation.is_some_and(|v| v < weights.len()), "{variation:?}");
        }
    }
}
