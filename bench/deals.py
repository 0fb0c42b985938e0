"""Drives bench/deals.sh: the public deal list against the same SELECT run
by pgbench, side by side, alternating order each round."""

import datetime
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid

ADMIN_URL = os.environ["BENCH_POSTGRES_URL"]
PGBENCH = os.environ["PGBENCH"]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
DEALS = int(os.environ.get("BENCH_DEALS", "10000"))
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"

# The handler's statement for the first page of the default sort (dealScore),
# prepared, with the same two parameters (now, and the page size plus one):
# what pgbench runs.
PUBLIC_COLUMNS = ('"id", "slug", "title", "description", "destination", "origin", "originalPrice", '
                  '"discountedPrice", "currency", "flightDetails", "dealScore", "featured", "expiresAt", '
                  '"category", "tags", "images", "restrictions", "seo", "createdAt", "updatedAt"')
FIRST_PAGE = (f'SELECT {PUBLIC_COLUMNS} FROM "deals" '
              'WHERE "active" AND ("expiresAt" IS NULL OR "expiresAt" > :now) '
              'ORDER BY "dealScore" DESC, "id" DESC LIMIT :limit;\n')


def url_for(database):
    base, _, query = ADMIN_URL.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


def psql(url, *args):
    result = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, *args],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def insert_deals(db_url):
    """DEALS deals like an editor's: 90% active, a tenth expired, 40
    destinations from 12 origins, realistic text and JSON sizes."""
    psql(db_url, "-c", f"""
        INSERT INTO "deals" ("id", "slug", "title", "description", "destination", "origin", "originalPrice",
            "discountedPrice", "currency", "flightDetails", "dealScore", "featured", "active", "expiresAt",
            "category", "tags", "images", "restrictions", "seo", "views", "clicks", "conversions",
            "createdAt", "updatedAt", "createdBy")
        SELECT 'deal_' || i, 'deal-number-' || i, 'Seven nights in city ' || (i % 40) || ' from origin ' || (i % 12),
            'Direct flights with a checked bag, seven nights, free cancellation up to 24 hours before departure. '
              || 'Prices per person, return, taxes included.',
            jsonb_build_object('airportCode', chr(65 + i % 26) || chr(65 + (i / 26) % 26) || 'X',
                               'city', 'City ' || (i % 40), 'country', 'Country ' || (i % 15)),
            chr(65 + i % 12) || 'OR', 400 + (i % 700), 150 + (i % 400), 'USD',
            jsonb_build_object('airline', 'Airline ' || (i % 9), 'departDate', '2027-03-14', 'returnDate', '2027-03-21',
                               'stops', i % 2, 'cabinClass', 'economy', 'durationMinutes', 300 + i % 400),
            (i * 37) % 101, i % 10 = 0, i % 10 <> 3,
            CASE WHEN i % 10 = 7 THEN now() - interval '1 day' WHEN i % 3 = 0 THEN NULL ELSE now() + interval '30 days' END,
            (ARRAY['featured', 'last-minute', 'weekend', 'long-haul', 'business'])[1 + i % 5],
            ARRAY['spring', 'direct'], jsonb_build_array(jsonb_build_object('url', 'https://images.example/deal-' || i || '.jpg',
                                                                            'alt', 'The old town at dusk')),
            ARRAY['Non-refundable after 24 hours'],
            jsonb_build_object('title', 'Seven nights in city ' || (i % 40), 'description', 'Direct flights, checked bag, seven nights.'),
            i % 1000, i % 100, i % 10, now() - (i || ' minutes')::interval, now(), 'bench'
        FROM generate_series(1, {DEALS}) AS i""")
    psql(db_url, "-c", 'ANALYZE "deals"')


def get(address, path):
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", path, headers={"user-agent": BROWSER})
    response = conn.getresponse()
    return response.status, response.read()


def wrk(address, path):
    out = subprocess.run(["wrk", "-t", "2", "-c", "4", "-d", f"{int(SECONDS)}s", "-H", f"User-Agent: {BROWSER}",
                          f"http://{address}{path}"], check=True, capture_output=True, text=True).stdout
    assert "Non-2xx" not in out, out
    return float(out.split("Requests/sec:")[1].split()[0])


def run_pgbench(db_url, script_path):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    out = subprocess.run([PGBENCH, "-n", "-M", "prepared", "-c", "4", "-j", "2", "-T", str(int(SECONDS)),
                          "-D", f"now={now}", "-D", "limit=51", "-f", script_path, db_url],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(out)


def main():
    migrate_bin, server_bin = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp()
    name = f"bench_deals_{uuid.uuid4().hex[:8]}"
    psql(ADMIN_URL, "-c", f'CREATE DATABASE "{name}"')
    url = url_for(name)
    server = None
    try:
        subprocess.run([migrate_bin, "up"], check=True, env={**os.environ, "POSTGRES_URL": url, "RUST_LOG": "warn"},
                       capture_output=True)
        insert_deals(url)
        server = subprocess.Popen([server_bin], env={**os.environ, "POSTGRES_URL": url, "DB_POOL_MAX_SIZE": "4",
                                                     "NEXTAUTH_SECRET": "bench-secret-not-used-by-public-routes",
                                                     "RUST_LOG": "warn"},
                                  stdout=subprocess.PIPE, text=True)
        address = server.stdout.readline().strip()
        status, body = get(address, "/api/deals?limit=50")
        assert status == 200, body
        page = json.loads(body)
        assert len(page["deals"]) == 50 and page["nextCursor"], page
        script = os.path.join(tmp, "first_page.sql")
        with open(script, "w") as f:
            f.write(FIRST_PAGE)
        first_page = FIRST_PAGE.replace(":now", "now()::timestamp(3)").replace(":limit", "51")
        rows = psql(url, "-c", f"SELECT count(*) FROM ({first_page.rstrip().rstrip(';')}) AS page")
        assert rows == "51", rows
        served, selected = [], []
        for round_number in range(ROUNDS):
            pair = [lambda: served.append(wrk(address, "/api/deals?limit=50")),
                    lambda: selected.append(run_pgbench(url, script))]
            for step in (pair if round_number % 2 == 0 else reversed(pair)):
                step()
    finally:
        if server:
            server.terminate()
            server.wait()
        psql(ADMIN_URL, "-c", f'DROP DATABASE "{name}" WITH (FORCE)')
        for entry in os.listdir(tmp):
            os.unlink(os.path.join(tmp, entry))
        os.rmdir(tmp)

    med = statistics.median

    def line(label, values, unit):
        print(f"{label:<34}median {med(values):9.0f} {unit:<6} (all: {', '.join(f'{x:.0f}' for x in values)})")

    ratio = med(served) / med(selected)
    print(f"rounds: {ROUNDS} x {SECONDS:.0f} s at concurrency 4; {DEALS} deals; page of 50: {len(body)} bytes of JSON")
    line("GET /api/deals?limit=50", served, "req/s")
    line("pgbench, the same SELECT", selected, "tps")
    print(f"{'deal list/pgbench':<34}{ratio:5.2f}  (target >= 0.80)  {'PASS' if ratio >= 0.8 else 'MISS'}")


if __name__ == "__main__":
    main()
