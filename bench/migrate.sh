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

if [ -z "${BENCH_POSTGRES_URL:-}" ]; then
  ensure_postgres_binaries
  work=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cleanup() {
    as_server_user "$(pg_bin_dir)/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  start_cluster "$work" "$port"
  BENCH_POSTGRES_URL="postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable"
fi

export BENCH_POSTGRES_URL
python3 "$root/bench/migrate.py" "$migrate_bin" "$root/migrations"
