"""Drives bench/overview.sh: GET /api/admin/analytics/overview over 90 days
of hourly (and daily) snapshots, against the handler's own SELECT run by
pgbench, side by side, alternating order each round; latencies per request,
p50 and p99."""

import datetime
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ADMIN_URL = os.environ["BENCH_POSTGRES_URL"]
PGBENCH = os.environ["PGBENCH"]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
DAYS = int(os.environ.get("BENCH_DAYS", "90"))
TARGET_P99_MS = 50.0
SECRET = "bench-secret-for-a-throwaway-database"

# The overview's series (functions/admin/src/analytics/overview.rs SERIES).
SERIES = ["page_views", "sessions", "users", "searches", "bookings", "conversion_rate", "revenue", "errors",
          "errors_new", "vitals.LCP.p75", "vitals.INP.p75", "vitals.CLS.p75", "vitals.FCP.p75", "vitals.TTFB.p75"]

# The baseline pgbench runs: the same values as one row each, the plain
# SELECT the handler's first version ran (the handler now asks for one row
# of two arrays per metric: pgbench would format those as text, a cost the
# handler's binary reads do not pay, so the plain rows are the fairer floor).
OVERVIEW_SELECT = """SELECT "metricName", "timestamp", "value"
FROM "bundle"."metric_series"
WHERE "metricName" = ANY(:names::text[]) AND "granularity" = :granularity
  AND "timestamp" >= :prev_from::timestamp AND "timestamp" < :to::timestamp;
"""

# The whole catalogue the rollup writes (docs: metric_snapshots), with its
# kind of dimensions: (name, typical hourly value, kind).
CATALOGUE = [
    ("page_views", 900, "pages"), ("sessions", 300, "ordinary"), ("users", 120, "ordinary"),
    ("events", 4000, "event_types"), ("searches", 250, "ordinary"), ("bookings", 6, "ordinary"),
    ("conversion_rate", 0.02, "rate"), ("revenue", 2400, "revenue"), ("errors", 15, "none"),
    ("errors_new", 1, "none"), ("errors_regressions", 0.3, "none"),
    ("vitals.LCP.p75", 2400, "vitals"), ("vitals.INP.p75", 180, "vitals"), ("vitals.CLS.p75", 0.08, "vitals"),
    ("vitals.FCP.p75", 1600, "vitals"), ("vitals.TTFB.p75", 600, "vitals"),
    ("experiment_participants", 80, "experiments"),
]

COUNTRIES = ("ARRAY['US','GB','DE','FR','ES','IT','NL','CA','AU','BR','MX','IN','JP','KR','SE','NO','DK','FI',"
             "'PL','PT','IE','CH','AT','BE','NZ','SG','AE','ZA','AR','unknown']")


def url_for(database):
    base, _, query = ADMIN_URL.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


def psql(url, *args):
    result = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, *args],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def dimensions_sql(kind):
    """The dimensions of one row, as the rollup shapes them, scaled to
    `v.value`: device, browser and country slices, the 50 largest pages
    of page views, event types, currencies, flags and variants, and the
    vitals' ratings per page and device."""
    device = ("jsonb_build_object('desktop', round(v.value * 0.55), 'mobile', round(v.value * 0.4), "
              "'tablet', round(v.value * 0.05))")
    browser = ("jsonb_build_object('Chrome', round(v.value * 0.6), 'Safari', round(v.value * 0.25), "
               "'Firefox', round(v.value * 0.06), 'Edge', round(v.value * 0.06), 'Samsung Internet', round(v.value * 0.03))")
    country = (f"(SELECT jsonb_object_agg(c, round(v.value / (i + 1))) "
               f"FROM unnest({COUNTRIES}) WITH ORDINALITY AS cs(c, i))")
    pages = ("(SELECT jsonb_object_agg('/deals/seven-nights-in-city-' || i || '-from-origin-' || (i % 12), "
             "round(v.value / (i + 1))) FROM generate_series(1, 50) AS i)")
    figures = ("jsonb_build_object('p75', round((v.value * (0.7 + 0.6 * random()))::numeric, 3), "
               "'samples', 40 + i, 'good', 30 + i, 'needs-improvement', 7, 'poor', 3)")
    if kind == "pages":
        return f"jsonb_build_object('device', {device}, 'browser', {browser}, 'country', {country}, 'page', {pages})"
    if kind == "ordinary":
        return f"jsonb_build_object('device', {device}, 'browser', {browser}, 'country', {country})"
    if kind == "event_types":
        return ("(SELECT jsonb_build_object('eventType', jsonb_object_agg(t, round(v.value / (i + 2)))) FROM unnest("
                "ARRAY['page_view','flight_search','results_view','flight_selected','begin_checkout','payment_started',"
                "'booking_complete','deal_view','deal_click','newsletter_signup','funnel','share','filter_change',"
                "'sort_change','map_open']) WITH ORDINALITY AS ts(t, i))")
    if kind == "rate":
        return "jsonb_build_object('device', jsonb_build_object('desktop', 0.025, 'mobile', 0.014, 'tablet', 0.02))"
    if kind == "revenue":
        return (f"jsonb_build_object('currency', jsonb_build_object('USD', round(v.value * 0.7), 'EUR', "
                f"round(v.value * 0.2), 'GBP', round(v.value * 0.1)), 'device', {device})")
    if kind == "vitals":
        return (f"jsonb_build_object('samples', 2500, 'rating', jsonb_build_object('good', 1900, "
                f"'needs-improvement', 450, 'poor', 150), "
                f"'page', (SELECT jsonb_object_agg('/deals/seven-nights-in-city-' || i || '-from-origin-' || (i % 12), "
                f"{figures}) FROM generate_series(1, 50) AS i), "
                f"'device', (SELECT jsonb_object_agg(d, {figures}) FROM unnest(ARRAY['desktop','mobile','tablet']) "
                f"WITH ORDINALITY AS ds(d, i)))")
    if kind == "experiments":
        return ("jsonb_build_object('flag', jsonb_build_object('checkout-copy', round(v.value * 0.5), 'price-badge', "
                "round(v.value * 0.3), 'map-first', round(v.value * 0.2)), 'variant', jsonb_build_object("
                "'checkout-copy/control', round(v.value * 0.25), 'checkout-copy/treatment', round(v.value * 0.25), "
                "'price-badge/control', round(v.value * 0.15), 'price-badge/treatment', round(v.value * 0.15), "
                "'map-first/control', round(v.value * 0.1), 'map-first/treatment', round(v.value * 0.1)))")
    return "'{}'::jsonb"


def insert_snapshots(db_url, start, end):
    """Hourly and daily rows of every metric of the catalogue over
    [start, end): the range asked and the previous period it is compared
    with. Values follow a daily cycle with noise."""
    for name, base, kind in CATALOGUE:
        for granularity, step, scale in (("hour", "1 hour", 1), ("day", "1 day", 24)):
            scaled = base if kind in ("rate", "vitals") else base * scale
            psql(db_url, "-c", f"""
                INSERT INTO "metric_snapshots" ("id", "metricName", "value", "dimensions", "timestamp", "granularity")
                SELECT gen_random_uuid()::text, '{name}', v.value, {dimensions_sql(kind)}, ts, '{granularity}'
                FROM generate_series('{start}'::timestamp, '{end}'::timestamp - interval '{step}', interval '{step}') AS ts
                CROSS JOIN LATERAL (SELECT ({scaled} * (0.75 + 0.25 * sin(extract(hour FROM ts) / 24.0 * 2 * pi()))
                                            * (0.85 + 0.3 * random()))::float8 AS value) v""")
    # The rollup writes each row's series copy with it (bundle.metric_series).
    psql(db_url, "-c", """INSERT INTO "bundle"."metric_series" ("metricName", "granularity", "timestamp", "value")
                          SELECT "metricName", "granularity", "timestamp", "value" FROM "metric_snapshots"
                          ON CONFLICT DO NOTHING""")
    psql(db_url, "-c", 'VACUUM ANALYZE "metric_snapshots"')
    psql(db_url, "-c", 'VACUUM ANALYZE "bundle"."metric_series"')


def super_admin(db_url, user_id):
    psql(db_url, "-c", f"""
        INSERT INTO "users" ("id", "email", "name", "updatedAt") VALUES ('{user_id}', '{user_id}@example.com', 'Bench', now());
        INSERT INTO "admin_users" ("id", "userId", "role", "updatedAt") VALUES ('{user_id}', '{user_id}', 'super_admin', now());""")


def timed_requests(connection, path, token, n):
    """Latencies in ms of n sequential requests on one keep-alive connection,
    each read to its last byte."""
    latencies = []
    for _ in range(n):
        began = time.perf_counter()
        connection.request("GET", path, headers={"cookie": f"next-auth.session-token={token}",
                                                 "user-agent": "overview-bench/1.0"})
        response = connection.getresponse()
        body = response.read()
        latencies.append((time.perf_counter() - began) * 1000)
        assert response.status == 200, body[:500]
    return latencies, body


def run_pgbench(db_url, script_path, defines, n, log_dir):
    prefix = os.path.join(log_dir, f"pgb{uuid.uuid4().hex[:6]}")
    args = [PGBENCH, "-n", "-M", "prepared", "-c", "1", "-t", str(n), "-l", f"--log-prefix={prefix}"]
    for key, value in defines.items():
        args += ["-D", f"{key}={value}"]
    subprocess.run(args + ["-f", script_path, db_url], check=True, capture_output=True, text=True)
    latencies = []
    for entry in os.listdir(log_dir):
        path = os.path.join(log_dir, entry)
        if entry.startswith(os.path.basename(prefix)):
            with open(path) as f:
                latencies += [int(line.split()[2]) / 1000 for line in f if line.strip()]
            os.unlink(path)
    assert len(latencies) == n, len(latencies)
    return latencies


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def main():
    migrate_bin, server_bin = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp()
    name = f"bench_overview_{uuid.uuid4().hex[:8]}"
    psql(ADMIN_URL, "-c", f'CREATE DATABASE "{name}"')
    url = url_for(name)
    server = None
    end = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0,
                                                               tzinfo=None)
    start = end - datetime.timedelta(days=2 * DAYS)
    frm = end - datetime.timedelta(days=DAYS)
    results = {}
    try:
        subprocess.run([migrate_bin, "up"], check=True, env={**os.environ, "POSTGRES_URL": url, "RUST_LOG": "warn"},
                       capture_output=True)
        seeding = time.perf_counter()
        insert_snapshots(url, start.isoformat(sep=" "), end.isoformat(sep=" "))
        rows = psql(url, "-c", 'SELECT count(*) FROM "metric_snapshots"')
        size = psql(url, "-c", """SELECT pg_size_pretty(pg_total_relation_size('"metric_snapshots"'))""")
        print(f"seeded {rows} snapshot rows ({size} with indexes and TOAST) in {time.perf_counter() - seeding:.0f} s",
              flush=True)
        super_admin(url, "bench-root")
        server = subprocess.Popen([server_bin], env={**os.environ, "POSTGRES_URL": url, "DB_POOL_MAX_SIZE": "4",
                                                     "NEXTAUTH_SECRET": SECRET, "BENCH_SESSION_USER": "bench-root",
                                                     "RUST_LOG": "warn"},
                                  stdout=subprocess.PIPE, text=True)
        address = server.stdout.readline().strip()
        token = server.stdout.readline().strip()
        host, port = address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port))
        script = os.path.join(tmp, "overview.sql")
        with open(script, "w") as f:
            f.write(OVERVIEW_SELECT)
        names = "{" + ",".join(SERIES) + "}"
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        for granularity in ("hour", "day"):
            path = f"/api/admin/analytics/overview?from={frm.strftime(fmt)}&to={end.strftime(fmt)}&granularity={granularity}"
            _, body = timed_requests(connection, path, token, 20)
            answer = json.loads(body)
            points = len(answer["buckets"])
            assert points == DAYS * (24 if granularity == "hour" else 1), points
            assert all(s["total"] is not None and s["previous"]["total"] is not None for s in answer["series"]), answer
            defines = {"names": names, "granularity": granularity, "prev_from": start.isoformat(),
                       "to": end.isoformat()}
            selected = psql(url, "-c", "SELECT count(*) FROM (" + OVERVIEW_SELECT.rstrip().rstrip(";")
                            .replace(":names::text[]", f"'{names}'::text[]").replace(":granularity", f"'{granularity}'")
                            .replace(":prev_from", f"'{start.isoformat()}'").replace(":to", f"'{end.isoformat()}'")
                            + ") AS rows")
            run_pgbench(url, script, defines, 20, tmp)
            served, baseline = [], []
            for round_number in range(ROUNDS):
                pair = [lambda: served.extend(timed_requests(connection, path, token, REQUESTS)[0]),
                        lambda: baseline.extend(run_pgbench(url, script, defines, REQUESTS, tmp))]
                for step in (pair if round_number % 2 == 0 else reversed(pair)):
                    step()
            results[granularity] = (served, baseline, len(body), int(selected), points)
    finally:
        if server:
            server.terminate()
            server.wait()
        psql(ADMIN_URL, "-c", f'DROP DATABASE "{name}" WITH (FORCE)')
        for entry in os.listdir(tmp):
            os.unlink(os.path.join(tmp, entry))
        os.rmdir(tmp)

    print(f"rounds: {ROUNDS} x {REQUESTS} sequential requests per contender; {DAYS} days asked, "
          f"compared with the {DAYS} days before")
    for granularity, (served, baseline, body_bytes, rows, points) in results.items():
        p50, p99 = percentile(served, 50), percentile(served, 99)
        b50, b99 = percentile(baseline, 50), percentile(baseline, 99)
        print(f"\ngranularity={granularity}: {points} buckets x {len(SERIES)} series and the previous period; "
              f"SELECT of {rows} rows; answer {body_bytes} bytes of JSON")
        print(f"  {'GET /api/admin/analytics/overview':<36}p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   "
              f"(round medians: {', '.join(f'{statistics.median(served[i * REQUESTS:(i + 1) * REQUESTS]):.2f}' for i in range(ROUNDS))})")
        print(f"  {'pgbench, the values as plain rows':<36}p50 {b50:7.2f} ms   p99 {b99:7.2f} ms   "
              f"(round medians: {', '.join(f'{statistics.median(baseline[i * REQUESTS:(i + 1) * REQUESTS]):.2f}' for i in range(ROUNDS))})")
        print(f"  {'overview/SELECT':<36}p50 {p50 / b50:5.2f}x    p99 {p99 / b99:5.2f}x")
        if granularity == "hour":
            print(f"  {'p99 target <= 50 ms':<36}{'PASS' if p99 <= TARGET_P99_MS else 'MISS'}")


if __name__ == "__main__":
    main()
