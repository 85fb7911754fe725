#!/usr/bin/env bash
# What `npm test` needs besides node_modules: PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379 and Chromium at
# /usr/bin/chromium (or TRELLIS_CHROMIUM). Each is started or installed when it is missing and this machine can (root,
# Debian packages); otherwise the run stops at once with one line saying what to install. Vitest's global setup
# (test/support/global-setup.ts) runs this before any test.
set -euo pipefail

pg_url="${TRELLIS_TEST_POSTGRES_URL:-}"
redis_host=127.0.0.1 redis_port=6379
chromium="${TRELLIS_CHROMIUM:-/usr/bin/chromium}"

fail() { echo "trellis tests: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  is_root && command -v apt-get >/dev/null || return 1
  if [ ! -f /var/lib/apt/periodic/trellis-updated ]; then
    apt-get update -qq >/dev/null && mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/trellis-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL (only the local default: a TRELLIS_TEST_POSTGRES_URL elsewhere is the caller's to run)
if [ -z "$pg_url" ]; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    command -v pg_ctlcluster >/dev/null ||
      fail "PostgreSQL is not installed: apt-get install postgresql (tests connect as postgres@127.0.0.1:5432 without a password; TRELLIS_TEST_POSTGRES_URL points elsewhere)"
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] || fail "PostgreSQL has no cluster: pg_createcluster --start 15 main"
    echo "trellis tests: starting PostgreSQL $version" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 ||
      fail "PostgreSQL $version would not start: pg_ctlcluster $version main start"
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
    pg_isready -h 127.0.0.1 -p 5432 -q || fail "PostgreSQL did not come up on 127.0.0.1:5432"
  fi
fi

# Redis
redis_up() { redis-cli -h "$redis_host" -p "$redis_port" ping >/dev/null 2>&1; }
if ! redis_up; then
  command -v redis-server >/dev/null || apt_install redis-server ||
    fail "Redis is not installed: apt-get install redis-server (tests use 127.0.0.1:6379)"
  echo "trellis tests: starting Redis on $redis_host:$redis_port" >&2
  dir="${TMPDIR:-/tmp}/trellis-test-redis"
  mkdir -p "$dir"
  redis-server --daemonize yes --bind "$redis_host" --port "$redis_port" --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" >/dev/null
  for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
  redis_up || fail "Redis did not come up on $redis_host:$redis_port (see $dir/redis.log)"
fi

# Chromium for the page tests
if [ ! -x "$chromium" ]; then
  echo "trellis tests: installing chromium" >&2
  apt_install chromium || fail "Chromium is missing: apt-get install chromium (or set TRELLIS_CHROMIUM)"
  [ -x "$chromium" ] || fail "Chromium is not at $chromium after installing: set TRELLIS_CHROMIUM"
fi
