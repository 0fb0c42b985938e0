#!/usr/bin/env bash
# The audit trail's verification at scale (AUDIT_ROWS, default 10 million
# rows written through the chain's trigger): incremental verification from
# checkpoints, full re-verification in slices, and the hourly maintenance,
# each against Lambda's and API Gateway's 30 s. Uses $BENCH_POSTGRES_URL (an
# admin URL) or a throwaway local cluster with PostgreSQL's default
# durability, removed on exit. Filling 10 million rows takes a while.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"
command -v psql >/dev/null 2>&1 || { echo "psql not found: install postgresql-client" >&2; exit 1; }
cargo build --quiet --release --locked -p migrate -p admin --manifest-path "$root/Cargo.toml"
bench_server
export BENCH_POSTGRES_URL
python3 "$root/bench/audit.py" "$root/target/release/migrate" "$root/target/release/admin"
