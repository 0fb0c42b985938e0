#!/usr/bin/env bash
# Mutation testing of crates/access (session.rs, rbac.rs, guard.rs, audit.rs)
# with cargo-mutants: every mutant of the `access` package is built and
# tested against the tests of the `access` and `admin` packages (admin's
# tests run the real routes against a real PostgreSQL, started by the test
# harness crates/testkit).
#
# Afterwards it prints, per file, how many mutants were caught, missed,
# unviable (did not build) and timed out, and
#
#     % caught = caught / (caught + missed)
#
# Unviable mutants are not counted (nothing to test), nor are timeouts
# (listed apart: a mutant that hangs is noticed, but is not a test
# verdict).
#
#   bench/mutants.sh                                         # the whole crate
#   bench/mutants.sh --file crates/access/src/session.rs     # one file
#   bench/mutants.sh -F 'cookie_value'                       # mutants by name
#
# Extra arguments go to `cargo mutants` as they are. Environment:
#   MUTANTS_OUT       where mutants.out/ is written (default
#                     ${TMPDIR:-/tmp}/access-mutants; the previous run is
#                     kept as mutants.out.old)
#   MUTANTS_TARGET    the cargo target directory of the scratch copy, kept
#                     between runs so dependencies are built once (default
#                     $MUTANTS_OUT/target; about 3 GB)
#   MUTANTS_TIMEOUT   seconds a mutant's tests may run (default 180; the
#                     unmutated suite takes about 30 s)
# Exits 0 when the run completed, missed mutants or not (the table is the
# result); 4 when the access and admin tests fail unmutated; any other
# failure of cargo-mutants is passed on.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source "$root/scripts/lib/postgres.sh"

if ! cargo mutants --version >/dev/null 2>&1; then
  echo "installing cargo-mutants (cargo install --locked)"
  cargo install --locked cargo-mutants
fi
ensure_postgres_binaries

out="${MUTANTS_OUT:-${TMPDIR:-/tmp}/access-mutants}"
mkdir -p "$out"
export CARGO_TARGET_DIR="${MUTANTS_TARGET:-$out/target}"

# The tree is copied as it is, uncommitted changes included.
echo "tree: $(git rev-parse --short HEAD 2>/dev/null || echo '?') plus the checkout's uncommitted changes"
start=$(date +%s)
# cargo-mutants' own baseline runs only the mutated package's tests
# (access), not every --test-package: were admin's tests failing unmutated,
# every mutant would count as caught. So the whole suite runs first, with
# the same target directory.
echo "unmutated suite: cargo test -p access -p admin"
cargo test --quiet -p access -p admin >"$out/unmutated-tests.log" 2>&1 || {
  tail -n 40 "$out/unmutated-tests.log" >&2
  echo "the tests fail without any mutation (log: $out/unmutated-tests.log)" >&2
  exit 4
}
status=0
cargo mutants \
  --package access \
  --test-package access --test-package admin \
  --jobs 1 \
  --timeout "${MUTANTS_TIMEOUT:-180}" \
  --output "$out" \
  "$@" || status=$?
elapsed=$(( $(date +%s) - start ))

results="$out/mutants.out"
echo
echo "cargo-mutants exit $status after $((elapsed / 60)) min $((elapsed % 60)) s; details in $results"
if [ -f "$results/outcomes.json" ]; then
  # Each *.txt line is `path:line:col: replace ... with ...`.
  for kind in caught missed unviable timeout; do
    if [ -f "$results/$kind.txt" ]; then
      sed "s|^\([^:]*\):.*|$kind \1|" "$results/$kind.txt"
    fi
  done | awk '
    { n[$2, $1]++; files[$2] = 1 }
    END {
      printf "%-32s %7s %7s %9s %8s %9s\n", "file", "caught", "missed", "unviable", "timeout", "% caught"
      for (f in files) {
        c = n[f, "caught"] + 0; m = n[f, "missed"] + 0
        u = n[f, "unviable"] + 0; t = n[f, "timeout"] + 0
        pct = (c + m) ? sprintf("%.1f", 100 * c / (c + m)) : "-"
        printf "%-32s %7d %7d %9d %8d %9s\n", f, c, m, u, t, pct
        tc += c; tm += m; tu += u; tt += t
      }
      pct = (tc + tm) ? sprintf("%.1f", 100 * tc / (tc + tm)) : "-"
      printf "%-32s %7d %7d %9d %8d %9s\n", "total", tc, tm, tu, tt, pct
    }' | { read -r header; echo "$header"; sort; }
  if [ -s "$results/missed.txt" ]; then
    echo
    echo "missed:"
    sed 's/^/  /' "$results/missed.txt"
  fi
  if [ -s "$results/timeout.txt" ]; then
    echo
    echo "timed out:"
    sed 's/^/  /' "$results/timeout.txt"
  fi
fi

case "$status" in
  0 | 2 | 3) exit 0 ;;
  *) exit "$status" ;;
esac
