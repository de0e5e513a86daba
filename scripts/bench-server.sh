#!/usr/bin/env bash
# Load benchmark for `latch serve` on SQLite: GET /healthz vs an authenticated
# GET /api/v1/machine/vault/:id/fields/:fieldId, same release build, one run.
# Prints requests/s, p50/p99 latency for both, their ratio, and the server's peak RSS; then the
# delta-sync goal: one delta sync after one change in a tenant of 100,000 items vs one of 1,000,
# each against a real `latch serve` (latch-server-seed delta-sync; LATCH_BENCH_DELTA=0 skips it).
#
#   scripts/bench-server.sh [DURATION_SECONDS] [CONNECTIONS]     (defaults 10, 16)
#
# Needs wrk (Debian package `wrk`; installed when missing and running as root) and curl.
# The rate limit is turned off for the run (--rate-limit 0); the failed-auth limit stays on.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
DURATION="${1:-10}"
CONNS="${2:-16}"
THREADS=2

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  fi
  command -v wrk >/dev/null || { echo "bench-server: wrk is missing (apt-get install wrk)" >&2; exit 1; }
fi
command -v curl >/dev/null || { echo "bench-server: curl is missing (apt-get install curl)" >&2; exit 1; }

echo "building release (latchd, latch-server-seed)..." >&2
swift build -c release --product latchd >&2
swift build -c release --product latch-server-seed >&2
BIN="$(swift build -c release --show-bin-path)"

WORK="$(mktemp -d)"
PORT="${LATCH_BENCH_PORT:-18585}"
"$BIN/latchd" serve --data-dir "$WORK/data" --port "$PORT" --rate-limit 0 > "$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN="$(cat "$WORK/data/bootstrap-token")"
eval "$("$BIN/latch-server-seed" "http://127.0.0.1:$PORT" "$TOKEN")"

FIELD_URL="http://127.0.0.1:$PORT/api/v1/machine/vault/$VAULT_ID/fields/$FIELD_ID"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $API_KEY" "$FIELD_URL")
[ "$code" = 200 ] || { echo "bench-server: field read answered $code" >&2; exit 1; }

run() { # name url header(or empty) var
  local out
  if [ -n "$3" ]; then out=$(wrk -t$THREADS -c"$CONNS" -d"${DURATION}s" --latency -H "$3" "$2"); else out=$(wrk -t$THREADS -c"$CONNS" -d"${DURATION}s" --latency "$2"); fi
  local rps p50 p99 non2xx
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf '%-22s %12s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
  eval "RPS_$4=$rps"
  eval "P99_$4=$p99"
}

echo "latch serve load benchmark: ${DURATION}s each, $CONNS connections, $THREADS wrk threads, SQLite (WAL, synchronous=FULL; reads audited through the read-audit journal)"
run "GET /healthz" "http://127.0.0.1:$PORT/healthz" "" H
run "GET field (auth)" "$FIELD_URL" "X-API-Key: $API_KEY" F
RATIO=$(awk -v a="$RPS_F" -v b="$RPS_H" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
RSS=$(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/$SERVER/status")
echo "field/healthz throughput ratio: $RATIO   (goal >= 0.5)"
echo "field read p99: $P99_F   (goal <= 5 ms)"
echo "server peak RSS: $RSS   (goal <= 64 MB)"
if [ "${LATCH_BENCH_DELTA:-1}" != 0 ]; then
  echo "delta sync after one change, tenant of 100,000 items vs 1,000 (seeding takes about a minute):"
  "$BIN/latch-server-seed" delta-sync "$BIN/latch"
fi
