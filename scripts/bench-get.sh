#!/usr/bin/env bash
# Median wall time of `latch get NAME` (whole process, release build, local server) beside
# `age -d` of a one-secret file, in one run. Usage: scripts/bench-get.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
command -v age >/dev/null || { echo "bench-get: the age tool is required (apt-get install age)" >&2; exit 1; }
BUILD_PATH=${BUILD_PATH:-.build}
swift build -c release --build-path "$BUILD_PATH" --product latch >/dev/null 2>&1
LATCH=$(swift build -c release --build-path "$BUILD_PATH" --show-bin-path)/latch
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
export LATCH_HOME=$WORK/home
"$LATCH" serve --data-dir "$WORK/data" --port 0 --rate-limit 0 >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on http" "$WORK/serve.log" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o "listening on http[^ ]*" "$WORK/serve.log" | head -1 | cut -d' ' -f3)
"$LATCH" init --server "$URL" --token "$(cat "$WORK/data/bootstrap-token")" >/dev/null 2>&1
"$LATCH" vault create bench >/dev/null
printf 'bench-secret-value-0123456789' | "$LATCH" secret set bench token 2>/dev/null
"$LATCH" agent create bench-agent --vault bench --out "$WORK/agent.json" >/dev/null 2>&1
"$LATCH" configure agent --config "$WORK/agent.json" --profile agent 2>/dev/null
age-keygen -o "$WORK/age.key" 2>/dev/null
printf 'bench-secret-value-0123456789' | age -r "$(age-keygen -y "$WORK/age.key")" -o "$WORK/secret.age"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
timeit() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
for _ in $(seq "$RUNS"); do timeit "$LATCH" get TOKEN --profile agent; done | median >"$WORK/latch.us"
for _ in $(seq "$RUNS"); do timeit age -d -i "$WORK/age.key" "$WORK/secret.age"; done | median >"$WORK/age.us"
for _ in $(seq "$RUNS"); do timeit "$LATCH" --version; done | median >"$WORK/start.us"
L=$(cat "$WORK/latch.us"); A=$(cat "$WORK/age.us"); S=$(cat "$WORK/start.us")
echo "runs: $RUNS"
echo "latch get (median):        $((L / 1000)).$(( (L % 1000) / 100 )) ms"
echo "age -d    (median):        $((A / 1000)).$(( (A % 1000) / 100 )) ms"
echo "latch --version (start):   $((S / 1000)).$(( (S % 1000) / 100 )) ms"
LATCH_TIMING=1 "$LATCH" get TOKEN --profile agent 2>&1 >/dev/null | sed 's/^/phases (one run): /'
awk -v l="$L" -v a="$A" 'BEGIN { printf "ratio latch/age:           %.2fx (goal <= 2x)\n", l / a }'
