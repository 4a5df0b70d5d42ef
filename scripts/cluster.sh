#!/usr/bin/env bash
# Cluster run: three mcp-mux nodes on one fresh PostgreSQL database, behind
# nginx with plain round robin (no affinity, no kept-alive upstream
# connections), in front of the reference server
# (@modelcontextprotocol/server-everything) and scripts/demo_backend.py.
# Each node is started with --node-url, the URL the others reach it at.
# Checks, through the balancer unless said otherwise:
#   1. the Python SDK client (scripts/cluster/features.py), at 2025-11-25
#      with an MCP session and at 2026-07-28 without one, and mcp-remote
#      (scripts/cluster/remote_host.mjs plays the desktop host), in its
#      legacy and its `--protocol auto` mode, use every feature while their
#      consecutive requests go to different nodes: tools/list and calls,
#      progress, sampling, elicitation, roots, logging/setLevel, resource
#      subscriptions and their updates, list_changed, and at 2026-07-28 the
#      multi-round-trip requests (retries carrying `requestState`) and
#      subscriptions/listen;
#   2. a session deleted at node 1 ends the MCP sessions opened directly on
#      nodes 2 and 3 (404, and their GET streams close) within 2 s;
#   3. a session with "rate_limit": 50 hammered round robin over the three
#      nodes is admitted at about 50 requests a second, not 150;
#   4. chaos: clients call the demo backend's `record` tool (which appends
#      to a file) while node 2 is SIGKILLed and restarted; no call may be
#      lost, hang or run twice.
#
#   bash scripts/cluster.sh [--duration SECONDS] [--clients N]
#
# --duration and --clients are the chaos run's (default 15 s, 8 clients).
# MCP_MUX_BIN overrides the binary (default target/debug/mcp-mux, built if
# missing); CLUSTER_PG the PostgreSQL server (postgres://postgres@127.0.0.1:5432),
# on which a fresh database is created and dropped; CLUSTER_KEEP=1 keeps
# logs and database. Uses the peers scripts/e2e.sh installs into .e2e/
# (installed here too when missing); nginx-light is installed with apt-get
# when missing. Prints `ok - …` / `not ok - …` lines, numbers as `#` lines,
# and `cluster: N passed, M failed`; exits non-zero on a failure.
set -euo pipefail

if [[ -n ${MCP_MUX_BIN:-} && $MCP_MUX_BIN != /* ]]; then MCP_MUX_BIN=$PWD/$MCP_MUX_BIN; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
HERE=$ROOT/scripts/cluster

DURATION=15 CLIENTS=8
while (($#)); do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    *) sed -n '25p' "$0" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-mux-cluster.XXXXXX")
HARNESS_NAME=cluster
HARNESS_KEEP=${CLUSTER_KEEP:-0}
# shellcheck source=scripts/harness.sh
source "$ROOT/scripts/harness.sh"
for tool in node npm curl jq psql openssl setsid timeout sha256sum; do need "$tool"; done

export PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null; then
  echo "# installing nginx-light with apt-get" >&2
  sudo=""
  ((EUID == 0)) || sudo=sudo
  { $sudo apt-get install -y -q nginx-light || { $sudo apt-get update -q && $sudo apt-get install -y -q nginx-light; }; } 2>&1 | note
fi

install_e2e_packages "$ROOT/scripts/e2e" "$ROOT/.e2e"

MUX=${MCP_MUX_BIN:-target/debug/mcp-mux}
if [[ ! -x $MUX ]]; then
  if [[ -n ${MCP_MUX_BIN:-} ]]; then
    echo "MCP_MUX_BIN=$MCP_MUX_BIN is not an executable file" >&2
    exit 2
  fi
  echo "# $MUX is missing: cargo build" >&2
  cargo build --quiet 2>&1 | note
fi
# A binary from before --node-url runs without it (and without forwarding).
NODE_URL_FLAG=1
if ! "$MUX" serve --help 2>/dev/null | grep -q -- '--node-url'; then
  NODE_URL_FLAG=0
  echo "# $MUX has no --node-url: the nodes start without it" >&2
fi

# run_client LABEL COMMAND...: a client prints its own ok/not ok lines; they
# are counted here. A client that dies without saying why counts as a failure.
run_client() {
  local label=$1 out rc=0 fails
  shift
  out=$(timeout 200 "$@" 2>"$WORK/$label.stderr") || rc=$?
  [[ -n $out ]] && printf '%s\n' "$out"
  PASSED=$((PASSED + $(grep -c '^ok - ' <<<"$out" || true)))
  fails=$(grep -c '^not ok - ' <<<"$out" || true)
  FAILED=$((FAILED + fails))
  if ((rc != 0 && fails == 0)); then
    not_ok "$label ran to the end" "exited with code $rc$( ((rc == 124)) && echo ' (timed out)')"
  fi
  # Its stderr only when it broke without saying why (mcp-remote's own log is long).
  if ((rc != 0 && fails == 0)); then show_tail "$WORK/$label.stderr" 15; fi
  return 0
}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Distinct ports: the kernel may hand one out again once it is free.
taken=" "
pick_port() { # VARIABLE
  local picked
  picked=$(free_port)
  while [[ $taken == *" $picked "* ]]; do picked=$(free_port); done
  taken+="$picked "
  printf -v "$1" '%s' "$picked"
}
pick_port EVERYTHING_PORT
pick_port DEMO_PORT
pick_port LB_PORT
PORTS=()
for n in 1 2 3; do
  pick_port port
  PORTS[n]=$port
done
LB=http://127.0.0.1:$LB_PORT
PG=${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
DB=cluster_$$_$RANDOM
NODE_ARGS=()
for n in 1 2 3; do NODE_ARGS+=(--node "n$n=127.0.0.1:${PORTS[n]}"); done

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

# ---------------------------------------------------------------- backends
TOKEN="cluster-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
TOKEN_FP=$(printf '%s' "$TOKEN" | sha256sum | cut -c1-12)
RECORDS=$WORK/records.txt
touch "$RECORDS"
PORT=$EVERYTHING_PORT start everything "$WORK/everything.log" "$NODE_MODULES/.bin/mcp-server-everything" streamableHttp
DEMO_BACKEND_TOKEN=$TOKEN DEMO_RECORD_FILE=$RECORDS start demo "$WORK/demo.log" \
  "$PY" scripts/demo_backend.py --host 127.0.0.1 --port "$DEMO_PORT"
if wait_http everything "http://127.0.0.1:$EVERYTHING_PORT/mcp" 30 && wait_http demo "http://127.0.0.1:$DEMO_PORT/mcp" 30 401; then
  ok "backends up (everything on :$EVERYTHING_PORT, demo on :$DEMO_PORT)"
else
  not_ok "backends up" "$(tail -n 3 "$WORK/everything.log" "$WORK/demo.log")"
  summary
  exit 1
fi
cat >"$WORK/registry.yaml" <<EOF
servers:
  everything:
    url: http://127.0.0.1:$EVERYTHING_PORT/mcp
    auth: { type: none }
  demo:
    url: http://127.0.0.1:$DEMO_PORT/mcp
    auth: { type: bearer }
EOF

# ---------------------------------------------------------------- nodes
# All nodes need the same key to open each other's sealed credentials.
MCP_MUX_ENCRYPTION_KEY=$(openssl rand -base64 32)
export MCP_MUX_ENCRYPTION_KEY
start_node() { # N
  local n=$1 port=${PORTS[$1]} extra=()
  ((NODE_URL_FLAG == 1)) && extra=(--node-url "http://127.0.0.1:$port")
  start "node_$n" "$WORK/node-$n.log" "$MUX" serve --bind "127.0.0.1:$port" --registry "$WORK/registry.yaml" \
    --database-url "$PG/$DB" --public-url "$LB" --data-dir "$WORK/data-$n" "${extra[@]}"
}
node_ready() { # N
  if wait_http "node_$1" "http://127.0.0.1:${PORTS[$1]}/readyz" 60 200; then ok "node $1 ready on :${PORTS[$1]}"; else
    not_ok "node $1 ready" "$(tail -n 5 "$WORK/node-$1.log")"
    return 1
  fi
}
# The first node alone applies the migrations (two nodes migrating a fresh
# database at once collide), then the other two together.
start_node 1
node_ready 1 || { summary; exit 1; }
start_node 2
start_node 3
node_ready 2 && node_ready 3 || { summary; exit 1; }

# Round robin, no stickiness, a new upstream connection per request (so
# nothing but the balancer's turn decides the node); the node that answered
# is named in X-Mux-Upstream. A refused connection (a node that is down)
# goes to the next node, since the request never reached one; a request a
# node may have run is never sent again. Streams are passed on unbuffered
# and may stay open for minutes. nginx's own errors are JSON-RPC errors, so
# that clients see a clear error and not an HTML page.
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  log_format upstream '\$upstream_addr \$status \$request_method \$msec \$request_time "\$http_mcp_method" "\$http_mcp_name"';
  access_log $WORK/nginx-access.log upstream;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  upstream mux {
    server 127.0.0.1:${PORTS[1]} max_fails=1 fail_timeout=1s;
    server 127.0.0.1:${PORTS[2]} max_fails=1 fail_timeout=1s;
    server 127.0.0.1:${PORTS[3]} max_fails=1 fail_timeout=1s;
  }
  server {
    listen 127.0.0.1:$LB_PORT backlog=4096;
    add_header X-Mux-Upstream \$upstream_addr always;
    location / {
      proxy_pass http://mux;
      proxy_http_version 1.1;
      proxy_set_header Host \$http_host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 600s;
      proxy_send_timeout 600s;
      proxy_next_upstream error;
      error_page 502 504 = @unavailable;
    }
    location @unavailable {
      default_type application/json;
      return 502 '{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"balancer: no answer from \$upstream_addr"}}';
    }
  }
}
EOF
start nginx "$WORK/nginx.out" nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;'
if wait_http nginx "$LB/readyz" 20 200; then ok "balancer up on :$LB_PORT (round robin over :${PORTS[1]}, :${PORTS[2]}, :${PORTS[3]})"; else
  not_ok "balancer up" "$(cat "$WORK/nginx.out" "$WORK/nginx-error.log" 2>/dev/null | tail -n 5)"
  summary
  exit 1
fi
# Heartbeats: every node must count the other two before rates are shared.
sleep 2

create_session() { # JSON-EXTRA: prints the answer of POST /create-session through the balancer
  curl -s --max-time 10 "$LB/create-session" -H 'content-type: application/json' \
    --data-binary @- <<<"{\"servers\":[\"everything\",\"demo\"],\"credentials\":{\"demo\":{\"token\":\"$TOKEN\"}}$1}"
}

# ---------------------------------------------------------------- 1. features
echo "# 1. every feature, consecutive requests on different nodes"
created=$(create_session '')
SESSION_URL=$(jq -r '.mcp_url // empty' <<<"$created")
if [[ $SESSION_URL == "$LB/session/"*/mcp ]]; then ok "session created through the balancer"; else
  not_ok "session created through the balancer" "${created:0:300}"
  summary
  exit 1
fi
run_client python-legacy "$PY" "$HERE/features.py" "$SESSION_URL" --mode legacy "${NODE_ARGS[@]}" --demo-fingerprint "$TOKEN_FP"
run_client python-stateless "$PY" "$HERE/features.py" "$SESSION_URL" --mode stateless "${NODE_ARGS[@]}" --demo-fingerprint "$TOKEN_FP"
# mcp-remote, as a desktop host runs it: both eras. The balancer's log shows
# which node each of its requests reached.
requests_by_node() { # FROM-LINE: the requests the balancer logged since FROM-LINE, by node
  local n counts=()
  for n in 1 2 3; do
    counts+=("n$n $(tail -n "+$(($1 + 1))" "$WORK/nginx-access.log" | grep -c "^127.0.0.1:${PORTS[n]} " || true)")
  done
  local IFS=,
  echo "${counts[*]}"
}
for mode in legacy auto; do
  bridge_args=()
  [[ $mode == auto ]] && bridge_args=(--bridge-arg --protocol --bridge-arg auto)
  from=$(wc -l <"$WORK/nginx-access.log")
  run_client "mcp-remote-$mode" node "$HERE/remote_host.mjs" "$SESSION_URL" --label "mcp-remote $mode" \
    --node-modules "$NODE_MODULES" --demo-fingerprint "$TOKEN_FP" "${bridge_args[@]}"
  echo "# mcp-remote $mode: requests by node: $(requests_by_node "$from")"
  "$PY" "$HERE/cluster.py" path --log "$WORK/nginx-access.log" --from "$from" "${NODE_ARGS[@]}"
done

# ---------------------------------------------------------------- 2. delete
echo "# 2. a session deleted at node 1 ends its MCP sessions on nodes 2 and 3"
DELETED=$(create_session '' | jq -r '.session_id // empty')
run_client delete "$PY" "$HERE/cluster.py" delete --session "$DELETED" "${NODE_ARGS[@]}"

# ---------------------------------------------------------------- 3. rate
echo "# 3. a session's rate limit holds across the nodes"
created=$(create_session ',"rate_limit":50')
run_client rate "$PY" "$HERE/cluster.py" rate --lb "$LB" --session-url "$(jq -r '.mcp_url // empty' <<<"$created")" \
  --limit 50 --seconds 5 "${NODE_ARGS[@]}"

# ---------------------------------------------------------------- 4. chaos
echo "# 4. chaos: $CLIENTS clients for $DURATION s while node 2 is SIGKILLed and restarted"
CHAOS_URL=$(create_session '' | jq -r '.mcp_url // empty')
"$PY" "$HERE/cluster.py" chaos --session-url "$CHAOS_URL" --records "$RECORDS" --duration "$DURATION" \
  --clients "$CLIENTS" "${NODE_ARGS[@]}" >"$WORK/chaos.out" 2>"$WORK/chaos.stderr" &
CHAOS_PID=$!
sleep "$("$PY" -c "print($DURATION * 0.4)")"
# The node process alone gets SIGKILL, as a machine failing would (disowned
# first, so that the shell does not report the kill).
victim=${CHILDREN[node_2]}
unset "CHILDREN[node_2]"
disown "$victim" 2>/dev/null || true
kill -KILL "$victim" 2>/dev/null || true
while kill -0 "$victim" 2>/dev/null && [[ $(sed 's/.*) //' "/proc/$victim/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]; do sleep 0.05; done
killed_at=$SECONDS
echo "# chaos: node 2 SIGKILLed"
sleep 1.5
start_node 2
if wait_http node_2 "http://127.0.0.1:${PORTS[2]}/readyz" 60 200; then
  echo "# chaos: node 2 restarted, ready $((SECONDS - killed_at)) s after the kill"
else
  not_ok "node 2 restarts after SIGKILL" "$(tail -n 5 "$WORK/node-2.log")"
fi
chaos_rc=0
wait "$CHAOS_PID" || chaos_rc=$?
out=$(cat "$WORK/chaos.out")
printf '%s\n' "$out"
PASSED=$((PASSED + $(grep -c '^ok - ' <<<"$out" || true)))
fails=$(grep -c '^not ok - ' <<<"$out" || true)
FAILED=$((FAILED + fails))
if ((chaos_rc != 0 && fails == 0)); then not_ok "chaos ran to the end" "exited with code $chaos_rc"; fi
((chaos_rc == 0)) || show_tail "$WORK/chaos.stderr" 15

# ---------------------------------------------------------------- logs
for n in 1 2 3; do
  # Warnings and errors, the timestamp cut off, each distinct one once.
  grep -aE ' (WARN|ERROR) ' "$WORK/node-$n.log" | cut -d' ' -f2- | sed -E 's/session=[0-9a-f-]+/session=…/g' |
    sort | uniq -c | sort -rn | head -n 6 | sed "s/^/# node $n: /" || true
done
summary
