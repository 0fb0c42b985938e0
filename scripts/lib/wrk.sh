# Shared by the HTTP benchmarks (bench/intake.sh, bench/flags.sh): wrk
# drives their rounds (a Python client tops out near 3k requests/s). Installs
# it with apt when missing and running as root.
ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk not found: install it (Debian: apt-get install wrk)" >&2
    exit 1
  fi
}
