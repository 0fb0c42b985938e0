//! The suggestion search at 100,000 rows, for `bench/suggestions.sh`.
//!
//! In a fresh migrated database (on `TEST_POSTGRES_URL`, through the test
//! harness, dropped at the end) it stores generated airports, cities and
//! countries, then measures, each through the function's production
//! router built by `cms::App::build` (middleware, handler, index, JSON,
//! ETag), timed around the router call on this process's runtime:
//! - **cold**: a new App (a new container: new pool, empty index) and its
//!   first suggestion request, which connects, reads every row, builds the
//!   index and answers; `BENCH_COLD_RUNS` times;
//! - **warm**: a mix of what visitors type (prefixes of names of every
//!   length, a third of them with a typo where the word allows one, some
//!   IATA codes), `BENCH_QUERIES` requests;
//! - **baselines**, the same lookups side by side in the same run:
//!   PostgreSQL `"name" ILIKE 'prefix%' ORDER BY "popularity" DESC LIMIT
//!   8` over loopback (prepared; no typo tolerance), and a linear scan over
//!   the same in-memory suggestions (every folded word tested for the
//!   prefix; no typo tolerance), without `fst`.
//!
//! Prints one JSON object; `bench/suggestions.sh` shows it.

// Generated data and statistics: small numbers in every cast.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::time::{Duration, Instant};

use axum::{body::Body, http::Request};
use platform::lambda::Function;
use serde_json::json;

const ROWS: usize = 100_000;

/// A small deterministic generator (SplitMix64): the same data every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SYLLABLES: &[&str] = &[
    "ba", "be", "bo", "ca", "co", "da", "de", "do", "el", "fa", "ga", "gi", "ha", "ja", "ka", "ke",
    "la", "le", "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "no", "or", "pa", "pe", "po", "ra",
    "re", "ri", "ro", "sa", "se", "si", "so", "ta", "te", "to", "va", "ve", "vi", "za", "zu",
    "bur", "ton", "ville", "sta", "port", "berg", "ham", "dor", "lin", "mar", "sur", "gua", "são",
    "ñe", "ür", "qui", "xa",
];
const AIRPORT_WORDS: &[&str] = &[
    "International Airport",
    "Airport",
    "Regional Airport",
    "Municipal Airport",
    "Airfield",
];

fn word(random: &mut Random) -> String {
    let syllables = 2 + random.below(3);
    let mut word = String::new();
    for _ in 0..syllables {
        word.push_str(SYLLABLES[random.below(SYLLABLES.len())]);
    }
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => word,
    }
}

struct Row {
    query: String,
    kind: &'static str,
    code: Option<String>,
    name: String,
    country: Option<String>,
    popularity: i32,
    metadata: Option<serde_json::Value>,
}

fn generate() -> Vec<Row> {
    let mut random = Random(2026);
    let countries: Vec<String> = (0..200).map(|_| word(&mut random)).collect();
    let mut rows = Vec::with_capacity(ROWS);
    let mut seen = std::collections::HashSet::new();
    for (i, country) in countries.iter().enumerate() {
        if seen.insert(country.clone()) {
            rows.push(Row {
                query: country.clone(),
                kind: "country",
                code: Some(format!(
                    "{}{}",
                    char::from(b'A' + (i / 26) as u8 % 26),
                    char::from(b'A' + (i % 26) as u8)
                )),
                name: country.clone(),
                country: None,
                popularity: random.below(100) as i32,
                metadata: None,
            });
        }
    }
    let mut code_number = 0usize;
    while rows.len() < ROWS {
        let city = if random.below(4) == 0 {
            format!("{} {}", word(&mut random), word(&mut random))
        } else {
            word(&mut random)
        };
        let country = countries[random.below(countries.len())].clone();
        let query = format!("{city}, {country}");
        if !seen.insert(query.clone()) {
            continue;
        }
        let popularity = (random.below(1000) * random.below(1000) / 1000) as i32;
        rows.push(Row {
            query,
            kind: "city",
            code: None,
            name: city.clone(),
            country: Some(country.clone()),
            popularity,
            metadata: None,
        });
        // One airport for every sixth city, while three-letter codes last.
        if random.below(6) == 0 && code_number < 26 * 26 * 26 && rows.len() < ROWS {
            let n = code_number;
            code_number += 1;
            let code: String = [n / 676, (n / 26) % 26, n % 26]
                .iter()
                .map(|&d| char::from(b'A' + d as u8))
                .collect();
            rows.push(Row {
                query: code.clone(),
                kind: "airport",
                name: format!(
                    "{city} {}",
                    AIRPORT_WORDS[random.below(AIRPORT_WORDS.len())]
                ),
                code: Some(code),
                country: Some(country),
                popularity: popularity / 2,
                metadata: Some(json!({"city": city})),
            });
        }
    }
    rows
}

async fn store(client: &tokio_postgres::Client, rows: &[Row]) -> anyhow::Result<()> {
    for chunk in rows.chunks(10_000) {
        let ids: Vec<String> = chunk.iter().map(|_| platform::ids::new_id()).collect();
        let queries: Vec<&str> = chunk.iter().map(|r| r.query.as_str()).collect();
        let kinds: Vec<&str> = chunk.iter().map(|r| r.kind).collect();
        let codes: Vec<Option<&str>> = chunk.iter().map(|r| r.code.as_deref()).collect();
        let names: Vec<&str> = chunk.iter().map(|r| r.name.as_str()).collect();
        let countries: Vec<Option<&str>> = chunk.iter().map(|r| r.country.as_deref()).collect();
        let popularity: Vec<i32> = chunk.iter().map(|r| r.popularity).collect();
        let metadata: Vec<Option<&serde_json::Value>> =
            chunk.iter().map(|r| r.metadata.as_ref()).collect();
        client
            .execute(
                r#"INSERT INTO "search_suggestions" ("id", "query", "type", "code", "name", "country",
                       "popularity", "metadata", "updatedAt")
                   SELECT *, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                       $5::text[], $6::text[], $7::int[], $8::jsonb[])"#,
                &[
                    &ids, &queries, &kinds, &codes, &names, &countries, &popularity, &metadata,
                ],
            )
            .await?;
    }
    client
        .batch_execute(r#"ANALYZE "search_suggestions""#)
        .await?;
    Ok(())
}

/// What a visitor types on the way to `name`: a prefix of random length,
/// with a typo in a third of the cases where the last word is long enough.
fn typed(name: &str, random: &mut Random) -> (String, bool) {
    let folded: Vec<char> = name.to_lowercase().chars().collect();
    let length = 1 + random.below(folded.len().min(14));
    let mut prefix: Vec<char> = folded[..length].to_vec();
    let last_word_len = prefix
        .iter()
        .rev()
        .take_while(|c| c.is_alphanumeric())
        .count();
    let with_typo = last_word_len >= 5 && random.below(3) == 0;
    if with_typo {
        let at = prefix.len() - 1 - random.below(last_word_len - 1);
        if random.below(2) == 0 {
            prefix[at] = char::from(b'a' + random.below(26) as u8);
        } else {
            prefix.swap(at, at - 1);
        }
    }
    (prefix.into_iter().collect(), with_typo)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank].as_secs_f64() * 1000.0
}

fn summary(mut times: Vec<Duration>) -> serde_json::Value {
    times.sort();
    json!({
        "n": times.len(),
        "p50Ms": percentile(&times, 50.0),
        "p99Ms": percentile(&times, 99.0),
        "maxMs": percentile(&times, 100.0),
    })
}

fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

async fn ask(app: &cms::App, q: &str) -> anyhow::Result<(Duration, usize)> {
    let request = Request::get(format!("/api/search/suggestions?q={}", urlencode(q)))
        .header("user-agent", "bench")
        .body(Body::empty())?;
    let started = Instant::now();
    let (status, _, body) = testkit::send(app.router(), request).await;
    let took = started.elapsed();
    anyhow::ensure!(status.is_success(), "{q:?}: {status}");
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    Ok((took, answer["suggestions"].as_array().map_or(0, Vec::len)))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let queries: usize = std::env::var("BENCH_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let cold_runs: usize = std::env::var("BENCH_COLD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let database = testkit::TestDatabase::migrated().await;
    let client = database.connect().await;
    let rows = generate();
    let started = Instant::now();
    store(&client, &rows).await?;
    eprintln!(
        "stored {} suggestions in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    let secret = testkit::session::fixture_secret();
    let env = database.env(&[("NEXTAUTH_SECRET", secret.as_str())]);

    // Cold containers.
    let mut cold = Vec::new();
    let mut loads = Vec::new();
    for _ in 0..cold_runs {
        let started = Instant::now();
        let app = cms::App::build(&env)?;
        let (_, found) = ask(&app, "lisb").await?;
        cold.push(started.elapsed());
        let loaded = app.state.suggestions.index().await?;
        loads.push((loaded.load_time, loaded.read_time));
        anyhow::ensure!(loaded.index.len() == rows.len(), "index holds every row");
        let _ = found;
    }

    // The warm mix.
    let app = cms::App::build(&env)?;
    ask(&app, "warm up").await?;
    let mut random = Random(7);
    let mix: Vec<(String, bool)> = (0..queries)
        .map(|i| {
            let row = &rows[random.below(rows.len())];
            if i % 10 == 0
                && let Some(code) = row.code.as_ref().filter(|c| c.len() == 3)
            {
                return (code.to_lowercase(), false);
            }
            typed(&row.name, &mut random)
        })
        .collect();
    let mut warm = Vec::with_capacity(mix.len());
    let mut warm_typos = Vec::new();
    let mut found_any = 0usize;
    for (q, with_typo) in &mix {
        let (took, found) = ask(&app, q).await?;
        warm.push(took);
        if *with_typo {
            warm_typos.push(took);
        }
        found_any += usize::from(found > 0);
    }
    let loaded = app.state.suggestions.index().await?;
    let mut index_only = Vec::with_capacity(mix.len());
    for (q, _) in &mix {
        let started = Instant::now();
        let found = loaded.index.search(q, None, 8);
        index_only.push(started.elapsed());
        std::hint::black_box(found);
    }

    // Baselines, on a sample of the same mix (they are slow).
    let sample: Vec<&String> = mix
        .iter()
        .map(|(q, _)| q)
        .step_by((queries / 1000).max(1))
        .collect();
    let statement = client
        .prepare(
            r#"SELECT "id", "query", "type", "code", "name", "country", "popularity", "metadata"
               FROM "search_suggestions" WHERE "name" ILIKE $1
               ORDER BY "popularity" DESC LIMIT 8"#,
        )
        .await?;
    let mut ilike = Vec::new();
    for q in &sample {
        let pattern = format!("{}%", platform::paging::like_pattern(q).trim_matches('%'));
        let started = Instant::now();
        let found = client.query(&statement, &[&pattern]).await?;
        ilike.push(started.elapsed());
        std::hint::black_box(found);
    }
    let folded: Vec<Vec<String>> = loaded
        .index
        .all()
        .map(|s| cms::suggest::index::fold_words(s.name))
        .collect();
    let popularity: Vec<i32> = loaded.index.all().map(|s| s.popularity).collect();
    let mut scan = Vec::new();
    for q in &sample {
        let words = cms::suggest::index::fold_words(q);
        let started = Instant::now();
        let mut hits: Vec<(i32, usize)> = Vec::new();
        if let Some((last, whole)) = words.split_last() {
            for (i, doc_words) in folded.iter().enumerate() {
                let matches = whole.iter().all(|w| doc_words.contains(w))
                    && doc_words.iter().any(|w| w.starts_with(last.as_str()));
                if matches {
                    hits.push((-popularity[i], i));
                }
            }
        }
        hits.sort_unstable();
        hits.truncate(8);
        scan.push(started.elapsed());
        std::hint::black_box(hits);
    }

    let warm_summary = summary(warm);
    let ilike_summary = summary(ilike);
    let scan_summary = summary(scan);
    let ratio = |a: &serde_json::Value, b: &serde_json::Value, key: &str| {
        let (a, b) = (
            a[key].as_f64().unwrap_or(0.0),
            b[key].as_f64().unwrap_or(0.0),
        );
        if a > 0.0 { b / a } else { 0.0 }
    };
    let report = json!({
        "rows": rows.len(),
        "words": loaded.index.words(),
        "cold": {
            "runs": summary(cold.clone()),
            "eachMs": cold.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
            "loadAndBuildMs": loads.iter().map(|d| d.0.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
            "readMs": loads.iter().map(|d| d.1.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
        },
        "warm": {
            "all": warm_summary,
            "withTypo": summary(warm_typos),
            "indexOnly": summary(index_only),
            "answeredSomething": found_any as f64 / mix.len() as f64,
        },
        "baselines": {
            "postgresIlike": ilike_summary,
            "linearScan": scan_summary,
        },
        "speedup": {
            "vsIlikeP50": ratio(&warm_summary, &ilike_summary, "p50Ms"),
            "vsIlikeP99": ratio(&warm_summary, &ilike_summary, "p99Ms"),
            "vsScanP50": ratio(&warm_summary, &scan_summary, "p50Ms"),
            "vsScanP99": ratio(&warm_summary, &scan_summary, "p99Ms"),
        },
    });
    println!("{}", serde_json::to_string(&report)?);
    drop(client);
    drop(app);
    drop(database);
    Ok(())
}
