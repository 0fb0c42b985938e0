"""Drives bench/audit.sh: the audit trail's verification at scale.

Fills a migrated database with AUDIT_ROWS audit rows through the chain's
own trigger (as the application and the admin API write them), then times,
with the admin binary's own commands against it:
  - the first incremental verification (no checkpoint yet: from the genesis,
    capped at 400,000 links), as the rate every walk runs at, and what a
    whole-chain verification in one go (what stopped fitting in a Lambda's
    30 s) would take at it;
  - the incremental verification after 1,000 more rows;
  - slices of a full re-verification (200,000 links each);
  - the scheduled maintenance (closes refusal windows, incremental, slices
    for 18 s).
Each figure is against the limit it has to meet: Lambda's and API
Gateway's 30 s.
"""

import json
import os
import subprocess
import sys
import time
import uuid

ADMIN_URL = os.environ["BENCH_POSTGRES_URL"]
ROWS = int(os.environ.get("AUDIT_ROWS", "10000000"))
BATCH = 200_000


def url_for(database):
    base, _, query = ADMIN_URL.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def admin(admin_bin, url, *args):
    started = time.perf_counter()
    out = subprocess.run([admin_bin, *args], env={**os.environ, "POSTGRES_URL": url, "RUST_LOG": "warn"},
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if out.returncode not in (0, 1):
        raise RuntimeError(out.stderr)
    return elapsed, json.loads(out.stdout)


def main():
    migrate_bin, admin_bin = sys.argv[1], sys.argv[2]
    database = f"bench_audit_{uuid.uuid4().hex[:8]}"
    psql(ADMIN_URL, f'CREATE DATABASE "{database}"')
    url = url_for(database)
    try:
        subprocess.run([migrate_bin, "up"], check=True, capture_output=True,
                       env={**os.environ, "POSTGRES_URL": url, "RUST_LOG": "warn"})
        started = time.perf_counter()
        written = 0
        while written < ROWS:
            n = min(BATCH, ROWS - written)
            psql(url, f"""INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId", "changes")
                         SELECT 'bench-' || g, 'u' || (g % 50), 'admin@example.com', 'admin', 'update', 'deals', 'deal-' || (g % 1000),
                                jsonb_build_object('after', jsonb_build_object('price', g % 500))
                         FROM generate_series({written + 1}, {written + n}) g""")
            written += n
        fill = time.perf_counter() - started
        print(f"filled {ROWS} rows through the chain trigger in {fill:.0f} s ({ROWS / fill:.0f} rows/s)")

        # The full walk's rate, on a sample (the walk is the same code for all).
        elapsed, first = admin(admin_bin, url, "audit-verify", "--incremental")
        print(f"first incremental (from the genesis, {first['links']} links): {elapsed:.1f} s "
              f"({first['links'] / elapsed:.0f} links/s), complete: {first['complete']}, intact: {first['intact']}")
        whole_estimate = ROWS / (first['links'] / elapsed)
        print(f"a whole-chain verification at that rate: about {whole_estimate:.0f} s for {ROWS} links (limit 30 s)")
        while not first["complete"]:
            elapsed, first = admin(admin_bin, url, "audit-verify", "--incremental")
        psql(url, """INSERT INTO "audit_logs" ("id", "userId", "userEmail", "userRole", "action", "resource", "resourceId")
                     SELECT 'late-' || g, 'u1', 'admin@example.com', 'admin', 'update', 'deals', 'deal-1'
                     FROM generate_series(1, 1000) g""")
        elapsed, after = admin(admin_bin, url, "audit-verify", "--incremental")
        print(f"incremental after 1,000 more rows ({after['links']} links): {elapsed:.2f} s (limit 30 s)")
        elapsed, maintained = admin(admin_bin, url, "audit-maintain")
        slices = maintained["fullPassSlices"]
        links = sum(s["links"] for s in slices)
        print(f"scheduled maintenance: {elapsed:.1f} s (limit 30 s): {len(slices)} slice(s) of the full pass, "
              f"{links} links ({links / max(elapsed, 0.001):.0f} links/s); a full pass of {ROWS} links takes "
              f"about {ROWS / max(links, 1):.0f} hourly runs")
        elapsed, sliced = admin(admin_bin, url, "audit-verify", "--incremental")
        print(f"incremental with nothing new: {elapsed:.2f} s")
    finally:
        psql(ADMIN_URL, f'DROP DATABASE "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
