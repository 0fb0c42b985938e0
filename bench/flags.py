"""Drives bench/flags.sh: OFREP bulk evaluation against a precomputed
answer of the same size, and experiment enrolment against pgbench, each
pair side by side, alternating order each round."""

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
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
CONTEXT = {"targetingKey": "user-4711", "country": "PT", "appVersion": "2.14.1", "plan": "plus",
           "email": "traveller@example.com", "bookings": 3, "tags": ["beach", "city"]}


def url_for(database):
    base, _, query = ADMIN_URL.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


def psql(url, *args):
    result = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, *args],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def fifty_flags():
    """A mix like a real site's: booleans on for everyone, partial
    rollouts, multivariate flags with configs, GrowthBook conditions, and a
    running experiment."""
    conditions = [
        {"country": {"$in": ["PT", "ES", "FR"]}},
        {"appVersion": {"$vgte": "2.10.0"}},
        {"$or": [{"plan": "plus"}, {"bookings": {"$gt": 5}}]},
        {"email": {"$regex": "@example\\.com$"}},
        {"tags": {"$elemMatch": {"$eq": "beach"}}},
    ]
    flags = []
    for i in range(50):
        kind = i % 5
        variants, targeting, rollout, experiment = [], None, 100, False
        if kind == 1:
            rollout = 10 + i
        elif kind == 2:
            variants = [{"id": "control", "weight": 34}, {"id": "blue", "weight": 33, "config": {"color": "#0057b8"}},
                        {"id": "green", "weight": 33, "config": {"color": "#00a86b"}}]
        elif kind == 3:
            targeting = conditions[i % len(conditions)]
        elif kind == 4:
            variants = [{"id": "control", "weight": 50}, {"id": "treatment", "weight": 50, "config": {"steps": 1}}]
            targeting = conditions[(i + 1) % len(conditions)]
            experiment = True
        flags.append((f"flag-{i:02d}", rollout, variants, targeting, experiment))
    return flags


def insert_flags(db_url):
    values = []
    for key, rollout, variants, targeting, experiment in fifty_flags():
        literal = lambda v: "NULL" if v is None else "'" + json.dumps(v).replace("'", "''") + "'"
        values.append(f"('{key}', '{key}', '{key}', true, {rollout}, {literal(variants)}, {literal(targeting)}, "
                      f"{'true' if experiment else 'false'}, {'%s' % (chr(39) + 'running' + chr(39) if experiment else 'NULL')}, now())")
    psql(db_url, "-c", 'INSERT INTO "feature_flags" ("id", "key", "name", "enabled", "rolloutPercentage", "variants", '
                       '"targetSegments", "isExperiment", "experimentStatus", "updatedAt") VALUES ' + ", ".join(values))


def post(address, path, body):
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("POST", path, body, {"content-type": "application/json", "user-agent": BROWSER})
    response = conn.getresponse()
    return response.status, response.read()


def wrk(address, path, lua_path):
    out = subprocess.run(["wrk", "-t", "2", "-c", "4", "-d", f"{int(SECONDS)}s", "-s", lua_path,
                          f"http://{address}{path}"], check=True, capture_output=True, text=True).stdout
    assert "Non-2xx" not in out, out
    return float(out.split("Requests/sec:")[1].split()[0])


def write_bulk_script(path):
    body = json.dumps({"context": CONTEXT})
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.headers["User-Agent"] = "{BROWSER}"\n')


def write_assign_script(path):
    """A new visitor on every request: the session id holds the wrk
    thread's id and a counter."""
    with open(path, "w") as f:
        f.write(f"""
local counter = 0
local prefix = ""
function setup(thread)
  thread:set("prefix", "t" .. tostring(math.random(1, 1e9)))
end
function init(args)
  prefix = wrk.thread:get("prefix") or tostring(math.random(1, 1e9))
end
request = function()
  counter = counter + 1
  local body = '{{"sessionId": "session_' .. prefix .. '_' .. counter .. '", "attributes": {{"country": "PT"}}}}'
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json", ["User-Agent"] = "{BROWSER}"}}, body)
end
""")


def write_pgbench_script(path):
    with open(path, "w") as f:
        f.write('INSERT INTO "experiment_participations" ("id", "flagId", "sessionId", "variant", "assignedAt") '
                "VALUES (gen_random_uuid()::text, 'bench-experiment', 'pg_' || gen_random_uuid()::text, 'control', now());\n")


def run_pgbench(db_url, script_path):
    out = subprocess.run([PGBENCH, "-n", "-c", "4", "-j", "2", "-T", str(int(SECONDS)), "-f", script_path, db_url],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise RuntimeError(out)


def start_server(server_bin, db_url, precomputed):
    server = subprocess.Popen([server_bin], env={**os.environ, "POSTGRES_URL": db_url, "DB_POOL_MAX_SIZE": "4",
                                                 "BENCH_PRECOMPUTED_BODY": precomputed, "RUST_LOG": "warn"},
                              stdout=subprocess.PIPE, text=True)
    return server, server.stdout.readline().strip()


def main():
    migrate_bin, server_bin = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp()
    databases = []

    def database():
        name = f"bench_flags_{uuid.uuid4().hex[:8]}"
        psql(ADMIN_URL, "-c", f'CREATE DATABASE "{name}"')
        databases.append(name)
        url = url_for(name)
        subprocess.run([migrate_bin, "up"], check=True, env={**os.environ, "POSTGRES_URL": url, "RUST_LOG": "warn"},
                       capture_output=True)
        return url

    servers = []
    try:
        # Evaluation: 50 flags; the baseline body is the real answer's bytes.
        eval_url = database()
        insert_flags(eval_url)
        precomputed = os.path.join(tmp, "bulk.json")
        open(precomputed, "w").close()
        server, address = start_server(server_bin, eval_url, precomputed)
        servers.append(server)
        status, answer = post(address, "/ofrep/v1/evaluate/flags", json.dumps({"context": CONTEXT}))
        assert status == 200, answer
        flags = json.loads(answer)["flags"]
        assert len(flags) == 50 and not any("errorCode" in f for f in flags), flags
        reasons = sorted({f["reason"] for f in flags})
        server.terminate()
        server.wait()
        with open(precomputed, "wb") as f:
            f.write(answer)
        server, address = start_server(server_bin, eval_url, precomputed)
        servers.append(server)
        status, same = post(address, "/bench/precomputed", json.dumps({"context": CONTEXT}))
        assert status == 200 and len(same) == len(answer)
        bulk_lua = os.path.join(tmp, "bulk.lua")
        write_bulk_script(bulk_lua)

        # Enrolment: one running experiment, a new visitor per request.
        assign_url = database()
        psql(assign_url, "-c", 'INSERT INTO "feature_flags" ("id", "key", "name", "enabled", "rolloutPercentage", '
                               '"variants", "isExperiment", "experimentStatus", "updatedAt") VALUES '
                               "('bench-experiment', 'bench-experiment', 'Bench', true, 100, "
                               "'[{\"id\": \"control\", \"weight\": 50}, {\"id\": \"treatment\", \"weight\": 50}]', true, 'running', now())")
        assign_server, assign_address = start_server(server_bin, assign_url, precomputed)
        servers.append(assign_server)
        status, answer = post(assign_address, "/api/experiments/assign", json.dumps({"sessionId": "warm-up"}))
        assert status == 200 and json.loads(answer)["assignments"][0]["new"], answer
        assign_lua, pgbench_sql = os.path.join(tmp, "assign.lua"), os.path.join(tmp, "insert.sql")
        write_assign_script(assign_lua)
        write_pgbench_script(pgbench_sql)

        evaluated, precomputed_rps, assigned, inserted = [], [], [], []
        for round_number in range(ROUNDS):
            pair = [lambda: evaluated.append(wrk(address, "/ofrep/v1/evaluate/flags", bulk_lua)),
                    lambda: precomputed_rps.append(wrk(address, "/bench/precomputed", bulk_lua))]
            for step in (pair if round_number % 2 == 0 else reversed(pair)):
                step()
        for round_number in range(ROUNDS):
            pair = [lambda: assigned.append(wrk(assign_address, "/api/experiments/assign", assign_lua)),
                    lambda: inserted.append(run_pgbench(assign_url, pgbench_sql))]
            for step in (pair if round_number % 2 == 0 else reversed(pair)):
                step()
        rows = int(psql(assign_url, "-c", 'SELECT count(*) FROM "experiment_participations" WHERE "sessionId" LIKE \'session_%\''))
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        for name in databases:
            psql(ADMIN_URL, "-c", f'DROP DATABASE "{name}" WITH (FORCE)')
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)

    med = statistics.median

    def line(label, values, unit):
        print(f"{label:<32}median {med(values):9.0f} {unit:<6} (all: {', '.join(f'{x:.0f}' for x in values)})")

    def ratio(label, value, target, note):
        print(f"{label:<32}{value:5.2f}  ({note}; target >= {target:.2f})  {'PASS' if value >= target else 'MISS'}")

    print(f"rounds: {ROUNDS} x {SECONDS:.0f} s at concurrency 4 (wrk); bulk answer {len(same)} bytes, 50 flags, reasons {', '.join(reasons)}")
    line("OFREP bulk, 50 flags", evaluated, "req/s")
    line("precomputed body, same size", precomputed_rps, "req/s")
    line("assign, new visitors", assigned, "req/s")
    line("pgbench participation inserts", inserted, "tps")
    print(f"{'participations stored by assign':<32}{rows}")
    ratio("evaluation/precomputed", med(evaluated) / med(precomputed_rps), 0.5, "same server, same bytes")
    ratio("assign/pgbench", med(assigned) / med(inserted), 0.9, "one participation row each")


if __name__ == "__main__":
    main()
