#!/usr/bin/env bash
# Cold starts: each function's real bootstrap (release build, this
# machine's architecture) started cold against a Lambda Runtime API
# emulator, side by side with the smallest lambda_http function built the
# same way (tools/floor); init and first answer (the database connection
# included), as ratios to the floor's. With --arm64, also the size of every
# function's arm64 bootstrap built as `sam build` builds it, one package at
# a time (cargo lambda and zig are installed from PyPI when missing); the
# target is 8 MB at most.
# Uses $BENCH_POSTGRES_URL (an admin URL) or a throwaway local cluster.
#   COLDSTART_ROUNDS   starts of each binary (default 15)
#   COLDSTART_EXTRA    label=path,...: other builds measured in the same
#                      rounds, sent the event of the function the label
#                      starts with (health-before=<old tree>/health)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"
command -v psql >/dev/null 2>&1 || { echo "psql not found: install postgresql-client" >&2; exit 1; }

cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" \
  -p floor -p health -p events -p admin -p cms -p migrate
bench_server
database="bench_coldstart_$$"
psql -X -q -d "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $database"
url="${BENCH_POSTGRES_URL%/*}/$database?sslmode=disable"
trap 'psql -X -q -d "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true' RETURN
POSTGRES_URL="$url" RUST_LOG=warn "$root/target/release/migrate" up >/dev/null
python3 "$root/bench/coldstart.py" "$root/target/release" "$url"
psql -X -q -d "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null

if [ "${1:-}" = "--arm64" ]; then
  command -v cargo-lambda >/dev/null 2>&1 || pip install --quiet cargo-lambda
  python3 -c 'import ziglang' 2>/dev/null || pip install --quiet ziglang
  echo "arm64 bootstraps, each built on its own as sam build does (target <= 8 MB):"
  for fn in health events admin cms migrate; do
    # One package per build: built together, cargo unifies their
    # dependencies' features, and each binary carries the others'.
    (cd "$root" && cargo lambda build --release --arm64 --locked -p "$fn" >/dev/null 2>&1)
    bytes=$(stat -c %s "$root/target/lambda/$fn/bootstrap")
    awk -v f="$fn" -v b="$bytes" 'BEGIN { printf "  %-8s %5.1f MB  %s\n", f, b / 1e6, (b <= 8e6 ? "PASS" : "MISS") }'
  done
fi
