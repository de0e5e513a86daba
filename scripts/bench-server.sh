#!/usr/bin/env bash
# Load benchmark for `latch serve` on SQLite: GET /healthz vs an authenticated
# GET /api/v1/machine/vault/:id/fields/:fieldId, same release build, one run.
# Prints requests/s, p50/p99 latency for both, their ratio, and the server's peak RSS; then the
# delta-sync goal: one delta sync after one change in a tenant of 100,000 items vs one of 1,000,
# each against a real `latch serve` (latch-server-seed delta-sync; LATCH_BENCH_DELTA=0 skips it).
#
#   scripts/bench-server.sh [DURATION_SECONDS] [CONNECTIONS]     (defaults 10, 16)
#
# LATCH_BENCH_ROUNDS (default 3): the two loads alternate that many times; medians are reported.
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

ROUNDS="${LATCH_BENCH_ROUNDS:-3}"
run() { # url header(or empty) -> "rps p50 p99 non2xx"
  local out
  if [ -n "$2" ]; then out=$(wrk -t$THREADS -c"$CONNS" -d"${DURATION}s" --latency -H "$2" "$1"); else out=$(wrk -t$THREADS -c"$CONNS" -d"${DURATION}s" --latency "$1"); fi
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(echo "$out" | awk '$1=="50%" {print $2}') $(echo "$out" | awk '$1=="99%" {print $2}') $(echo "$out" | awk '/Non-2xx/ {print $NF}' | grep . || echo 0)"
}
# The two loads alternate for ROUNDS rounds (this machine's rate swings by 15% or more from one
# run to the next); each round's ratio is printed, and the medians decide.
echo "latch serve load benchmark: ${DURATION}s each, $CONNS connections, $THREADS wrk threads, $ROUNDS alternating rounds, SQLite (WAL, synchronous=FULL; reads audited through the read-audit journal)"
: > "$WORK/rounds"
. scripts/steal.sh
STAT0=$(steal_mark)
for r in $(seq 1 "$ROUNDS"); do
  read -r HR HP50 HP99 HN <<< "$(run "http://127.0.0.1:$PORT/healthz" "")"
  read -r FR FP50 FP99 FN <<< "$(run "$FIELD_URL" "X-API-Key: $API_KEY")"
  ratio=$(awk -v a="$FR" -v b="$HR" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  printf '  round %d: healthz %10s req/s (p50 %s, p99 %s)   field %10s req/s (p50 %s, p99 %s, non-2xx %s)   ratio %s\n' \
    "$r" "$HR" "$HP50" "$HP99" "$FR" "$FP50" "$FP99" "$FN" "$ratio"
  echo "$HR $FR $ratio $FP99 $HP99" >> "$WORK/rounds"
done
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }'; }
RPS_H=$(awk '{print $1}' "$WORK/rounds" | median)
RPS_F=$(awk '{print $2}' "$WORK/rounds" | median)
RATIO=$(awk '{print $3}' "$WORK/rounds" | median)
P99_F="$(awk '{print $4}' "$WORK/rounds" | ms | sort -g | tail -1) ms"
printf '%-22s %12s req/s   (median of %d)\n' "GET /healthz" "$RPS_H" "$ROUNDS"
printf '%-22s %12s req/s   (median of %d)\n' "GET field (auth)" "$RPS_F" "$ROUNDS"
# On a shared VM the hypervisor can take a large share of the cores for minutes ("steal"), or
# the whole machine can slow several-fold between rounds; the figures then mean little. Say so.
STEAL=$(steal_percent "$STAT0")
SWING=$(awk '{ if (min == "" || $1 < min) min = $1; if ($1 > max) max = $1 } END { if (min > 0) printf "%.2f", max / min; else print "inf" }' "$WORK/rounds")
echo "machine: ${STEAL}% of CPU time stolen by the hypervisor during the rounds; /healthz varied ${SWING}x between rounds"
if [ "$STEAL" -gt 10 ] || awk -v s="$SWING" 'BEGIN { exit !(s == "inf" || s > 1.5) }'; then
  echo "WARNING: the machine was not steady (over 10% stolen, or /healthz moved over 1.5x); these figures are not comparable, run again" >&2
fi
RSS=$(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/$SERVER/status")
echo "field/healthz throughput ratio: $RATIO   (median of the rounds' ratios; goal >= 0.5)"
echo "field read p99: $P99_F   (the worst round's; goal <= 5 ms)"
echo "server peak RSS: $RSS   (goal <= 64 MB)"
if [ "${LATCH_BENCH_DELTA:-1}" != 0 ]; then
  echo "delta sync after one change, tenant of 100,000 items vs 1,000 (seeding takes about a minute):"
  "$BIN/latch-server-seed" delta-sync "$BIN/latch"
fi
