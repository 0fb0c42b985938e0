#!/usr/bin/env bash
# Benchmark of the hourly rollup: 1,000,000 events (and their Web Vitals,
# error groups and funnel steps, as the sample generator makes them) in
# one hour, loaded by COPY into a fresh database; then, round by round in
# alternating order, `admin rollup --granularity hour` over that hour (the
# release binary, as a process: connect, tally errors, aggregate, upsert)
# against a hand-written SQL file computing the same aggregates run by
# `psql -f`. Target: the job within 2x of psql.
# Uses $BENCH_POSTGRES_URL (an admin URL) or a throwaway local cluster,
# removed on exit. BENCH_ROUNDS (5), BENCH_SESSIONS (270000, about a
# million events).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"

command -v psql >/dev/null 2>&1 || { echo "psql not found: install postgresql-client" >&2; exit 1; }

cargo build --quiet --release --locked -p migrate -p admin --manifest-path "$root/Cargo.toml"

bench_server
export BENCH_POSTGRES_URL
python3 "$root/bench/rollup.py" "$root/target/release/migrate" "$root/target/release/admin"
