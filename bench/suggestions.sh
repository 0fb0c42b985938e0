#!/usr/bin/env bash
# Benchmark of the search suggestions at 100,000 generated rows, each figure
# beside a baseline measured in the same run on the same rows:
#   - warm: p50/p99 of one suggestion request through the cms router
#     (middleware, handler, fst index, JSON, ETag), timed in the server's
#     process, for a mix of typed prefixes (a third with a typo) and IATA
#     codes; against PostgreSQL `"name" ILIKE 'prefix%' ORDER BY popularity
#     LIMIT 8` over loopback and a linear scan of the same rows in memory
#     (both without typo tolerance);
#   - cold: a new `cms::App` (a new container) and its first suggestion
#     request, which connects, reads every row, builds the index and answers.
# Targets, printed with PASS or MISS: warm p99 <= 5 ms, cold <= 300 ms.
# Uses $BENCH_POSTGRES_URL (an admin URL) or a throwaway local cluster with
# PostgreSQL's default durability, removed on exit. Reads BENCH_QUERIES
# (20000 requests in the warm mix) and BENCH_COLD_RUNS (5).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"
command -v python3 >/dev/null 2>&1 || { echo "python3 not found: install it" >&2; exit 1; }

cargo build --quiet --release -p cms --example suggestions_bench --manifest-path "$root/Cargo.toml"

bench_server
target="${CARGO_TARGET_DIR:-$root/target}"
# The example makes (and drops) a migrated database of its own through the
# test harness, which reads the server from TEST_POSTGRES_URL.
TEST_POSTGRES_URL="$BENCH_POSTGRES_URL" RUST_LOG=warn \
  "$target/release/examples/suggestions_bench" > "${TMPDIR:-/tmp}/suggestions_bench.json"
python3 "$root/bench/suggestions.py" "${TMPDIR:-/tmp}/suggestions_bench.json"
