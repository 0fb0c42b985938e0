#!/usr/bin/env bash
# The fault tests at length: the intake and the admin mutations under load
# while PostgreSQL is stopped (fast and immediate shutdowns) and started
# again, RESTART_ROUNDS times through each test's schedule of outages
# (default 5: 30 restarts of the intake's server, 20 of the admin's; the
# suite goes through each schedule once), and the first request to a
# server that starts accepting connections only after a delay, as a
# suspended Neon compute does. Each test starts a PostgreSQL cluster of its
# own with default durability. Prints each test's figures line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/lib/postgres.sh"
ensure_postgres_binaries
export RESTART_ROUNDS="${RESTART_ROUNDS:-5}"
echo "restart rounds: $RESTART_ROUNDS"
run() {
  local started=$SECONDS
  cargo test --quiet --locked --manifest-path "$root/Cargo.toml" "$@" -- --exact --nocapture 2>&1 \
    | grep -E "restarts:|first answer|test result|panicked|FAILED"
  echo "  ($((SECONDS - started)) s)"
}
run -p events --test api restarts::acknowledged_events_survive_fast_and_immediate_restarts_under_load
run -p admin --test admin restarts::every_acknowledged_change_is_stored_with_exactly_one_audit_row_across_restarts
run -p platform --test db the_first_checkout_after_the_server_wakes_succeeds_within_the_connect_timeout
