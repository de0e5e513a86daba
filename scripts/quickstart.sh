#!/usr/bin/env bash
# The README quickstart, as written, runnable (a test runs it). Needs `latch` on PATH.
set -euo pipefail
PORT=${PORT:-8484}
export LATCH_HOME=$(mktemp -d)
cd "$LATCH_HOME"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

# --- quickstart ---
latch serve --data-dir "$LATCH_HOME/server" --port "$PORT" &      # prints a one-time bootstrap token
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || ! kill -0 $! 2>/dev/null; do sleep 0.2; done   # wait for the port (or the server's exit)
latch init --server "http://127.0.0.1:$PORT" --token "$(cat "$LATCH_HOME/server/bootstrap-token")"
latch vault create prod
printf '%s' 'postgres://app:s3cret@db/prod' | latch secret set prod database --field url
latch agent create deploy-bot --vault prod --out bot.json            # one-time runtime config, mode 0600
latch configure agent --config bot.json --profile bot                 # on the agent's host
latch get DATABASE --profile bot                                      # -> postgres://app:s3cret@db/prod
latch run --profile bot -- sh -c 'echo "connecting to $DATABASE"'    # -> connecting to <concealed by latch>
# --- end ---
