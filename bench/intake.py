"""Drives bench/intake.sh: the events function's HTTP stack against COPY and
pgbench, side by side, alternating order each round."""

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ADMIN_URL = os.environ["BENCH_POSTGRES_URL"]
PGBENCH = os.environ["PGBENCH"]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
BATCHES = int(os.environ.get("BENCH_BATCHES", "40"))  # x 500 events per round
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
COLUMNS = '"id", "sessionId", "eventType", "eventData", "url", "referrer", "userAgent", "ipAddress", "timestamp"'


def url_for(database):
    base, _, query = ADMIN_URL.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


def psql(url, *args, capture=False):
    result = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, *args],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def event_data(i):
    return {"url": f"https://deals.example/deals/lisbon?ref=home&pos={i}", "referrer": "https://www.google.com/",
            "dealId": f"deal-{i % 97}", "position": i % 12, "price": 129.99, "currency": "EUR"}


def batch_body(session, now_ms):
    return json.dumps({"sessionId": session, "events": [
        {"eventType": "page_view", "eventData": event_data(i), "timestamp": now_ms} for i in range(500)]})


def run_http_batches(address, db_url, concurrency):
    psql(db_url, "-c", 'TRUNCATE "analytics_events"')
    now_ms = int(time.time() * 1000)
    bodies = [batch_body(f"session_{now_ms}_{uuid.uuid4().hex[:8]}", now_ms) for _ in range(BATCHES)]
    host, port = address.rsplit(":", 1)
    headers = {"content-type": "application/json", "user-agent": BROWSER, "x-forwarded-for": "203.0.113.77"}

    def client(share):
        conn = http.client.HTTPConnection(host, int(port))
        for body in share:
            conn.request("POST", "/api/analytics/events", body, headers)
            response = conn.getresponse()
            payload = response.read()
            assert response.status == 202, payload

    threads = [threading.Thread(target=client, args=(bodies[n::concurrency],)) for n in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    stored = int(psql(db_url, "-c", 'SELECT count(*) FROM "analytics_events"'))
    assert stored == BATCHES * 500, stored
    return stored / elapsed


def run_copy(db_url, csv_path):
    """One \\copy of all the rows: one statement, one commit."""
    psql(db_url, "-c", 'TRUNCATE "analytics_events"')
    # psql's own \timing: the COPY alone, not psql's start and connect (the
    # HTTP client's connection is warm too).
    out = psql(db_url, "-c", "\\timing on", "-c", f"\\copy \"analytics_events\" ({COLUMNS}) FROM '{csv_path}' WITH (FORMAT csv)")
    elapsed = float(out.split("Time: ")[-1].split(" ms")[0]) / 1000
    stored = int(psql(db_url, "-c", 'SELECT count(*) FROM "analytics_events"'))
    assert stored == BATCHES * 500, stored
    return stored / elapsed


def run_copy_batches(db_url, batch_paths):
    """One \\copy per 500-row batch in one psql session, each its own
    statement and commit: what a client told that each batch is durably
    stored needs. Timed as the sum of psql's \\timing of the COPYs."""
    psql(db_url, "-c", 'TRUNCATE "analytics_events"')
    copies = [a for path in batch_paths
              for a in ("-c", f"\\copy \"analytics_events\" ({COLUMNS}) FROM '{path}' WITH (FORMAT csv)")]
    out = psql(db_url, "-c", "\\timing on", *copies)
    times = [float(part.split(" ms")[0]) for part in out.split("Time: ")[1:]]
    assert len(times) == len(batch_paths), out
    stored = int(psql(db_url, "-c", 'SELECT count(*) FROM "analytics_events"'))
    assert stored == BATCHES * 500, stored
    return stored / (sum(times) / 1000)


def write_csv(path, batch_path):
    """All rows in `path`, and each batch's 500 in `batch_path % b`."""
    import csv
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    paths = []
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        for b in range(BATCHES):
            session = f"session_copy_{b}"
            rows = []
            for i in range(500):
                data = event_data(i)
                rows.append([str(uuid.uuid4()), session, "page_view", json.dumps(data), data["url"],
                             data["referrer"], BROWSER, "203.0.113.0", now])
            writer.writerows(rows)
            paths.append(batch_path % b)
            with open(paths[-1], "w", newline="") as one:
                csv.writer(one).writerows(rows)
    return paths


def run_http_singles(address, db_url, lua_path):
    """wrk, 4 connections: a Python client tops out near 3k requests/s."""
    psql(db_url, "-c", 'TRUNCATE "analytics_events"')
    out = subprocess.run(["wrk", "-t", "2", "-c", "4", "-d", f"{int(SECONDS)}s", "-s", lua_path,
                          f"http://{address}/api/analytics/events"], check=True, capture_output=True, text=True).stdout
    assert "Non-2xx" not in out, out
    total = int(out.split(" requests in ")[0].split()[-1])
    stored = int(psql(db_url, "-c", 'SELECT count(*) FROM "analytics_events"'))
    # wrk stops mid-flight: requests it abandoned may still be stored.
    assert total <= stored <= total + 4, (total, stored)
    return float(out.split("Requests/sec:")[1].split()[0])


def write_wrk_script(path):
    body = json.dumps({"sessionId": "session_wrk", "eventType": "page_view", "eventData": event_data(1)})
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        f.write('wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"\n')
        f.write(f'wrk.headers["User-Agent"] = "{BROWSER}"\n')


def run_pgbench(db_url, script_path):
    psql(db_url, "-c", 'TRUNCATE "analytics_events"')
    out = subprocess.run([PGBENCH, "-n", "-c", "4", "-j", "2", "-T", str(int(SECONDS)), "-f", script_path, db_url],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(out)


def write_pgbench_script(path):
    data = json.dumps(event_data(1)).replace("'", "''")
    with open(path, "w") as f:
        f.write(
            # A time-ordered id like the bundle's UUIDv7 (PostgreSQL 15 has no
            # uuidv7()), so both sides insert at the primary key's right edge.
            f"INSERT INTO \"analytics_events\" ({COLUMNS}) VALUES ("
            f"lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || gen_random_uuid()::text, "
            f"'session_pgbench', 'page_view', "
            f"'{data}', 'https://deals.example/deals/lisbon?ref=home&pos=1', 'https://www.google.com/', '{BROWSER}', '203.0.113.0', now());\n")


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    migrate_bin, server_bin = sys.argv[1], sys.argv[2]
    database = f"bench_intake_{uuid.uuid4().hex[:8]}"
    psql(ADMIN_URL, "-c", f'CREATE DATABASE "{database}"')
    db_url = url_for(database)
    subprocess.run([migrate_bin, "up"], check=True, env={**os.environ, "POSTGRES_URL": db_url, "RUST_LOG": "warn"},
                   capture_output=True)
    server = subprocess.Popen([server_bin], env={**os.environ, "POSTGRES_URL": db_url, "DB_POOL_MAX_SIZE": "4"},
                              stdout=subprocess.PIPE, text=True)
    tmp = tempfile.mkdtemp()
    try:
        address = server.stdout.readline().strip()
        csv_path, script_path = os.path.join(tmp, "rows.csv"), os.path.join(tmp, "insert.sql")
        lua_path = os.path.join(tmp, "post.lua")
        batch_paths = write_csv(csv_path, os.path.join(tmp, "batch_%02d.csv"))
        write_pgbench_script(script_path)
        write_wrk_script(lua_path)
        run_http_batches(address, db_url, 2)  # warm-up: connections, caches
        http_rows, http_rows_2, copy_rows, copy_batch_rows, http_rps, pgbench_tps = [], [], [], [], [], []
        for round_number in range(ROUNDS):
            steps = [lambda: http_rows.append(run_http_batches(address, db_url, 1)),
                     lambda: http_rows_2.append(run_http_batches(address, db_url, 2)),
                     lambda: copy_rows.append(run_copy(db_url, csv_path)),
                     lambda: copy_batch_rows.append(run_copy_batches(db_url, batch_paths))]
            for step in (steps if round_number % 2 == 0 else reversed(steps)):
                step()
        for round_number in range(ROUNDS):
            pair = [lambda: http_rps.append(run_http_singles(address, db_url, lua_path)),
                    lambda: pgbench_tps.append(run_pgbench(db_url, script_path))]
            for step in (pair if round_number % 2 == 0 else reversed(pair)):
                step()
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait()
        psql(ADMIN_URL, "-c", f'DROP DATABASE "{database}" WITH (FORCE)')
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)

    med = statistics.median

    def line(label, values, unit):
        print(f"{label:<29}median {med(values):9.0f} {unit:<8} (all: {', '.join(f'{x:.0f}' for x in values)})")

    def ratio(label, value, note):
        print(f"{label:<29}{value:5.2f}  ({note})  {'PASS' if value >= 0.9 else 'MISS'}")

    print(f"rounds: {ROUNDS}; batch round: {BATCHES} x 500 events; single-event round: {SECONDS:.0f} s at concurrency 4 (wrk)")
    line("HTTP 500-event batches", http_rows, "rows/s")
    line("  same, 2 clients", http_rows_2, "rows/s")
    line("psql COPY, one per batch", copy_batch_rows, "rows/s")
    line("psql COPY, all in one", copy_rows, "rows/s")
    line("HTTP single events, c=4", http_rps, "req/s")
    line("pgbench inserts, c=4", pgbench_tps, "tps")
    # The target is judged against COPY with a commit per batch: a client
    # told that each batch is durably stored needs one (README, "Intake").
    ratio("batches/COPY per batch", med(http_rows) / med(copy_batch_rows), "1 client; target >= 0.90")
    ratio("batches/COPY per batch", med(http_rows_2) / med(copy_batch_rows), "2 clients; target >= 0.90")
    ratio("batches/one COPY", med(http_rows) / med(copy_rows), "1 client; one commit for all rows; reference")
    ratio("batches/one COPY", med(http_rows_2) / med(copy_rows), "2 clients; one commit for all rows; reference")
    ratio("singles/pgbench", med(http_rps) / med(pgbench_tps), "target >= 0.90")
    print(f"{'server peak RSS':<29}{rss:5.1f} MB  (target <= 30 MB)  {'PASS' if rss <= 30 else 'MISS'}")


if __name__ == "__main__":
    main()
