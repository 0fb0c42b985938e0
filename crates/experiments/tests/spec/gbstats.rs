//! `experiments::stats` against GrowthBook's own stats engine: the same data
//! sets go through our Rust and through the real `gbstats` Python package
//! (`tests/gbstats/oracle.py`), and every number must agree.
//!
//! Nothing expected is checked in: the test installs the pinned gbstats
//! (`tests/gbstats/requirements.txt`) into `tests/gbstats/.venv` on its first
//! run and asks it each time, so a change on either side shows up here. A
//! missing Python fails the test, with how to install it; it never skips.
//!
//! Numbers agree when they differ by at most 1e-6 absolutely, or relatively
//! for magnitudes above 1 (degrees of freedom run into the hundreds of
//! thousands): `|ours - gbstats| <= 1e-6 * max(1, |gbstats|)`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use experiments::stats::{ArmSummary, MetricKind, compare, sample_ratio_mismatch};
use serde_json::{Value, json};

const TOLERANCE: f64 = 1e-6;

const HOW_TO_INSTALL: &str = "\
The gbstats oracle needs CPython 3.11 as `python3`, with its venv module \
(Debian/Ubuntu: `apt-get install python3.11 python3.11-venv`), and access to \
PyPI. The test creates crates/experiments/tests/gbstats/.venv and runs \
`pip install -r requirements.txt` there by itself; if that broke half-way, \
delete the .venv directory and run the test again.";

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gbstats")
}

/// The virtualenv's Python, set up once per test binary.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| set_up_venv().unwrap_or_else(|error| panic!("{error}\n\n{HOW_TO_INSTALL}")))
}

/// Creates the venv and installs the requirements unless a previous run did
/// with the same requirements. Safe against other test processes doing the
/// same at once: they wait on a file lock inside the venv directory.
fn set_up_venv() -> Result<PathBuf, String> {
    let dir = oracle_dir();
    let venv = dir.join(".venv");
    fs::create_dir_all(&venv).map_err(|e| format!("creating {}: {e}", venv.display()))?;
    let lock_path = venv.join(".setup.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;

    let python = venv.join(if cfg!(windows) {
        "Scripts/python.exe"
    } else {
        "bin/python"
    });
    let requirements_path = dir.join("requirements.txt");
    let requirements = fs::read_to_string(&requirements_path)
        .map_err(|e| format!("reading {}: {e}", requirements_path.display()))?;
    // Written last, so an interrupted install is retried on the next run.
    let installed = venv.join(".installed-requirements.txt");
    if python.exists() && fs::read_to_string(&installed).is_ok_and(|r| r == requirements) {
        return Ok(python);
    }

    let started = Instant::now();
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-input", "--requirement"])
        .arg(&requirements_path))?;
    fs::write(&installed, &requirements)
        .map_err(|e| format!("writing {}: {e}", installed.display()))?;
    eprintln!(
        "gbstats oracle: set up {} in {:.1} s",
        venv.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(python)
}

fn run(command: &mut Command) -> Result<Output, String> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| format!("could not run {shown}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{shown} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs the oracle on `cases` and returns its answers.
fn ask_gbstats(cases: &Value) -> Value {
    let script = oracle_dir().join("oracle.py");
    let mut child = Command::new(python())
        .arg(&script)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "could not run {}: {e}\n\n{HOW_TO_INSTALL}",
                script.display()
            )
        });
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(cases.to_string().as_bytes())
        .expect("writing the cases to the oracle");
    let output = child.wait_with_output().expect("waiting for the oracle");
    assert!(
        output.status.success(),
        "the gbstats oracle failed ({}):\n{}\n\n{HOW_TO_INSTALL}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the oracle prints JSON")
}

/// A small deterministic generator (SplitMix64), so that the data sets are
/// the same on every run without a dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// An arm of a mean metric: booking value per participant, 0 for those who
/// did not book, log-normal (right-skewed) in cents for those who did.
fn bookings(seed: u64, units: u64, conversion_rate: f64, median_usd: f64) -> ArmSummary {
    let mut rng = Rng(seed);
    ArmSummary::from_values((0..units).map(|_| {
        if rng.uniform() < conversion_rate {
            let usd = median_usd * (0.9 * rng.normal()).exp();
            (usd * 100.0).round() / 100.0
        } else {
            0.0
        }
    }))
}

fn conversions(units: u64, converted: u64) -> ArmSummary {
    ArmSummary::from_conversions(units, converted)
}

fn comparison_cases() -> Vec<(&'static str, MetricKind, ArmSummary, ArmSummary)> {
    use MetricKind::{Mean, Proportion};
    let small_bookings = ArmSummary::from_values([
        0.0, 0.0, 412.5, 0.0, 0.0, 0.0, 189.0, 0.0, 0.0, 1290.0, 0.0, 0.0, 0.0, 260.4, 0.0,
    ]);
    let small_bookings_treatment = ArmSummary::from_values([
        0.0, 335.0, 0.0, 0.0, 742.8, 0.0, 0.0, 96.0, 0.0, 0.0, 0.0, 518.25, 0.0, 0.0, 0.0, 0.0,
    ]);
    vec![
        (
            "proportion, small arms",
            Proportion,
            conversions(20, 3),
            conversions(18, 6),
        ),
        (
            "proportion, tiny arms",
            Proportion,
            conversions(3, 1),
            conversions(2, 1),
        ),
        (
            "proportion, unbalanced arms",
            Proportion,
            conversions(9000, 270),
            conversions(1000, 41),
        ),
        (
            "proportion, treatment worse",
            Proportion,
            conversions(4000, 212),
            conversions(4100, 171),
        ),
        (
            "proportion, control without conversions",
            Proportion,
            conversions(500, 0),
            conversions(500, 7),
        ),
        (
            "proportion, treatment without conversions",
            Proportion,
            conversions(500, 7),
            conversions(500, 0),
        ),
        (
            "proportion, everyone converted",
            Proportion,
            conversions(50, 20),
            conversions(50, 50),
        ),
        (
            "proportion, no units",
            Proportion,
            conversions(0, 0),
            conversions(0, 0),
        ),
        (
            "proportion, equal arms",
            Proportion,
            conversions(2000, 150),
            conversions(2000, 150),
        ),
        (
            "proportion, large arms",
            Proportion,
            conversions(100_000, 3120),
            conversions(100_000, 3342),
        ),
        (
            "proportion, large arms, large effect",
            Proportion,
            conversions(100_000, 2000),
            conversions(100_000, 2600),
        ),
        (
            "proportion, large and small arm",
            Proportion,
            conversions(100_000, 4870),
            conversions(40, 3),
        ),
        (
            "mean, small arms of bookings",
            Mean,
            small_bookings,
            small_bookings_treatment,
        ),
        (
            "mean, bookings",
            Mean,
            bookings(1, 20_000, 0.031, 240.0),
            bookings(2, 20_000, 0.034, 255.0),
        ),
        (
            "mean, bookings, unbalanced",
            Mean,
            bookings(3, 30_000, 0.03, 240.0),
            bookings(4, 3_000, 0.03, 240.0),
        ),
        (
            "mean, bookings, large arms",
            Mean,
            bookings(5, 100_000, 0.03, 240.0),
            bookings(6, 100_000, 0.032, 240.0),
        ),
        (
            "mean, equal arms",
            Mean,
            bookings(7, 5_000, 0.03, 240.0),
            bookings(7, 5_000, 0.03, 240.0),
        ),
        (
            "mean, control without bookings",
            Mean,
            ArmSummary::from_values([0.0; 30]),
            small_bookings,
        ),
        (
            "mean, arm of one unit",
            Mean,
            ArmSummary::from_values([310.0]),
            small_bookings,
        ),
        (
            "mean, treatment without units",
            Mean,
            small_bookings,
            ArmSummary::default(),
        ),
    ]
}

fn srm_cases() -> Vec<(&'static str, Vec<u64>, Vec<f64>)> {
    vec![
        ("balanced 50/50", vec![5000, 5000], vec![0.5, 0.5]),
        ("near 50/50", vec![10_023, 9_977], vec![0.5, 0.5]),
        ("clearly mismatched 50/50", vec![5400, 4600], vec![0.5, 0.5]),
        (
            "hugely mismatched 50/50",
            vec![60_000, 40_000],
            vec![0.5, 0.5],
        ),
        (
            "three arms, custom weights",
            vec![2510, 2480, 5010],
            vec![0.25, 0.25, 0.5],
        ),
        (
            "three arms, custom weights, mismatched",
            vec![2710, 2380, 4910],
            vec![0.25, 0.25, 0.5],
        ),
        ("weights as ratios", vec![1010, 2990], vec![1.0, 3.0]),
        ("few units", vec![3, 7], vec![0.5, 0.5]),
        ("no units", vec![0, 0], vec![0.5, 0.5]),
        (
            "units in an arm of weight 0",
            vec![100, 4900, 5000],
            vec![0.0, 0.5, 0.5],
        ),
    ]
}

/// The oracle's answers for all the cases, asked once per test binary.
fn gbstats_answers() -> &'static Value {
    static ANSWERS: OnceLock<Value> = OnceLock::new();
    ANSWERS.get_or_init(|| {
        let comparisons: Vec<Value> = comparison_cases()
            .into_iter()
            .map(|(name, kind, control, treatment)| {
                json!({"name": name, "kind": kind, "control": control, "treatment": treatment})
            })
            .collect();
        let srm: Vec<Value> = srm_cases()
            .into_iter()
            .map(|(name, observed, weights)| {
                json!({"name": name, "observed": observed, "weights": weights})
            })
            .collect();
        let answers = ask_gbstats(&json!({"comparisons": comparisons, "srm": srm}));
        eprintln!("gbstats oracle: {}", answers["versions"]);
        answers
    })
}

/// Compares numbers within the tolerance and remembers the largest
/// difference, to show how close the agreement is.
#[derive(Default)]
struct Agreement {
    failures: Vec<String>,
    /// Per field: the largest absolute difference, and in which case.
    largest: BTreeMap<&'static str, (f64, &'static str)>,
}

impl Agreement {
    fn check(&mut self, case: &'static str, field: &'static str, ours: f64, theirs: &Value) {
        let Some(theirs) = theirs.as_f64() else {
            self.failures.push(format!(
                "{case}: gbstats gave no number for {field}: {theirs}"
            ));
            return;
        };
        let difference = (ours - theirs).abs();
        let largest = self.largest.entry(field).or_insert((0.0, case));
        if difference > largest.0 || difference.is_nan() {
            *largest = (difference, case);
        }
        if difference.is_nan() || difference > TOLERANCE * theirs.abs().max(1.0) {
            self.failures.push(format!(
                "{case}: {field} is {ours:e}, gbstats says {theirs:e} (difference {difference:e})"
            ));
        }
    }

    fn assert_agrees(self, what: &str) {
        for (field, (difference, case)) in &self.largest {
            eprintln!("{what}: {field} differs from gbstats by at most {difference:e} ({case})");
        }
        assert!(
            self.failures.is_empty(),
            "{what} differ from gbstats:\n{}",
            self.failures.join("\n")
        );
    }
}

#[test]
fn comparisons_agree_with_gbstats() {
    let answers = gbstats_answers()["comparisons"]
        .as_array()
        .expect("comparisons");
    let cases = comparison_cases();
    assert_eq!(answers.len(), cases.len());
    let mut agreement = Agreement::default();
    for ((name, kind, control, treatment), theirs) in cases.iter().zip(answers) {
        assert_eq!(theirs["name"], *name);
        let ours = compare(control, treatment, *kind);
        let ours_json = serde_json::to_value(ours).expect("serializable");
        assert_eq!(
            ours_json["errorMessage"], theirs["errorMessage"],
            "{name}: {ours:?} vs {theirs}"
        );
        for (field, value) in [
            ("lift", ours.lift),
            ("ciLower", ours.ci_lower),
            ("ciUpper", ours.ci_upper),
            ("pValue", ours.p_value),
            ("standardError", ours.standard_error),
        ] {
            agreement.check(name, field, value, &theirs[field]);
        }
        // gbstats has degrees of freedom only for the arms it estimates.
        if !theirs["degreesOfFreedom"].is_null() {
            agreement.check(
                name,
                "degreesOfFreedom",
                ours.degrees_of_freedom,
                &theirs["degreesOfFreedom"],
            );
        }
    }
    agreement.assert_agrees("comparisons");
}

#[test]
fn sample_ratio_mismatch_agrees_with_gbstats() {
    let answers = gbstats_answers()["srm"].as_array().expect("srm");
    let cases = srm_cases();
    assert_eq!(answers.len(), cases.len());
    let mut agreement = Agreement::default();
    for ((name, observed, weights), theirs) in cases.iter().zip(answers) {
        assert_eq!(theirs["name"], *name);
        let ours =
            sample_ratio_mismatch(observed, weights).unwrap_or_else(|e| panic!("{name}: {e}"));
        agreement.check(name, "pValue", ours, &theirs["pValue"]);
    }
    agreement.assert_agrees("sample-ratio p-values");
}

#[test]
fn the_data_sets_cover_what_they_claim() {
    use experiments::stats::{SRM_THRESHOLD, Uninformative};
    // Guards against a data set drifting into a case it was not meant to be
    // (the oracle would agree with us either way).
    let by_name = |wanted: &str| {
        let (_, kind, control, treatment) = comparison_cases()
            .into_iter()
            .find(|(name, ..)| *name == wanted)
            .expect("a case of that name");
        compare(&control, &treatment, kind)
    };
    assert_eq!(
        by_name("proportion, control without conversions").error_message,
        Some(Uninformative::BaselineZero)
    );
    assert_eq!(
        by_name("proportion, treatment without conversions").error_message,
        Some(Uninformative::ZeroVariance)
    );
    assert!(by_name("proportion, large arms, large effect").p_value < 1e-9);
    assert!(
        by_name("mean, bookings, large arms")
            .error_message
            .is_none()
    );
    let large = bookings(5, 100_000, 0.03, 240.0);
    assert_eq!(large.units, 100_000);
    let mean_booking = large.sum / (large.units as f64 * 0.03);
    assert!((200.0..500.0).contains(&mean_booking), "{mean_booking}");

    let p = |wanted: &str| {
        let (_, observed, weights) = srm_cases()
            .into_iter()
            .find(|(name, ..)| *name == wanted)
            .expect("a case of that name");
        sample_ratio_mismatch(&observed, &weights).expect("a valid split")
    };
    assert!(p("balanced 50/50") > SRM_THRESHOLD);
    assert!(p("three arms, custom weights") > SRM_THRESHOLD);
    assert!(p("clearly mismatched 50/50") < SRM_THRESHOLD);
}
