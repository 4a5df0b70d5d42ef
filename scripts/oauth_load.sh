#!/usr/bin/env bash
# OAuth load run: two mcp-mux nodes sharing one PostgreSQL store, behind a
# plain round-robin nginx, sign one session in to an OAuth backend whose
# access tokens live a few seconds, then many clients call it at once for a
# while. The backend (scripts/oauth_load/oidc_backend.mjs: an oidc-provider
# authorization server and a protected MCP server) rotates refresh tokens and
# revokes the whole grant when one is used twice, which is what two
# uncoordinated refreshes do. Checks that every call was answered, that the
# grant was refreshed about once per renewal period (a fifth of the token's
# life before expiry) across both nodes, and never twice with one token.
#
#   bash scripts/oauth_load.sh [--clients N] [--duration SECONDS] [--access-ttl SECONDS]
#                              [--mode session|stateless] [--client-by-hand]
#
# Defaults: 20 clients, 60 s, ACCESS_TTL (env) or 5 s, `session` (each client
# opens its own MCP session, which the balancer spreads over both nodes;
# `stateless` sends revision 2026-07-28 calls instead). mcp-mux registers
# itself with the authorization server (RFC 7591); --client-by-hand registers
# a client here and names it in the registry instead.
# MCP_MUX_BIN overrides the binary (default target/debug/mcp-mux, built if
# missing); OAUTH_LOAD_PG the PostgreSQL server (postgres://postgres@127.0.0.1:5432),
# on which a fresh database is created and dropped; OAUTH_LOAD_KEEP=1 keeps
# logs and database. The backend's pinned npm packages go into
# .e2e/oauth-load (git-ignored) on first use. nginx-light is installed with
# apt-get when missing. Prints `ok - …` / `not ok - …` lines, numbers as `#`
# lines, and `oauth load: N passed, M failed`; exits non-zero on a failure.
set -euo pipefail

if [[ -n ${MCP_MUX_BIN:-} && $MCP_MUX_BIN != /* ]]; then MCP_MUX_BIN=$PWD/$MCP_MUX_BIN; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
HERE=$ROOT/scripts/oauth_load

CLIENTS=20 DURATION=60 TTL=${ACCESS_TTL:-5} MODE=session BY_HAND=0
while (($#)); do
  case $1 in
    --clients) CLIENTS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --access-ttl) TTL=$2; shift 2 ;;
    --mode) MODE=$2; shift 2 ;;
    --client-by-hand) BY_HAND=1; shift ;;
    *) sed -n '12,13p' "$0" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-mux-oauth-load.XXXXXX")
HARNESS_NAME="oauth load"
HARNESS_KEEP=${OAUTH_LOAD_KEEP:-0}
# shellcheck source=scripts/harness.sh
source "$ROOT/scripts/harness.sh"
for tool in node npm python3 curl jq psql; do need "$tool"; done

export PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null; then
  echo "# installing nginx-light with apt-get" >&2
  sudo=""
  ((EUID == 0)) || sudo=sudo
  { $sudo apt-get install -y -q nginx-light || { $sudo apt-get update -q && $sudo apt-get install -y -q nginx-light; }; } 2>&1 | note
fi

# The backend runs from the cache folder (scripts/oauth_load/install.sh).
BACKEND=$(bash "$HERE/install.sh")

MUX=${MCP_MUX_BIN:-target/debug/mcp-mux}
if [[ ! -x $MUX ]]; then
  echo "# $MUX is missing: cargo build" >&2
  cargo build --quiet 2>&1 | note
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
AS_PORT=$(free_port) MCP_PORT=$(free_port) A_PORT=$(free_port) B_PORT=$(free_port) LB_PORT=$(free_port)
LB=http://127.0.0.1:$LB_PORT
PG=${OAUTH_LOAD_PG:-postgres://postgres@127.0.0.1:5432}
DB=oauth_load_$$_$RANDOM

# On exit: stop the children before dropping their database, then let the
# harness print the summary and clean up.
on_exit() {
  local rc=$?
  set +e
  for name in "${!CHILDREN[@]}"; do stop "$name" 3; done
  if ((FAILED > 0)) || [[ $HARNESS_KEEP == 1 ]]; then
    HARNESS_KEEP=1
    echo "# database kept: $PG/$DB" >&2
  else
    psql "$PG/postgres" -qc "drop database if exists $DB with (force)" 2>&1 | note
  fi
  (exit "$rc")
  finish
}
trap on_exit EXIT

psql "$PG/postgres" -qc "create database $DB" 2>&1 | note

# 1. The backend, then both nodes, then the balancer.
start backend "$WORK/backend.log" env AS_PORT="$AS_PORT" MCP_PORT="$MCP_PORT" ACCESS_TTL="$TTL" node "$BACKEND"
for _ in $(seq 100); do grep -q '"ready":true' "$WORK/backend.log" && break; alive backend || break; sleep 0.2; done
if grep -q '"ready":true' "$WORK/backend.log"; then ok "backend up (access tokens live ${TTL} s)"; else
  not_ok "backend up" "$(tail -n 5 "$WORK/backend.log")"; summary; exit 1; fi

CLIENT_ID=""
if ((BY_HAND == 1)); then
  CLIENT_ID=$(curl -s "http://127.0.0.1:$AS_PORT/reg" -H 'content-type: application/json' -d "{\"client_name\":\"mcp-mux\",
    \"redirect_uris\":[\"$LB/oauth/callback\"],\"token_endpoint_auth_method\":\"none\",
    \"grant_types\":[\"authorization_code\",\"refresh_token\"],\"response_types\":[\"code\"]}" | jq -r '.client_id // empty')
  [[ -n $CLIENT_ID ]] || { not_ok "client registered at the authorization server" "no client_id"; summary; exit 1; }
fi
cat >"$WORK/registry.yaml" <<EOF
tool_separator: "__"
servers:
  files:
    url: http://127.0.0.1:$MCP_PORT/mcp
    auth: { type: oauth${CLIENT_ID:+, client_id: "$CLIENT_ID"} }
EOF

# Both nodes need the same key to open each other's sealed grants.
MCP_MUX_ENCRYPTION_KEY=$(openssl rand -base64 32)
export MCP_MUX_ENCRYPTION_KEY
# One node at a time: the first applies the migrations, since two nodes
# migrating a fresh database at once collide (duplicate key in pg_type).
for node in a b; do
  port=$A_PORT
  [[ $node == b ]] && port=$B_PORT
  start "node_$node" "$WORK/node-$node.log" "$MUX" serve --bind "127.0.0.1:$port" --registry "$WORK/registry.yaml" \
    --database-url "$PG/$DB" --public-url "$LB" --data-dir "$WORK/data-$node"
  if wait_http "node_$node" "http://127.0.0.1:$port/readyz" 60 200; then ok "node $node ready on :$port"; else
    not_ok "node $node ready" "$(tail -n 5 "$WORK/node-$node.log")"; summary; exit 1; fi
done

# Round robin, no stickiness; kept-alive upstream connections (a new one per
# call would run out of ports in a minute), closed after 4 s idle, before
# mcp-mux closes them (actix-web's 5 s): else a request sent on a connection
# the node is closing gets a 502; no retry on the other node, so a node's
# failure is seen; Host passed on, which mcp-mux checks.
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  log_format upstream '\$upstream_addr \$status';
  access_log $WORK/nginx-access.log upstream;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  keepalive_requests 1000000;
  upstream mux { server 127.0.0.1:$A_PORT; server 127.0.0.1:$B_PORT; keepalive 64; keepalive_timeout 4s; }
  server {
    listen 127.0.0.1:$LB_PORT backlog=4096;
    location / {
      proxy_pass http://mux;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_buffering off;
      proxy_read_timeout 120s;
      proxy_next_upstream off;
    }
  }
}
EOF
start nginx "$WORK/nginx.out" nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;'
if wait_http nginx "$LB/readyz" 20 200; then ok "balancer up on :$LB_PORT (round robin over :$A_PORT and :$B_PORT)"; else
  not_ok "balancer up" "$(cat "$WORK/nginx.out" "$WORK/nginx-error.log" 2>/dev/null | tail -n 5)"; summary; exit 1; fi

# 2. One session through the balancer, signed in through its link.
created=$(curl -s -w '\n%{http_code}' "$LB/create-session" -H 'content-type: application/json' -d '{"servers":["files"]}')
status=$(tail -n 1 <<<"$created") created=$(sed '$d' <<<"$created")
MCP_URL=$(jq -r '.mcp_url // empty' <<<"$created")
LINK=$(jq -r '.authorization.files.url // empty' <<<"$created")
if [[ $status == 201 && $(jq -r .authorization.files.status <<<"$created") == needed && $LINK == "$LB/session/"*"/authorize/files" ]]; then
  ok "session created; its authorization link goes through the balancer"
else not_ok "session created with an authorization link" "$status ${created:0:300}"; summary; exit 1; fi
page=$(curl -s -L --max-redirs 10 -w '\n%{url_effective}' "$LINK")
if grep -q 'files is connected to this session' <<<"$page" && [[ $(tail -n 1 <<<"$page") == "$LB/oauth/callback?"* ]]; then
  ok "authorization link connects files (callback through the balancer)"
else not_ok "authorization link connects files" "$(grep -o '<p[^>]*>[^<]*' <<<"$page" | sed 's/<p[^>]*>//' | head -n 1)"; summary; exit 1; fi
# Count only what the load causes.
curl -s -X POST "http://127.0.0.1:$MCP_PORT/stats/reset" >/dev/null
since=$(date +%s.%N)

# 3. The load.
echo "# $CLIENTS clients, $DURATION s, mode $MODE, through $LB" >&2
load=$(python3 "$HERE/load_client.py" --url "$MCP_URL" --clients "$CLIENTS" --duration "$DURATION" --mode "$MODE")
window=$(python3 -c "import time; print(round(time.time() - $since, 1))")
stats=$(curl -s "http://127.0.0.1:$MCP_PORT/stats")

# 4. The numbers, then the checks.
j() { jq -r "$@" <<<"$load"; }
s() { jq -r "$@" <<<"$stats"; }
refreshes=$(s .refresh_token_grants)
period=$(python3 -c "print($TTL * 4 / 5)")
expected=$(python3 -c "print(round($window / $period, 1))")
echo "# calls made: $(j .calls), answered OK: $(j .ok), failed: $(j .failed), MCP sessions that failed to open: $(j .opens_failed)"
echo "# latency ms: p50 $(j .latency_ms.p50), p99 $(j .latency_ms.p99), max $(j .latency_ms.max)"
jq -r '.errors[] | "# error ×\(.count) (first at \(.first_at_s) s): \(.message)"' <<<"$load"
echo "# refreshes the authorization server served: $refreshes; expected ≈ $expected ($window s / $period s)"
echo "# refresh-token reuse detected: $(s .refresh_token_reuse_detected), grants revoked: $(s .grants_revoked), token errors: $(s -c .token_errors) $(s -c .token_error_details)"
echo "# backend: 401s $(s .mcp_401), calls OK $(s .mcp_ok)"
logged=0
for node in a b; do
  port=$A_PORT
  [[ $node == b ]] && port=$B_PORT
  log=$WORK/node-$node.log
  lines=$(grep -c "refreshed a backend's access token" "$log" || true)
  logged=$((logged + lines))
  versions=$(sed -n "s/.*refreshed a backend's access token.*version=\([0-9]*\).*/\1/p" "$log" | paste -sd' ')
  echo "# node $node: requests via balancer $(grep -c "127.0.0.1:$port " "$WORK/nginx-access.log" || true), \"refreshed a backend's access token\" lines $lines (versions ${versions:-none})"
  # Warnings and errors, the timestamp cut off, each distinct one once.
  grep -E ' (WARN|ERROR) ' "$log" | cut -d' ' -f2- | sed 's/session=[0-9a-f]*/session=…/' | sort | uniq -c | sort -rn | head -n 10 |
    sed "s/^/# node $node: /" || true
done

calls=$(j .calls) failed=$(j .failed) opens_failed=$(j .opens_failed)
if ((calls > 0 && failed == 0 && opens_failed == 0)); then ok "every call answered ($calls calls)"; else
  not_ok "every call answered" "$failed of $calls calls failed, $opens_failed MCP sessions did not open: $(j '[.errors[].message] | join(" | ")' | cut -c1-400)"; fi
for node in a b; do
  port=$A_PORT
  [[ $node == b ]] && port=$B_PORT
  served=$(grep -c "127.0.0.1:$port 200" "$WORK/nginx-access.log" || true)
  if ((served > 0)); then ok "node $node served calls ($served)"; else not_ok "node $node served calls" "none reached it"; fi
done
if python3 -c "import sys, math; sys.exit(not (math.floor($expected) - 1 <= $refreshes <= math.floor($expected) + 1))"; then
  ok "about one refresh per renewal period ($refreshes for ≈ $expected)"
else not_ok "about one refresh per renewal period" "$refreshes refreshes for ≈ $expected expected"; fi
if (($(s .refresh_token_reuse_detected) == 0)); then ok "no refresh token used twice"; else
  not_ok "no refresh token used twice" "$(s .refresh_token_reuse_detected) reuse detections"; fi
if (($(s .grants_revoked) == 0)); then ok "grant never revoked"; else not_ok "grant never revoked" "$(s .grants_revoked) revocations"; fi
if [[ $(s -c .token_errors) == '{}' ]]; then ok "the authorization server refused no token request"; else
  not_ok "the authorization server refused no token request" "$(s -c .token_error_details)"; fi
versions=$(cat "$WORK"/node-*.log | sed -n "s/.*refreshed a backend's access token.*version=\([0-9]*\).*/\1/p" | sort -n)
if ((logged == refreshes)) && [[ -z $(uniq -d <<<"$versions") ]]; then
  ok "each refresh stored once, by one node ($logged log lines, distinct versions)"
else not_ok "each refresh stored once, by one node" "$logged log lines for $refreshes refreshes; versions: $(paste -sd' ' <<<"$versions")"; fi
