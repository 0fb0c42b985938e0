#!/usr/bin/env bash
# Benchmark: `migrate up` against `psql -1 -f` on the same SQL, and a rerun
# on a migrated database. Uses $BENCH_POSTGRES_URL (an admin URL) when given,
# else a throwaway local cluster with PostgreSQL's default durability
# settings, removed on exit. Rounds: $BENCH_ROUNDS (default 15).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"

cargo build --quiet --release -p migrate --manifest-path "$root/Cargo.toml"
migrate_bin="$root/target/release/migrate"

bench_server

# The server's own psql: Debian's /usr/bin/psql is a Perl wrapper whose
# ~20 ms start-up would flatter migrate.
BENCH_PSQL="$(pg_bin_dir 2>/dev/null)/psql"
[ -x "$BENCH_PSQL" ] || BENCH_PSQL=psql
export BENCH_POSTGRES_URL BENCH_PSQL
python3 "$root/bench/migrate.py" "$migrate_bin" "$root/migrations"
