"""Times `migrate up` against `psql -1 -f` on the same SQL, side by side.

Each round creates two empty databases (untimed), then times, in alternating
order so drift hits both equally:
  baseline: psql -X -q -v ON_ERROR_STOP=1 -1 -f <all migration.sql files>
  migrate:  migrate up
as whole processes (start, connect, SQL, exit). Then `migrate up` is timed on
an already migrated database: the cost every deploy pays when nothing is new.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
ADMIN_URL = os.environ["BENCH_POSTGRES_URL"]
PSQL = os.environ.get("BENCH_PSQL", "psql")


def url_for(database):
    base, _, query = ADMIN_URL.partition("?")
    root = base.rsplit("/", 1)[0]
    return f"{root}/{database}" + (f"?{query}" if query else "")


def psql(url, *args):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *args],
                   check=True, stdout=subprocess.DEVNULL)


def timed(command, env=None):
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def summary(samples):
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return statistics.median(ordered), p90


def main():
    migrate_bin, migrations_dir = sys.argv[1], Path(sys.argv[2])
    files = sorted(migrations_dir.glob("*/migration.sql"))
    combined = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    combined.write("\n".join(f.read_text() for f in files))
    combined.close()

    def migrate_env(database):
        return {**os.environ, "POSTGRES_URL": url_for(database), "RUST_LOG": "warn"}

    baseline, migrate = [], []
    for round_number in range(ROUNDS):
        a, b = f"bench_{uuid.uuid4().hex[:12]}", f"bench_{uuid.uuid4().hex[:12]}"
        psql(ADMIN_URL, "-c", f'CREATE DATABASE "{a}"')
        psql(ADMIN_URL, "-c", f'CREATE DATABASE "{b}"')
        run_baseline = lambda: baseline.append(timed(  # noqa: E731
            [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", combined.name, "-d", url_for(a)]))
        run_migrate = lambda: migrate.append(timed([migrate_bin, "up"], env=migrate_env(b)))  # noqa: E731
        for step in ((run_baseline, run_migrate) if round_number % 2 == 0 else (run_migrate, run_baseline)):
            step()
        psql(ADMIN_URL, "-c", f'DROP DATABASE "{a}"')
        psql(ADMIN_URL, "-c", f'DROP DATABASE "{b}"')

    migrated = f"bench_{uuid.uuid4().hex[:12]}"
    psql(ADMIN_URL, "-c", f'CREATE DATABASE "{migrated}"')
    timed([migrate_bin, "up"], env=migrate_env(migrated))
    rerun = [timed([migrate_bin, "up"], env=migrate_env(migrated)) for _ in range(ROUNDS)]
    psql(ADMIN_URL, "-c", f'DROP DATABASE "{migrated}"')
    os.unlink(combined.name)

    base_median, base_p90 = summary(baseline)
    mig_median, mig_p90 = summary(migrate)
    rerun_median, rerun_p90 = summary(rerun)
    ratio = mig_median / base_median
    print(f"rounds: {ROUNDS}; baseline client: {PSQL}; migrations: {', '.join(f.parent.name for f in files)}")
    print(f"psql -1 -f (baseline)   median {base_median:7.1f} ms   p90 {base_p90:7.1f} ms")
    print(f"migrate up (empty db)   median {mig_median:7.1f} ms   p90 {mig_p90:7.1f} ms")
    print(f"migrate up (rerun)      median {rerun_median:7.1f} ms   p90 {rerun_p90:7.1f} ms")
    print(f"ratio migrate/psql: {ratio:.3f}  (target <= 1.10)  {'PASS' if ratio <= 1.10 else 'MISS'}")
    print(f"rerun median: {rerun_median:.1f} ms  (target <= 30 ms)  {'PASS' if rerun_median <= 30 else 'MISS'}")


if __name__ == "__main__":
    main()
