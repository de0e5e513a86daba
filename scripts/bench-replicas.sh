#!/usr/bin/env bash
# Load benchmark for issue 7: `latch serve` on SQLite beside `latch serve --database-url
# postgres://...` with one replica and with two replicas sharing one database, same release
# build, one run. For each configuration: authenticated field reads/s (wrk on
# GET /api/v1/machine/vault/:id/fields/:fieldId; with two replicas one wrk per replica at the
# same time, half the connections each, figures summed) at each connection count of a list, and
# signed field writes/s (latch-bench load writes: one vault per writer, pre-signed item +
# summary checkpoints, PATCH /api/v1/machine/vault-item/:id/update; conflicts and errors
# counted apart). A configuration's read throughput is its best rate over the connection
# counts: wrk keeps a fixed number of requests in flight, so with too few connections it
# measures a server's latency rather than what it can serve (a PostgreSQL replica's reads each
# wait for one round trip to the database; SQLite's do not). Prints a table and the ratios,
# per connection count and of the throughputs: PostgreSQL 1 replica / SQLite (reads, goal >=
# 0.5) and 2 replicas / 1 replica (goal > 1: the second replica adds throughput); for reads,
# also the CPU time per read of the servers and of the PostgreSQL processes on this machine, and
# the share of CPU time the hypervisor stole, per configuration.
#
#   scripts/bench-replicas.sh [DURATION_SECONDS] [CONNECTIONS,...]     (defaults 10, 16,32,64)
#
# PostgreSQL: LATCH_BENCH_DATABASE_URL (postgres://USER@HOST:PORT/DB?sslmode=disable); each
# configuration gets a fresh schema in it (schema=latch_bench_<random>, dropped at the end when
# psql is on PATH). Unset: a throwaway cluster is started in a temp dir (initdb from the
# postgresql package, as .ci/run does) and removed at exit.
# LATCH_BENCH_WRITERS (default 8) concurrent writers, LATCH_BENCH_WRITES (default 100) writes
# each per round; LATCH_BENCH_ROUNDS (default 3) rounds, each measuring every configuration in
# turn at every connection count (the table shows medians). LATCH_BENCH_PORT (default 18591) is
# the first of four loopback ports used.
# Everything (servers, PostgreSQL, wrk, the writer) shares this machine's cores: the ratios say
# how the configurations compare here, not how they scale on separate machines.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
DURATION="${1:-10}"
CONNS_LIST="${2:-16,32,64}"
WRITERS="${LATCH_BENCH_WRITERS:-8}"
WRITES="${LATCH_BENCH_WRITES:-100}"
PORT0="${LATCH_BENCH_PORT:-18591}"
ROUNDS="${LATCH_BENCH_ROUNDS:-3}"

die() { echo "bench-replicas: $*" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  fi
  command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
fi
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
IFS=, read -r -a CONNS_ALL <<< "$CONNS_LIST"
[ "${#CONNS_ALL[@]}" -gt 0 ] || die "CONNECTIONS is empty: give one or more counts, e.g. 16,32,64"
for c in "${CONNS_ALL[@]}"; do
  [[ "$c" =~ ^[0-9]+$ ]] && [ "$c" -ge 2 ] || die "connection count '$c' is not a whole number of at least 2 (two replicas get half each): give e.g. 16,32,64"
done

WORK="$(mktemp -d)"
PIDS=()
SCHEMAS=()
PGRUN=()
PGDIR=""
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${DBURL:-}" ] && [ -z "$PGDIR" ] && command -v psql >/dev/null; then
    for s in "${SCHEMAS[@]}"; do psql -q "$DBURL" -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done
  fi
  if [ -n "$PGDIR" ]; then
    "${PGRUN[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# PostgreSQL: the given URL, or a throwaway cluster.
DBURL="${LATCH_BENCH_DATABASE_URL:-}"
if [ -z "$DBURL" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || die "LATCH_BENCH_DATABASE_URL is not set and no PostgreSQL is installed to start a throwaway one (apt-get install postgresql, or set LATCH_BENCH_DATABASE_URL=postgres://USER@HOST:PORT/DB?sslmode=disable)"
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PGDIR=$(mktemp -d /tmp/latch-bench-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PGDIR"; PGRUN=(runuser -u postgres --); fi
  pgport=""
  for p in $(seq 15642 15842); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then pgport=$p; break; fi
  done
  [ -n "$pgport" ] || die "no free loopback port for PostgreSQL in 15642-15842"
  "${PGRUN[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U latch --auth=trust -E UTF8 --no-locale >"$PGDIR/initdb.log" 2>&1 \
    || { cat "$PGDIR/initdb.log" >&2; die "initdb failed"; }
  "${PGRUN[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
    -o "-p $pgport -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null \
    || { cat "$PGDIR/server.log" >&2; die "PostgreSQL did not start"; }
  "${PGRUN[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$pgport" -U latch latch_bench
  DBURL="postgres://latch@127.0.0.1:$pgport/latch_bench?sslmode=disable"
  PGVERSION="$("$PGBIN/postgres" --version | awk '{print $3}') (throwaway cluster, default settings)"
else
  PGVERSION="$(psql -XAtq "$DBURL" -c 'SHOW server_version' 2>/dev/null || echo '?') (LATCH_BENCH_DATABASE_URL)"
fi
with_schema() { # url schema
  case "$1" in *\?*) echo "$1&schema=$2" ;; *) echo "$1?schema=$2" ;; esac
}

echo "building release (latchd, latch-bench)..." >&2
swift build -c release --product latchd >&2
swift build -c release --product latch-bench >&2
BIN="$(swift build -c release --show-bin-path)"

# start NAME PORT [database-url [log-key-file]]: a `latch serve` in the background.
start() {
  local name=$1 port=$2 url=${3:-} logkey=${4:-}
  mkdir -p "$WORK/$name"
  local args=(serve --host 127.0.0.1 --port "$port" --data-dir "$WORK/$name/data" --rate-limit 0)
  [ -n "$url" ] && args+=(--database-url "$url")
  env -u LATCH_DATABASE_URL LATCH_HOME="$WORK/$name" ${logkey:+LATCH_LOG_KEY_FILE="$logkey"} \
    "$BIN/latchd" "${args[@]}" > "$WORK/$name/serve.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$WORK/$name/serve.log" >&2; die "latch serve ($name) exited"; }
    sleep 0.1
  done
  cat "$WORK/$name/serve.log" >&2; die "latch serve ($name) did not answer /healthz within 30 s"
}
stop_all() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
bootstrap_token() { # name
  for _ in $(seq 1 100); do [ -s "$WORK/$1/data/bootstrap-token" ] && break; sleep 0.1; done
  cat "$WORK/$1/data/bootstrap-token"
}

# wrk_run URL CONNS THREADS APIKEY -> "rps p99_ms non2xx"
wrk_run() {
  local out rps p99 non2xx
  out=$(wrk -t"$3" -c"$2" -d"${DURATION}s" --latency -H "X-API-Key: $4" "$1")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 }; printf "%.2f", v }')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "$rps $p99 ${non2xx:-0}"
}

# seed KEY BASE TOKEN BASES: bootstrap through BASE, one field to read; remember its ids.
seed() {
  local API_KEY VAULT_ID FIELD_ID
  eval "$("$BIN/latch-bench" load seed "$2" "$3" "$WORK/state.$1")"
  eval "KEY_$1='$API_KEY'; PATH_$1='/api/v1/machine/vault/$VAULT_ID/fields/$FIELD_ID'; BASES_$1='$4'"
}
check() { # KEY: every base answers the field read
  local key=$1 b code; local -a B; IFS=, read -r -a B <<< "$(eval echo "\$BASES_$key")"
  for b in "${B[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $(eval echo "\$KEY_$key")" "$b$(eval echo "\$PATH_$key")")
    [ "$code" = 200 ] || die "field read on $b answered $code"
  done
}
# reads KEY CONNS: wrk on every base at once (CONNS split between them, 2 threads in all),
# summed; the figures go to RD_KEY_CONNS and the like.
reads() {
  local key=$1 conns=$2 v="$1_$2" n i=0 f r p x rps=0 p99=0 non2xx=0 mark srv0 pg0 srv1 pg1; local -a B wrks=()
  IFS=, read -r -a B <<< "$(eval echo "\$BASES_$key")"; n=${#B[@]}
  mark=$(steal_mark); srv0=$(cpu_ticks "$(eval echo "\$SRV_$key")"); pg0=$(pg_ticks)
  for b in "${B[@]}"; do
    wrk_run "$b$(eval echo "\$PATH_$key")" $((conns / n)) $((2 / n)) "$(eval echo "\$KEY_$key")" > "$WORK/wrk.$key.$i" &
    wrks+=($!); i=$((i + 1))
  done
  for j in "${wrks[@]}"; do wait "$j" || die "wrk failed ($key)"; done
  for f in "$WORK"/wrk."$key".*; do
    read -r r p x < "$f"
    rps=$(awk -v a="$rps" -v b="$r" 'BEGIN { printf "%.1f", a + b }')
    p99=$(awk -v a="$p99" -v b="$p" 'BEGIN { printf "%.2f", (b > a ? b : a) }')
    non2xx=$((non2xx + x))
  done
  rm -f "$WORK"/wrk."$key".*
  srv1=$(cpu_ticks "$(eval echo "\$SRV_$key")"); pg1=$(pg_ticks)
  eval "RD_$v+=' $rps'; P99_$v+=' $p99'; NON2XX_$v=\$((\${NON2XX_$v:-0} + $non2xx))"
  eval "CPUS_$v+=' $(per_read $((srv1 - srv0)) "$rps")'; CPUP_$v+=' $(per_read $((pg1 - pg0)) "$rps")'; ST_$v+=' $(steal_percent "$mark")'"
}
# CPU time (user + system, in clock ticks) of the given processes, and of every PostgreSQL
# process on this machine (none when LATCH_BENCH_DATABASE_URL names another host); for
# PostgreSQL also the time of children that have exited (a backend, an autovacuum worker),
# which the postmaster's cutime and cstime hold once it has reaped them.
cpu_ticks() { local t=0 p; for p in $1; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
pg_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" { t += $14 + $15 + $16 + $17 } END { print t + 0 }'; }
HZ=$(getconf CLK_TCK)
per_read() { awk -v t="$1" -v r="$2" -v d="$DURATION" -v hz="$HZ" 'BEGIN { if (r > 0) printf "%.0f", t * 1e6 / hz / (r * d); else print 0 }'; }
# writes KEY: latch-bench load writes against the same bases (new vaults each round).
writes() {
  local key=$1 w WRITES_OK WRITE_CONFLICTS WRITE_ERRORS WRITE_SECONDS WRITES_PER_S
  w=$("$BIN/latch-bench" load writes "$WORK/state.$key" "$(eval echo "\$BASES_$key")" --writers "$WRITERS" --writes "$WRITES") \
    || die "write load failed ($key)"
  eval "$w"
  eval "WR_$key+=' $WRITES_PER_S'; WOK_$key=\$((\${WOK_$key:-0} + $WRITES_OK)); WCONF_$key=\$((\${WCONF_$key:-0} + $WRITE_CONFLICTS)); WERR_$key=\$((\${WERR_$key:-0} + $WRITE_ERRORS))"
}
median() { echo "$1" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "latch serve: SQLite vs PostgreSQL $PGVERSION, 1 and 2 replicas, $ROUNDS interleaved rounds (medians below);"
echo "reads ${DURATION}s each with ${CONNS_ALL[*]} connections and 2 wrk threads in all; writes: $WRITERS writers x $WRITES pre-signed updates, one vault each."
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); load at start: $(uptime | sed "s/.*load average: //")"

# All four servers run for the whole benchmark (an idle one costs next to nothing), so the
# configurations are measured interleaved, round after round, and a burst of load from
# something else on the machine hits all of them rather than one.
# (a) SQLite
start sqlite "$PORT0"; SRV_S="${PIDS[-1]}"
seed S "http://127.0.0.1:$PORT0" "$(bootstrap_token sqlite)" "http://127.0.0.1:$PORT0"
# (b) one PostgreSQL replica, on a fresh schema
S1="latch_bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"; SCHEMAS+=("$S1")
start pg1 "$((PORT0 + 1))" "$(with_schema "$DBURL" "$S1")"; SRV_P1="${PIDS[-1]}"
seed P1 "http://127.0.0.1:$((PORT0 + 1))" "$(bootstrap_token pg1)" "http://127.0.0.1:$((PORT0 + 1))"
# (c) two replicas on another fresh schema: bootstrap through A, then start B with A's log key.
S2="latch_bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"; SCHEMAS+=("$S2")
U2="$(with_schema "$DBURL" "$S2")"
start pgA "$((PORT0 + 2))" "$U2"; SRV_P2="${PIDS[-1]}"
seed P2 "http://127.0.0.1:$((PORT0 + 2))" "$(bootstrap_token pgA)" "http://127.0.0.1:$((PORT0 + 2)),http://127.0.0.1:$((PORT0 + 3))"
start pgB "$((PORT0 + 3))" "$U2" "$WORK/pgA/data/log-key"; SRV_P2+=" ${PIDS[-1]}"
for k in S P1 P2; do check $k; done

. scripts/steal.sh
STAT0=$(steal_mark)
last() { eval echo "\$$1" | awk '{print $NF}'; }
for round in $(seq 1 "$ROUNDS"); do
  for c in "${CONNS_ALL[@]}"; do for k in S P1 P2; do reads $k "$c"; done; done
  for k in S P1 P2; do writes $k; done
  echo "  round $round/$ROUNDS: writes/s S $(last WR_S), P1 $(last WR_P1), P2 $(last WR_P2)"
  for c in "${CONNS_ALL[@]}"; do
    echo "    $c connections: reads/s S $(last RD_S_$c), P1 $(last RD_P1_$c), P2 $(last RD_P2_$c); CPU µs per read, servers + PostgreSQL: S $(last CPUS_S_$c) + $(last CPUP_S_$c), P1 $(last CPUS_P1_$c) + $(last CPUP_P1_$c), P2 $(last CPUS_P2_$c) + $(last CPUP_P2_$c); stolen: S $(last ST_S_$c)%, P1 $(last ST_P1_$c)%, P2 $(last ST_P2_$c)%"
  done
done
STEAL=$(steal_percent "$STAT0")
stop_all

med() { median "$(eval echo "\$$1")"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# best KEY: the connection count at which KEY's median read rate is highest.
best() { local k=$1 c b="" bv=-1 v; for c in "${CONNS_ALL[@]}"; do v=$(med "RD_${k}_$c"); if awk -v a="$v" -v b="$bv" 'BEGIN { exit !(a > b) }'; then b=$c; bv=$v; fi; done; echo "$b"; }
BEST_S=$(best S); BEST_P1=$(best P1); BEST_P2=$(best P2)
label_of() { case $1 in S) echo "SQLite, 1 server" ;; P1) echo "PostgreSQL, 1 replica" ;; P2) echo "PostgreSQL, 2 replicas" ;; esac; }
echo
printf '%-26s %6s %12s %10s %8s\n' "reads (medians)" "conns" "reads/s" "p99 ms" "non-2xx"
for k in S P1 P2; do
  label=$(label_of $k)
  for c in "${CONNS_ALL[@]}"; do
    printf '%-26s %6s %12s %10s %8s%s\n' "$label" "$c" "$(med "RD_${k}_$c")" "$(med "P99_${k}_$c")" "$(eval echo "\$NON2XX_${k}_$c")" \
      "$([ "$(eval echo "\$BEST_$k")" = "$c" ] && echo "   <- throughput")"
    label=""
  done
done
echo
printf '%-26s %12s %10s %8s\n' "writes (medians)" "writes/s" "writes ok" "409/err"
for k in S P1 P2; do
  printf '%-26s %12s %10s %8s\n' "$(label_of $k)" "$(med "WR_$k")" "$(eval echo "\$WOK_$k")" "$(eval echo "\$WCONF_$k")/$(eval echo "\$WERR_$k")"
done
echo
echo "reads, per connection count:  PostgreSQL 1 replica / SQLite   2 replicas / 1 replica"
for c in "${CONNS_ALL[@]}"; do
  printf '  %4s connections            %6s                         %6s\n' "$c" "$(ratio "$(med "RD_P1_$c")" "$(med "RD_S_$c")")" "$(ratio "$(med "RD_P2_$c")" "$(med "RD_P1_$c")")"
done
R1=$(ratio "$(med "RD_P1_$BEST_P1")" "$(med "RD_S_$BEST_S")"); R2=$(ratio "$(med "RD_P2_$BEST_P2")" "$(med "RD_P1_$BEST_P1")")
W1=$(ratio "$(med WR_P1)" "$(med WR_S)"); W2=$(ratio "$(med WR_P2)" "$(med WR_P1)")
echo "reads, throughput (each configuration at its best connection count above):"
echo "  PostgreSQL 1 replica / SQLite = $R1   (goal >= 0.5: $(awk -v r="$R1" 'BEGIN { print (r >= 0.5 ? "met" : "NOT MET") }'))"
echo "  2 replicas / 1 replica        = $R2   (goal > 1.0: $(awk -v r="$R2" 'BEGIN { print (r > 1.0 ? "met" : "NOT MET") }'))"
echo "writes: PostgreSQL 1 replica / SQLite = $W1"
echo "writes: 2 replicas / 1 replica        = $W2   (writes from all replicas are serialised by one database lock)"
echo "reads, CPU per read (medians over rounds; µs of user + system time): servers + PostgreSQL processes, and the"
echo "share of CPU time the hypervisor stole while that configuration ran (compare configurations whose shares are alike):"
for c in "${CONNS_ALL[@]}"; do
  printf '  %4s connections:' "$c"
  for k in S P1 P2; do printf '  %-3s %4s + %-4s stolen %s%%' "$k" "$(med "CPUS_${k}_$c")" "$(med "CPUP_${k}_$c")" "$(med "ST_${k}_$c")"; done
  echo
done
echo "load at end: $(uptime | sed "s/.*load average: //"); ${STEAL}% of CPU time stolen by the hypervisor during the rounds"
[ "$STEAL" -le 10 ] || echo "WARNING: over 10% of CPU time was stolen by the hypervisor; these figures are not comparable, run again" >&2
