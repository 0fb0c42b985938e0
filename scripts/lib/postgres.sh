# Shared by scripts/dev and .ci/run: find or install the PostgreSQL server
# binaries and run a local cluster. PostgreSQL refuses to run as root, so as
# root the server runs as the `postgres` OS user.

pg_bin_dir() {
  if [ -n "${PG_BIN_DIR:-}" ]; then echo "$PG_BIN_DIR"; return; fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then echo "$newest"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  return 1
}

ensure_postgres_binaries() {
  if pg_bin_dir >/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing PostgreSQL server binaries (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql postgresql-client >/dev/null
  else
    echo "PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql) or set PG_BIN_DIR" >&2
    exit 1
  fi
}

as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_cluster DIR PORT: initialises DIR on first use, starts it unless running.
start_cluster() {
  local dir="$1" port="$2" bin
  bin=$(pg_bin_dir)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_server_user "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
  fi
  if ! as_server_user "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
  fi
}

psql_admin() {
  local port="$1"; shift
  psql -X -q -At -v ON_ERROR_STOP=1 -d "postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable" "$@"
}

# Sets BENCH_POSTGRES_URL to a throwaway cluster with PostgreSQL's default
# durability, unless it is already set; the cluster is removed on exit.
bench_server() {
  [ -n "${BENCH_POSTGRES_URL:-}" ] && return
  ensure_postgres_binaries
  bench_work=$(mktemp -d)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  trap 'as_server_user "$(pg_bin_dir)/pg_ctl" -D "$bench_work/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$bench_work"' EXIT
  start_cluster "$bench_work" "$port"
  BENCH_POSTGRES_URL="postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable"
}
