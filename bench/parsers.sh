#!/usr/bin/env bash
# Every parser of untrusted input against generated hostile inputs, a
# million per parser by default (PARSER_CASES): the intake's beacon reader,
# the Web Vitals and browser-error readers, the Sentry envelope and store
# readers, the fingerprinter
# (functions/events/tests/parsers.rs), and the session reader's cookie,
# bearer and JWE handling (crates/access/tests/hostile_tokens.rs). Zero
# panics and zero 5xx is the bar; the suite runs the same tests with 1,000
# inputs each. Release build, so that a million take minutes, not hours.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cases="${PARSER_CASES:-1000000}"
cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" \
  -p events --test parsers -p access --test hostile_tokens
echo "inputs per parser: $cases"
started=$(date +%s)
PROPTEST_CASES="$cases" cargo test --quiet --release --locked --manifest-path "$root/Cargo.toml" \
  -p events --test parsers -p access --test hostile_tokens -- --test-threads 1 2>&1 \
  | grep -E "^test |test result|panicked|FAILED"
echo "took $(( $(date +%s) - started )) s"
