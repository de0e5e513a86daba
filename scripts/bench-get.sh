#!/usr/bin/env bash
# Median wall time of `latch get NAME` (whole process, release build, local server) beside
# `age -d` of a one-secret file, in one run. Usage: scripts/bench-get.sh [RUNS]
# BUILD_PATH and BUILD_FLAGS choose the build, e.g. a static Swift runtime in its own scratch path:
#   BUILD_PATH=/tmp/latch-static BUILD_FLAGS=--static-swift-stdlib scripts/bench-get.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
command -v age >/dev/null || { echo "bench-get: the age tool is required (apt-get install age)" >&2; exit 1; }
BUILD_PATH=${BUILD_PATH:-.build}
# shellcheck disable=SC2086  # BUILD_FLAGS is a list of flags
swift build -c release --build-path "$BUILD_PATH" ${BUILD_FLAGS:-} --product latch >/dev/null 2>&1
# shellcheck disable=SC2086
swift build -c release --build-path "$BUILD_PATH" ${BUILD_FLAGS:-} --product latchd >/dev/null 2>&1
# shellcheck disable=SC2086
LATCH=$(swift build -c release --build-path "$BUILD_PATH" ${BUILD_FLAGS:-} --show-bin-path)/latch
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
export LATCH_HOME=$WORK/home
"${LATCH}d" serve --data-dir "$WORK/data" --port 0 --rate-limit 0 >"$WORK/serve.log" 2>&1 &
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

median() { sort -n | awk '{a[NR]=$1} END {printf "%d\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Microseconds from bash's own clock ($EPOCHREALTIME, bash 5): no `date` process around each
# run, whose start-up would be counted in every figure and shrink the ratio.
timeit() { local s=${EPOCHREALTIME/[.,]/}; "$@" >/dev/null 2>&1; local e=${EPOCHREALTIME/[.,]/}; echo $((10#$e - 10#$s)); }
# The same for a command that is meant to fail (exit status ignored).
timefail() { local s=${EPOCHREALTIME/[.,]/}; "$@" >/dev/null 2>&1 || true; local e=${EPOCHREALTIME/[.,]/}; echo $((10#$e - 10#$s)); }
# "start+exit" is the same `latch get` in an empty LATCH_HOME, which fails as soon as it looks for
# the profile: process start, the quick path's argument parsing and exit, what every get pays.
# Interleaved (one of each per round), so that a machine that slows down or speeds up during the
# run weighs on all of them alike. "cold" is a `latch get` without the profile's unwrap memo (what
# the first run after `configure agent`, or after a DEK rotation, costs: the RSA key's parse and
# one RSA-OAEP unwrap); it writes the memo again for the next round's warm run.
MEMO="$LATCH_HOME/profiles/agent/unwrap-memo"
for _ in $(seq "$RUNS"); do
    timeit "$LATCH" get TOKEN --profile agent >>"$WORK/latch.all"
    timeit age -d -i "$WORK/age.key" "$WORK/secret.age" >>"$WORK/age.all"
    LATCH_HOME="$WORK/empty" timefail "$LATCH" get TOKEN --profile agent >>"$WORK/start.all"
    rm -f "$MEMO"
    timeit "$LATCH" get TOKEN --profile agent >>"$WORK/cold.all"
done
for k in latch age start cold; do median <"$WORK/$k.all" >"$WORK/$k.us"; done
L=$(cat "$WORK/latch.us"); A=$(cat "$WORK/age.us"); S=$(cat "$WORK/start.us"); C=$(cat "$WORK/cold.us")
echo "runs: $RUNS"
echo "latch get (median):        $((L / 1000)).$(( (L % 1000) / 100 )) ms"
echo "age -d    (median):        $((A / 1000)).$(( (A % 1000) / 100 )) ms"
echo "start+exit (no profile):   $((S / 1000)).$(( (S % 1000) / 100 )) ms   (the same latch get in an empty LATCH_HOME: fails at once)"
echo "latch get, cold (median):  $((C / 1000)).$(( (C % 1000) / 100 )) ms   (no unwrap memo: ratio $(awk -v c="$C" -v a="$A" 'BEGIN { printf "%.2fx", c / a }'))"
# In-client phases (LATCH_TIMING=1): each phase's median over 9 runs.
for _ in $(seq 9); do LATCH_TIMING=1 "$LATCH" get TOKEN --profile agent 2>&1 >/dev/null; done >"$WORK/phases"
PHASES=$(tr ' ' '\n' <"$WORK/phases" | grep = | awk -F= '{ v[$1] = v[$1] " " $2 } END {
    split("keyLoad http verify+decrypt log total-in-client requests", keys, " ")
    for (x = 1; x in keys; x++) { k = keys[x]; if (!(k in v)) continue; n = split(v[k], a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        printf "%s=%s ", k, a[int((n + 1) / 2)] } }')
echo "phases (median of 9, ms):  $PHASES"
# Shares of the latch get median: process start and exit (the start+exit median), the
# in-client phases, and the rest (configuration and profile files, the request's set-up, JSON
# decoding, state files). Medians of separate runs, so on a busy machine they need not add up.
echo "$PHASES" | tr ' ' '\n' | awk -F= -v l="$L" -v s="$S" '
    /^(keyLoad|http|verify\+decrypt|log)=/ { v[$1] = $2; sum += $2 }
    END {
        lm = l / 1000; sm = s / 1000
        printf "shares of latch get:       start+exit %.0f%%, keyLoad %.0f%%, http %.0f%%, crypto (verify+decrypt) %.0f%%, log %.0f%%, rest %.0f%%\n",
            100 * sm / lm, 100 * v["keyLoad"] / lm, 100 * v["http"] / lm, 100 * v["verify+decrypt"] / lm, 100 * v["log"] / lm,
            100 * (lm - sm - sum) / lm
    }'
awk -v l="$L" -v a="$A" 'BEGIN { printf "ratio latch/age:           %.2fx (goal <= 2x)\n", l / a }'
