#!/usr/bin/env bash
# Compares two `latchd` builds on this noisy machine by running them side by side: both serve at
# once (SQLite, each its own data dir, rate limit off), each seeded as bench-server.sh seeds, and
# each round loads both with the authenticated field read at the same time (one wrk per server,
# 1 thread, CONNECTIONS/2 connections), so both see the same minute of the machine. Prints each
# round's requests/s and B/A, then the mean and the range. Run A against A first to see the
# spread a build has against itself. Each round also gives each server's CPU time per request
# (from /proc/PID/stat): the work a build does per read, which moves far less between rounds than
# throughput does here (a build against itself: 0.98-1.01 where throughput gave 0.86-1.02).
#
#   scripts/bench-ab.sh A_LATCHD B_LATCHD [SECONDS] [ROUNDS] [CONNECTIONS]   (defaults 5, 8, 16)
#
# Needs wrk and curl, and latch-server-seed (built in release mode here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
[ $# -ge 2 ] || { echo "usage: scripts/bench-ab.sh A_LATCHD B_LATCHD [SECONDS] [ROUNDS] [CONNECTIONS]" >&2; exit 64; }
A="$1"; B="$2"; DURATION="${3:-5}"; ROUNDS="${4:-8}"; CONNS="${5:-16}"
for f in "$A" "$B"; do [ -x "$f" ] || { echo "bench-ab: $f is not an executable latchd" >&2; exit 64; }; done
command -v wrk >/dev/null || { echo "bench-ab: wrk is missing (apt-get install wrk)" >&2; exit 1; }
BIN="$(swift build -c release --show-bin-path)"
[ -x "$BIN/latch-server-seed" ] || swift build -c release --product latch-server-seed >&2

WORK="$(mktemp -d)"
PA="${LATCH_BENCH_PORT:-18685}"; PB=$((PA + 1))
"$A" serve --data-dir "$WORK/a" --port "$PA" --rate-limit 0 > "$WORK/a.log" 2>&1 & SA=$!
"$B" serve --data-dir "$WORK/b" --port "$PB" --rate-limit 0 > "$WORK/b.log" 2>&1 & SB=$!
trap 'kill -TERM $SA $SB 2>/dev/null || true; wait $SA $SB 2>/dev/null || true; rm -rf "$WORK"' EXIT
for p in "$PA" "$PB"; do
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
seed() { # port dir -> "url key"
  eval "$("$BIN/latch-server-seed" "http://127.0.0.1:$1" "$(cat "$2/bootstrap-token")")"
  echo "http://127.0.0.1:$1/api/v1/machine/vault/$VAULT_ID/fields/$FIELD_ID $API_KEY"
}
read -r FA KA <<< "$(seed "$PA" "$WORK/a")"
read -r FB KB <<< "$(seed "$PB" "$WORK/b")"
half=$((CONNS / 2))
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime of the server
both() { # seconds -> "rpsA rpsB"
  wrk -t1 -c"$half" -d"$1s" -H "X-API-Key: $KA" "$FA" > "$WORK/wa" & local w=$!
  wrk -t1 -c"$half" -d"$1s" -H "X-API-Key: $KB" "$FB" > "$WORK/wb"
  wait $w
  echo "$(awk '/Requests\/sec/ {print $2}' "$WORK/wa") $(awk '/Requests\/sec/ {print $2}' "$WORK/wb")"
}
both 2 > /dev/null   # warm-up
echo "side by side: A=$A B=$B; field reads, ${DURATION}s rounds, $half connections each"
: > "$WORK/ratios"; : > "$WORK/cpu"
for r in $(seq 1 "$ROUNDS"); do
  ta=$(cputicks $SA); tb=$(cputicks $SB)
  read -r ra rb <<< "$(both "$DURATION")"
  ta=$(( $(cputicks $SA) - ta )); tb=$(( $(cputicks $SB) - tb ))
  awk -v r="$r" -v a="$ra" -v b="$rb" -v ta="$ta" -v tb="$tb" -v us="$TICK_US" -v d="$DURATION" 'BEGIN {
    ca = ta * us / (a * d); cb = tb * us / (b * d)
    printf "  round %d: A %9.0f  B %9.0f  B/A %.3f   CPU per request A %5.1f us  B %5.1f us  B/A %.3f\n", r, a, b, b / a, ca, cb, cb / ca
    print b / a >> "'"$WORK/ratios"'"; print cb / ca >> "'"$WORK/cpu"'" }'
done
sort -n "$WORK/cpu" | awk '{ v[NR] = $1; s += $1 } END { printf "CPU per request B/A: mean %.3f, range %.3f-%.3f\n", s / NR, v[1], v[NR] }'
sort -n "$WORK/ratios" | awk '{ v[NR] = $1; s += $1 } END { printf "B/A: mean %.3f, range %.3f-%.3f over %d rounds\n", s / NR, v[1], v[NR], NR }'
