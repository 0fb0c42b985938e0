"""Drives bench/coldstart.sh: each function's real bootstrap started cold
against a Lambda Runtime API emulator, side by side with the smallest
lambda_http function built the same way (the floor), rounds alternating.

For every start, as Lambda reports them:
  - init: from the process's start to its first `GET .../invocation/next`
    (Lambda's Init Duration: what runs before the handler can take work);
  - first answer: from the process's start to the response of its first
    invocation, the database connection included (a real request: a health
    check, a beacon, an admin call, a deal list, a migration status).
The ratio of medians to the floor's is the figure; the target is an init
within 2x the floor's.

The emulator implements the runtime API's four calls
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
"""

import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

ROUNDS = int(os.environ.get("COLDSTART_ROUNDS", "15"))


class Emulator(http.server.ThreadingHTTPServer):
    """Serves one invocation to one process and records when it asked and answered."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = None
        self.first_next = None
        self.answered = None
        self.answer = None
        self.served = threading.Event()
        self.done = threading.Event()

    def handle_error(self, request, client_address):
        # A bootstrap is killed after its answer while its next long poll is
        # open: the broken connection is expected, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def reset(self, event):
        self.event = event
        self.first_next = None
        self.answered = None
        self.answer = None
        self.served.clear()
        self.done.clear()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        if self.path.endswith("/invocation/next"):
            if server.first_next is None:
                server.first_next = time.perf_counter()
            if server.served.is_set():
                # Keep the second poll waiting: the process is measured once.
                server.done.wait(30)
                self.send_response(500)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            server.served.set()
            body = json.dumps(server.event).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("lambda-runtime-aws-request-id", str(uuid.uuid4()))
            self.send_header("lambda-runtime-deadline-ms", str(int(time.time() * 1000) + 30_000))
            self.send_header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
            self.send_header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        payload = self.rfile.read(length)
        server = self.server
        if "/response" in self.path or "/error" in self.path:
            server.answered = time.perf_counter()
            server.answer = (self.path, payload)
            server.done.set()
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()


def http_event(method, path, body=None, headers=None):
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "bench.example", "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
                    **(headers or {})},
        "requestContext": {"accountId": "000000000000", "apiId": "bench", "domainName": "bench.example",
                           "domainPrefix": "bench", "requestId": str(uuid.uuid4()), "routeKey": "$default",
                           "stage": "$default", "time": "30/Nov/2026:12:00:00 +0000", "timeEpoch": 0,
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"}},
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = body
    return event


def start(binary, env, event):
    # An emulator of its own for each process: a poll the previous process
    # sent just before it was killed can still be queued on a shared one,
    # and would take this process's event.
    emulator = Emulator()
    emulator.reset(event)
    threading.Thread(target=emulator.serve_forever, daemon=True).start()
    try:
        return run(binary, emulator, env)
    finally:
        emulator.done.set()
        emulator.shutdown()
        emulator.server_close()


def run(binary, emulator, env):
    environment = {
        **env,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{emulator.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH": "true", "RUST_LOG": "off",
    }
    started = time.perf_counter()
    process = subprocess.Popen([binary], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    answered = emulator.done.wait(30)
    process.kill()
    process.wait()
    if not answered or emulator.first_next is None:
        raise RuntimeError(f"{binary}: no answer: {process.stderr.read().decode()[:500]}")
    path, payload = emulator.answer
    if "/error" in path:
        raise RuntimeError(f"{binary}: answered an error: {payload[:300]}")
    return (emulator.first_next - started) * 1000, (emulator.answered - started) * 1000, payload


def main():
    target_dir, database_url = sys.argv[1], sys.argv[2]
    env = {"POSTGRES_URL": database_url, "NEXTAUTH_SECRET": "a-secret-for-the-cold-start-benchmark",
           "PATH": os.environ.get("PATH", "")}
    functions = {
        "floor": ("floor", http_event("GET", "/")),
        "health": ("health", http_event("GET", "/api/health")),
        "events": ("events", http_event("POST", "/api/analytics/events",
                                        json.dumps({"sessionId": "s1", "eventType": "page_view"}),
                                        {"content-type": "application/json"})),
        "admin": ("admin", http_event("GET", "/api/admin/audit/verify")),
        "cms": ("cms", http_event("GET", "/api/deals")),
        "migrate": ("migrate", {"command": "status"}),
    }
    # COLDSTART_EXTRA=health-before=<path>,...: other builds of a function
    # (from another tree), sent the same event as the function the label
    # starts with, measured in the same rounds.
    for extra in filter(None, os.environ.get("COLDSTART_EXTRA", "").split(",")):
        label, path = extra.split("=", 1)
        functions[label] = (os.path.abspath(path), functions[label.split("-")[0]][1])
    init, first = {name: [] for name in functions}, {name: [] for name in functions}
    for round_number in range(ROUNDS):
        order = list(functions) if round_number % 2 == 0 else list(reversed(functions))
        for name in order:
            binary, event = functions[name]
            i, f, _ = start(os.path.join(target_dir, binary), env, event)
            init[name].append(i)
            first[name].append(f)
    med = statistics.median
    floor_init, floor_first = med(init["floor"]), med(first["floor"])
    print(f"rounds: {ROUNDS}; each start a new process; medians (ms), ratio to the floor's")
    print(f"{'function':<10}{'init':>8}{'x floor':>9}{'first answer':>14}{'x floor':>9}  size")
    for name in functions:
        size = os.path.getsize(os.path.join(target_dir, functions[name][0])) / 1e6
        print(f"{name:<10}{med(init[name]):8.2f}{med(init[name]) / floor_init:9.2f}"
              f"{med(first[name]):14.2f}{med(first[name]) / floor_first:9.2f}  {size:.1f} MB"
              f"  {'PASS' if med(init[name]) <= 2 * floor_init else 'MISS'}")


if __name__ == "__main__":
    main()
