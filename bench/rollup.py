"""Drives bench/rollup.sh: the hourly rollup of a million events against
the same aggregates hand-written in SQL and run by psql, side by side,
alternating order each round."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ADMIN_URL = os.environ["BENCH_POSTGRES_URL"]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "270000"))
FROM, TO = "2026-11-20 10:00:00", "2026-11-20 11:00:00"

# What the job computes for the hour, written as one would by hand: one
# scan per table with a grouping set per breakdown, the same derived
# columns (device and browser from the user agent, country, page path,
# booking revenue), the same p75 (percentile_disc), participants and error
# occurrences. Results go to psql's output, which is discarded.
BASELINE = f"""
\\set from '{FROM}'
\\set to '{TO}'
WITH e AS (
    SELECT CASE
               WHEN "userAgent" IS NULL OR "userAgent" = '' THEN 'unknown'
               WHEN "userAgent" ~* 'ipad|tablet|kindle|silk|playbook' OR ("userAgent" ~* 'android' AND "userAgent" !~* 'mobile') THEN 'tablet'
               WHEN "userAgent" ~* 'mobi|iphone|ipod|android|phone' THEN 'mobile'
               ELSE 'desktop' END AS device,
           CASE
               WHEN "userAgent" IS NULL OR "userAgent" = '' THEN 'unknown'
               WHEN "userAgent" ~ 'Edg(e|A|iOS)?/' THEN 'Edge'
               WHEN "userAgent" ~ 'OPR/|Opera' THEN 'Opera'
               WHEN "userAgent" ~ 'SamsungBrowser/' THEN 'Samsung Internet'
               WHEN "userAgent" ~ 'Firefox/|FxiOS/' THEN 'Firefox'
               WHEN "userAgent" ~ 'Chrome/|CriOS/' THEN 'Chrome'
               WHEN "userAgent" ~ 'Safari/' THEN 'Safari'
               ELSE 'other' END AS browser,
           coalesce(nullif(btrim("eventData"->>'country'), ''), 'unknown') AS country,
           CASE WHEN "eventType" = 'page_view' THEN
               coalesce(nullif(regexp_replace("url", '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*|[?#].*$', '', 'g'), ''), '/') END AS page,
           "eventType" AS event_type, "sessionId" AS session, "userId" AS user_id,
           CASE WHEN "eventType" = 'booking_complete' THEN coalesce(nullif(upper(btrim("eventData"->>'currency')), ''), 'UNKNOWN') END AS currency,
           CASE WHEN "eventType" = 'booking_complete' THEN
               CASE WHEN jsonb_typeof("eventData"->'revenue') = 'number' THEN ("eventData"->>'revenue')::float8
                    WHEN jsonb_typeof("eventData"->'value') = 'number' THEN ("eventData"->>'value')::float8
                    WHEN jsonb_typeof("eventData"->'price') = 'number' THEN ("eventData"->>'price')::float8 END END AS revenue
    FROM "analytics_events"
    WHERE "timestamp" >= :'from' AND "timestamp" < :'to'
)
SELECT device, browser, country, page, event_type, currency,
       count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
       count(DISTINCT session) AS sessions,
       count(DISTINCT user_id) AS users,
       count(*) AS events,
       count(*) FILTER (WHERE event_type = 'flight_search') AS searches,
       count(*) FILTER (WHERE event_type = 'booking_complete') AS bookings,
       count(DISTINCT session) FILTER (WHERE event_type = 'booking_complete') AS converted_sessions,
       coalesce(sum(revenue), 0) AS revenue
FROM e
GROUP BY GROUPING SETS ((), (device), (browser), (country), (page), (event_type), (currency));

SELECT "metricName", page, device,
       percentile_disc(0.75) WITHIN GROUP (ORDER BY "value") AS p75,
       count(*) AS samples,
       count(*) FILTER (WHERE "rating" = 'good') AS good,
       count(*) FILTER (WHERE "rating" = 'needs-improvement') AS needs_improvement,
       count(*) FILTER (WHERE "rating" = 'poor') AS poor
FROM (SELECT "metricName", "value", "rating",
             coalesce(nullif(regexp_replace("url", '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*|[?#].*$', '', 'g'), ''), '/') AS page,
             coalesce(nullif("deviceType", ''), 'unknown') AS device
      FROM "performance_metrics"
      WHERE "timestamp" >= :'from' AND "timestamp" < :'to'
        AND "metricName" IN ('LCP', 'INP', 'CLS', 'FCP', 'TTFB')) v
GROUP BY GROUPING SETS (("metricName"), ("metricName", page), ("metricName", device));

SELECT f."key", p."variant", count(*)
FROM "experiment_participations" p JOIN "feature_flags" f ON f."id" = p."flagId"
WHERE p."assignedAt" >= :'from' AND p."assignedAt" < :'to'
GROUP BY GROUPING SETS ((), (f."key"), (f."key", p."variant"));

SELECT coalesce(sum("count"), 0), count(*) FROM "error_logs"
WHERE "timestamp" >= :'from' AND "timestamp" < :'to';
"""


def url_for(database):
    base, _, query = ADMIN_URL.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


def psql(url, *args):
    result = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, *args],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def timed(command, env=None):
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    return time.perf_counter() - started


def main():
    migrate_bin, admin_bin = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp()
    name = f"bench_rollup_{uuid.uuid4().hex[:8]}"
    psql(ADMIN_URL, "-c", f'CREATE DATABASE "{name}"')
    url = url_for(name)
    env = {**os.environ, "POSTGRES_URL": url, "RUST_LOG": "warn"}
    try:
        subprocess.run([migrate_bin, "up"], check=True, env=env, capture_output=True)
        generated = json.loads(subprocess.run(
            [admin_bin, "sample-data", "--seed", "1", "--since", FROM.replace(" ", "T") + "Z",
             "--until", TO.replace(" ", "T") + "Z", "--sessions", str(SESSIONS), "--csv", tmp],
            check=True, capture_output=True, text=True, env=env).stdout)
        started = time.perf_counter()
        for table, columns in generated["columns"].items():
            psql(url, "-c", f"\\copy \"{table}\" ({columns}) FROM '{os.path.join(tmp, table + '.csv')}' (FORMAT csv)")
        loaded = time.perf_counter() - started
        psql(url, "-c", "ANALYZE")
        baseline = os.path.join(tmp, "baseline.sql")
        with open(baseline, "w") as f:
            f.write(BASELINE)
        job = [admin_bin, "rollup", "--from", FROM.replace(" ", "T") + "Z", "--to", TO.replace(" ", "T") + "Z",
               "--granularity", "hour"]
        # The job's rows agree with the hand-written aggregates.
        subprocess.run(job, check=True, capture_output=True, env=env)
        # The grand total: of the event rows (14 columns), the one with every event.
        event_rows = [r.split("|") for r in psql(url, "-f", baseline).splitlines() if r.count("|") == 13]
        by_hand = max(event_rows, key=lambda r: int(r[9]))
        stored = psql(url, "-c", f"""SELECT string_agg("value"::text, '|' ORDER BY "metricName") FROM "metric_snapshots"
                                     WHERE "granularity" = 'hour' AND "timestamp" = '{FROM}'
                                       AND "metricName" IN ('page_views', 'sessions', 'users', 'events')""").split("|")
        # events, page_views, sessions, users (the order of the names)
        expected = [by_hand[9], by_hand[6], by_hand[7], by_hand[8]]
        assert [float(x) for x in stored] == [float(x) for x in expected], (stored, expected)
        jobs, psqls = [], []
        for round_number in range(ROUNDS):
            pair = [lambda: jobs.append(timed(job, env)),
                    lambda: psqls.append(timed(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url,
                                                "-f", baseline, "-o", "/dev/null"]))]
            for step in (pair if round_number % 2 == 0 else reversed(pair)):
                step()
        counts = psql(url, "-c", """SELECT (SELECT count(*) FROM "analytics_events") || ' events, '
                                           || (SELECT count(*) FROM "performance_metrics") || ' vitals, '
                                           || (SELECT count(*) FROM "error_logs") || ' error groups'""")
    finally:
        psql(ADMIN_URL, "-c", f'DROP DATABASE "{name}" WITH (FORCE)')
        for entry in os.listdir(tmp):
            os.unlink(os.path.join(tmp, entry))
        os.rmdir(tmp)

    med = statistics.median

    def line(label, values):
        print(f"{label:<44}median {med(values):7.2f} s (all: {', '.join(f'{x:.2f}' for x in values)})")

    ratio = med(jobs) / med(psqls)
    print(f"rounds: {ROUNDS}; {counts} in the hour {FROM}; loaded by COPY in {loaded:.1f} s")
    line("admin rollup --granularity hour (process)", jobs)
    line("psql -f, the same aggregates by hand", psqls)
    print(f"{'rollup/psql':<44}{ratio:5.2f}  (target <= 2.00)  {'PASS' if ratio <= 2.0 else 'MISS'}")


if __name__ == "__main__":
    main()
