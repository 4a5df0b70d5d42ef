#!/usr/bin/env bash
# End-to-end checks of mcp-mux with the peers users actually run:
#   backends: @modelcontextprotocol/server-everything (npm, no auth) over
#             Streamable HTTP, over the legacy HTTP+SSE transport and as a
#             stdio child process of mcp-mux,
#             scripts/demo_backend.py (Python SDK, bearer token),
#             scripts/e2e/asking_backend.py (Python SDK, tools that ask the
#             client mid-call, for the 2026-07-28 bridge), and
#             the TypeScript SDK's example server behind its own OAuth
#             authorization server (scripts/e2e/oauth.sh)
#   issuers:  oauth2-mock-server, the real issuer of the tokens that hosts
#             sign in with (scripts/e2e/host_tokens.sh, scripts/e2e/issuer.mjs)
#   clients:  mcp-remote (the stdio bridge desktop hosts use) and the Python SDK client,
#             also signing in by themselves to sessions whose URL is an OAuth
#             protected resource, at oidc-provider (scripts/e2e/host_signin.sh)
#   console:  /ui in headless Chromium (Debian's chromium, installed with
#             apt-get when missing; E2E_CHROMIUM overrides the path), driven
#             by playwright-core
#
#   bash scripts/e2e.sh              # from the repository root, after `cargo build`
#
# MCP_MUX_BIN overrides the binary (default target/debug/mcp-mux, built if
# missing). E2E_KEEP=1 keeps the scratch directory (logs, database) for a look.
# E2E_ONLY=hosts runs the backends and the checks of hosts that sign in alone;
# E2E_ONLY=console the backends and the console's checks in Chromium.
# Pinned npm and PyPI packages are installed into .e2e/ (git-ignored) on first
# use and whenever scripts/e2e/package-lock.json or requirements.txt change.
#
# Every check prints `ok - NAME` or `not ok - NAME: reason`; the last line is
# `e2e: N passed, M failed`, and the exit code is non-zero if M > 0 or if the
# script itself broke.
set -euo pipefail

# A relative MCP_MUX_BIN means relative to where the script was started.
if [[ -n ${MCP_MUX_BIN:-} && $MCP_MUX_BIN != /* ]]; then MCP_MUX_BIN=$PWD/$MCP_MUX_BIN; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
HERE=$ROOT/scripts/e2e
CACHE=$ROOT/.e2e
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-mux-e2e.XXXXXX")

HARNESS_NAME=e2e
HARNESS_KEEP=${E2E_KEEP:-0}
# shellcheck source=scripts/harness.sh
source "$ROOT/scripts/harness.sh"

# The last http call's answer against what the contract says.
expect_status() { # NAME WANTED-STATUS
  if [[ $STATUS == "$2" ]]; then ok "$1"; else not_ok "$1" "expected $2, got $STATUS ${BODY:0:300}"; fi
}
expect_no_token() { # NAME
  if [[ $BODY != *"$TOKEN"* ]]; then ok "$1"; else not_ok "$1" "the token is in the answer"; fi
}
# For when the checks that follow cannot pass: say so once, not N times.
give_up() {
  echo "# giving up: the checks after this one need it" >&2
  summary
  exit 1
}

# Ports come from the kernel (bind to port 0), never from a fixed list, so two
# runs or a busy machine do not collide.
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# http METHOD URL [JSON-BODY [HEADER...]]: sets STATUS, BODY and
# MCP_SESSION_HEADER (the Mcp-Session-Id answered, if any). Never fails, never
# waits more than 30 s.
http() {
  local method=$1 url=$2 body=${3:-} h
  local args=(-s -X "$method" --max-time 30 -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}'
    -H 'Accept: application/json, text/event-stream')
  # The body goes through stdin, keeping the token out of the process list.
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary @-)
  for h in "${@:4}"; do args+=(-H "$h"); done
  STATUS=$(curl "${args[@]}" "$url" <<<"$body" || true)
  BODY=$(cat "$WORK/body" 2>/dev/null || true)
  # Every answer is kept, to be searched for the token at the end.
  { cat "$WORK/headers" "$WORK/body" && echo; } >>"$WORK/responses.log" 2>/dev/null || true
  MCP_SESSION_HEADER=$(sed -n 's/^mcp-session-id:[[:space:]]*//Ip' "$WORK/headers" 2>/dev/null | tr -d '\r' | tail -n 1)
}

json_field() { # JSON FIELD: prints a top-level string field, or nothing
  "$PY" -c 'import json, sys
try: print(json.loads(sys.argv[1]).get(sys.argv[2], ""))
except Exception: pass' "$1" "$2"
}

# run_client LABEL COMMAND...: a client prints its own ok/not ok lines; they
# are counted here. A client that dies without saying why counts as a failure.
run_client() {
  local label=$1 out rc=0 fails
  shift
  out=$(timeout 180 "$@" 2>"$WORK/$label.stderr") || rc=$?
  [[ -n $out ]] && printf '%s\n' "$out"
  PASSED=$((PASSED + $(grep -c '^ok - ' <<<"$out" || true)))
  fails=$(grep -c '^not ok - ' <<<"$out" || true)
  FAILED=$((FAILED + fails))
  if ((rc != 0 && fails == 0)); then
    not_ok "$label ran to the end" "exited with code $rc$( ((rc == 124)) && echo ' (timed out)')"
  fi
  if ((rc != 0)); then show_tail "$WORK/$label.stderr" 30; fi
  return 0
}

# ---------------------------------------------------------------- setup
need curl
need node
need npm
need setsid
need timeout
need sha256sum
need pgrep

CHROMIUM=${E2E_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM ]]; then
  echo "# $CHROMIUM is missing: apt-get install -y chromium" >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } 2>&1 | note \
    || [[ ! -x $CHROMIUM ]]; then
    echo "e2e.sh needs Chromium at $CHROMIUM for the console checks, and apt-get install -y chromium failed (run as root, or set E2E_CHROMIUM)" >&2
    exit 2
  fi
fi

install_e2e_packages "$HERE" "$CACHE"
export E2E_NODE_MODULES=$NODE_MODULES

MUX=${MCP_MUX_BIN:-target/debug/mcp-mux}
if [[ ! -x $MUX ]]; then
  if [[ -n ${MCP_MUX_BIN:-} ]]; then
    echo "MCP_MUX_BIN=$MCP_MUX_BIN is not an executable file" >&2
    exit 2
  fi
  echo "# $MUX is missing: cargo build" >&2
  cargo build --quiet 2>&1 | note
fi

# A token that cannot occur by chance, so finding it anywhere means a leak.
TOKEN="e2e-secret-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
TOKEN_FP=$(printf '%s' "$TOKEN" | sha256sum | cut -c1-12)
# The stdio backend's credential, which it gets in its environment.
STDIO_TOKEN="e2e-stdio-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
# In mcp-mux's environment only: a stdio backend must not inherit it.
export E2E_GATEWAY_CANARY
E2E_GATEWAY_CANARY="e2e-canary-$("$PY" -c 'import secrets; print(secrets.token_hex(8))')"

export E2E_EVERYTHING_PORT E2E_DEMO_PORT E2E_SSE_PORT E2E_ASKING_PORT
E2E_EVERYTHING_PORT=$(free_port)
E2E_DEMO_PORT=$(free_port)
E2E_SSE_PORT=$(free_port)
E2E_ASKING_PORT=$(free_port)
MUX_PORT=$(free_port)
KILL_MUX_PORT=$(free_port)
CONSOLE_MUX_PORT=$(free_port)
# Distinct ports: the kernel may hand one out again once it is free.
taken=" $E2E_EVERYTHING_PORT "
for name in E2E_DEMO_PORT E2E_SSE_PORT E2E_ASKING_PORT MUX_PORT KILL_MUX_PORT CONSOLE_MUX_PORT; do
  while [[ $taken == *" ${!name} "* ]]; do printf -v "$name" '%s' "$(free_port)"; done
  taken+="${!name} "
done
BASE=http://127.0.0.1:$MUX_PORT

# ---------------------------------------------------------------- backends
PORT=$E2E_EVERYTHING_PORT start everything "$WORK/everything.log" \
  "$NODE_MODULES/.bin/mcp-server-everything" streamableHttp
DEMO_BACKEND_TOKEN=$TOKEN start demo "$WORK/demo.log" \
  "$PY" scripts/demo_backend.py --host 127.0.0.1 --port "$E2E_DEMO_PORT"
PORT=$E2E_SSE_PORT start everything-sse "$WORK/everything-sse.log" \
  "$NODE_MODULES/.bin/mcp-server-everything" sse
start asking "$WORK/asking.log" "$PY" "$HERE/asking_backend.py" --port "$E2E_ASKING_PORT"

if wait_http everything "http://127.0.0.1:$E2E_EVERYTHING_PORT/mcp" 30; then
  ok "backend everything is up"
else
  not_ok "backend everything is up" "no HTTP answer on port $E2E_EVERYTHING_PORT within 30 s"
  show_tail "$WORK/everything.log"
fi
# Any answer on the POST path will do: a GET on /sse would open a session.
if wait_http everything-sse "http://127.0.0.1:$E2E_SSE_PORT/message" 30; then
  ok "backend everything-sse (HTTP+SSE) is up"
else
  not_ok "backend everything-sse (HTTP+SSE) is up" "no HTTP answer on port $E2E_SSE_PORT within 30 s"
  show_tail "$WORK/everything-sse.log"
fi
# Without a token the demo backend must refuse: otherwise the bearer checks
# below would prove nothing.
if wait_http demo "http://127.0.0.1:$E2E_DEMO_PORT/mcp" 30 401; then
  ok "backend demo is up and answers 401 without a token"
else
  not_ok "backend demo is up and answers 401 without a token" "no 401 on port $E2E_DEMO_PORT within 30 s"
  show_tail "$WORK/demo.log"
fi

INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e-curl","version":"1"}}}'
# shellcheck source=scripts/e2e/console.sh
source "$HERE/console.sh"
if [[ ${E2E_ONLY:-} == console ]]; then
  console_checks
  summary
  exit 0
fi

# Hosts that sign in: tokens of a real issuer, and whole sign-ins by real
# hosts at a real authorization server, each on a gateway of its own.
# shellcheck source=scripts/e2e/oauth.sh
source "$HERE/oauth.sh"
# shellcheck source=scripts/e2e/host_tokens.sh
source "$HERE/host_tokens.sh"
# shellcheck source=scripts/e2e/host_signin.sh
source "$HERE/host_signin.sh"
if [[ ${E2E_ONLY:-} == hosts ]]; then
  host_token_checks
  host_signin_checks
  summary
  exit 0
fi

# ---------------------------------------------------------------- mcp-mux
DATA=$WORK/data
MUX_LOG=$WORK/mcp-mux.log
start_mux() {
  # trace: the most verbose logging there is, so that a leaked secret would show.
  RUST_LOG=trace start mux "$MUX_LOG" "$MUX" serve \
    --bind "127.0.0.1:$MUX_PORT" \
    --registry "$HERE/registry.yaml" \
    --database-url "sqlite://$DATA/mcp-mux.db?mode=rwc" \
    --data-dir "$DATA"
  wait_http mux "$BASE/healthz" 60 200
}
mkdir -p "$DATA"
if start_mux; then
  ok "mcp-mux serves /healthz"
else
  if alive mux; then why="no 200 within 60 s"; else why="it exited"; fi
  not_ok "mcp-mux serves /healthz" "$why (log below)"
  show_tail "$MUX_LOG" 40
  give_up
fi

# ---------------------------------------------------------------- HTTP API
http POST "$BASE/create-session" "{\"servers\":[\"everything\",\"demo\"],\"credentials\":{\"demo\":{\"token\":\"$TOKEN\"}}}"
SESSION_ID=$(json_field "$BODY" session_id)
ENDPOINT=$(json_field "$BODY" mcp_endpoint)
if [[ $STATUS == 201 && -n $SESSION_ID && $ENDPOINT == "/session/$SESSION_ID/mcp" ]]; then
  ok "POST /create-session answers 201 with session_id and mcp_endpoint"
else
  not_ok "POST /create-session answers 201 with session_id and mcp_endpoint" "got $STATUS ${BODY:0:300}"
  give_up
fi
expect_no_token "POST /create-session does not echo the token"
SESSION_URL=$BASE$ENDPOINT

http GET "$BASE/session/$SESSION_ID"
expect_status "GET /session/<id> answers 200" 200
expect_no_token "GET /session/<id> shows no secret"

UNKNOWN=00000000-0000-4000-8000-000000000000
http GET "$BASE/session/$UNKNOWN"
expect_status "GET /session/<unknown id> answers 404" 404

http POST "$BASE/session/$UNKNOWN/mcp" "$INIT"
expect_status "POST initialize on an unknown session's MCP endpoint answers 404" 404

http POST "$BASE/create-session" '{"servers":["no-such-server"]}'
expect_status "POST /create-session with an unknown server answers 400" 400
http POST "$BASE/create-session" '{"servers":["demo"]}'
expect_status "POST /create-session without the demo token answers 400" 400

# ---------------------------------------------------------------- OpenAPI
# The live document, checked against the OpenAPI 3.1 specification by
# openapi-spec-validator (unique operationIds and path parameters among its
# checks: client generators need both), then fuzzed from outside by
# schemathesis: every operation it lists, with generated and malformed input.
# No answer may be a 5xx, and each must have a documented status, content
# type, headers and body. The session id it uses is a real one, so that calls
# get past the 404.
http GET "$BASE/openapi.json"
if [[ $STATUS == 200 && $BODY == *'"openapi":"3.1.0"'* ]]; then
  ok "GET /openapi.json answers an OpenAPI 3.1 document"
else
  not_ok "GET /openapi.json answers an OpenAPI 3.1 document" "got $STATUS ${BODY:0:200}"
fi
# The validator reads files only: the document as served, byte for byte.
cp "$WORK/body" "$WORK/openapi.json"
if "$CACHE/venv/bin/openapi-spec-validator" --validation-errors all "$WORK/openapi.json" \
  >"$WORK/openapi-spec-validator.log" 2>&1; then
  ok "openapi-spec-validator: the live /openapi.json is a valid OpenAPI 3.1 document"
else
  not_ok "openapi-spec-validator: the live /openapi.json is a valid OpenAPI 3.1 document" "errors below"
  show_tail "$WORK/openapi-spec-validator.log" 30
fi
http GET "$BASE/docs/"
if [[ $STATUS == 200 && $BODY == *swagger-ui* ]]; then
  ok "GET /docs/ serves Swagger UI"
else
  not_ok "GET /docs/ serves Swagger UI" "got $STATUS ${BODY:0:200}"
fi
http POST "$BASE/create-session" '{"servers":["everything"]}'
FUZZ_SESSION=$(json_field "$BODY" session_id)
printf '[parameters]\n"path.id" = "%s"\n' "$FUZZ_SESSION" >"$WORK/schemathesis.toml"
if (cd "$WORK" && timeout 600 "$CACHE/venv/bin/schemathesis" --config-file "$WORK/schemathesis.toml" \
  run "$BASE/openapi.json" --max-examples 40 --request-timeout 10 --suppress-health-check all \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  >"$WORK/schemathesis.log" 2>&1); then
  ok "schemathesis: $(grep -Eo '[0-9]+ generated, [0-9]+ passed' "$WORK/schemathesis.log" | tail -n 1): no 5xx, every answer as documented"
else
  not_ok "schemathesis: no 5xx, every answer as documented" "failures below"
  show_tail "$WORK/schemathesis.log" 60
fi

# A client generated from the same document by openapi-python-client, as an
# operator's tooling makes one: create a session, call a tool, delete it.
run_client generated-client "$CLIENT_PY" "$HERE/generated_client.py" "$BASE" "$WORK/openapi.json" \
  "$WORK" everything everything__echo

# ---------------------------------------------------------------- raw MCP
# The Streamable HTTP rules that clients rely on without saying so, spoken
# by hand. The MCP session made here is reused after the restart below.
PROTO='MCP-Protocol-Version: 2025-11-25'
LIST='{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
http POST "$SESSION_URL" "$INIT"
MCP_SID=$MCP_SESSION_HEADER
if [[ $STATUS == 200 && -n $MCP_SID ]]; then
  ok "POST initialize on the session URL answers 200 with an Mcp-Session-Id"
else
  not_ok "POST initialize on the session URL answers 200 with an Mcp-Session-Id" \
    "got $STATUS, Mcp-Session-Id '${MCP_SID}' ${BODY:0:200}"
fi
http POST "$SESSION_URL" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "Mcp-Session-Id: $MCP_SID" "$PROTO"
expect_status "notifications/initialized answers 202" 202
http POST "$SESSION_URL" "$LIST" "Mcp-Session-Id: $MCP_SID" "$PROTO"
if [[ $STATUS == 200 && $BODY == *everything__echo* ]]; then
  ok "tools/list with that Mcp-Session-Id answers 200 with everything__echo"
else
  not_ok "tools/list with that Mcp-Session-Id answers 200 with everything__echo" "got $STATUS ${BODY:0:300}"
fi
http POST "$SESSION_URL" "$LIST" "$PROTO"
expect_status "tools/list without an Mcp-Session-Id answers 400" 400
http POST "$SESSION_URL" "$LIST" "Mcp-Session-Id: no-such-mcp-session" "$PROTO"
expect_status "tools/list with an unknown Mcp-Session-Id answers 404" 404

# ---------------------------------------------------------------- clients
run_client mcp-remote node "$HERE/mcp_remote_client.mjs" "$SESSION_URL" \
  --node-modules "$NODE_MODULES" --demo-fingerprint "$TOKEN_FP"
run_client python "$PY" "$HERE/python_client.py" "$SESSION_URL" --demo-fingerprint "$TOKEN_FP" \
  --protocol 2026-07-28
# The same SDK with the handshake, on the same URL (a dual-era server).
run_client python-legacy "$PY" "$HERE/python_client.py" "$SESSION_URL" --demo-fingerprint "$TOKEN_FP" \
  --label "python legacy" --mode legacy --protocol 2025-11-25

# ---------------------------------------------------------------- the 2026-07-28 bridge
# The Python SDK's client at 2026-07-28, through a session, to a 2025-11-25
# backend of the same SDK whose tools ask mid-call: each set of declared
# capabilities, requests sent at once in one round, rounds after rounds.
if wait_http asking "http://127.0.0.1:$E2E_ASKING_PORT/mcp" 30; then
  http POST "$BASE/create-session" '{"servers":["asking"]}'
  ASKING_URL=$(json_field "$BODY" mcp_url)
  if [[ $STATUS == 201 && -n $ASKING_URL ]]; then
    run_client python-bridge "$PY" "$HERE/bridge_client.py" "$ASKING_URL" --label "python bridge"
  else
    not_ok "a session over the asking backend is created" "got $STATUS ${BODY:0:300}"
  fi
else
  not_ok "backend asking is up" "no HTTP answer on port $E2E_ASKING_PORT within 30 s"
  show_tail "$WORK/asking.log"
fi

# ---------------------------------------------------------------- session token
# A session that requires its own token: refused without it, and used by
# mcp-remote with the --header form the README shows.
http POST "$BASE/create-session" "{\"servers\":[\"everything\"],\"require_token\":true}"
SESSION_TOKEN=$(json_field "$BODY" session_token)
TOKEN_URL=$BASE/session/$(json_field "$BODY" session_id)/mcp
if [[ $STATUS == 201 && $SESSION_TOKEN == mmx_* ]]; then
  ok "POST /create-session with require_token answers 201 with a session token"
else
  not_ok "POST /create-session with require_token answers 201 with a session token" "got $STATUS"
fi
http POST "$TOKEN_URL" "$INIT"
expect_status "initialize without the session token answers 401" 401
if grep -qi '^www-authenticate: Bearer realm="mcp-mux session"' "$WORK/headers"; then
  ok "the 401 carries WWW-Authenticate: Bearer"
else
  not_ok "the 401 carries WWW-Authenticate: Bearer" "$(tr -d '\r' <"$WORK/headers" | head -n 5)"
fi
run_client mcp-remote-with-token node "$HERE/mcp_remote_client.mjs" "$TOKEN_URL" \
  --node-modules "$NODE_MODULES" --backends everything --label "mcp-remote with a session token" \
  --header "Authorization: Bearer $SESSION_TOKEN"

# ---------------------------------------------------------------- curated sessions
# A session's tool rules and search mode, read through the Python SDK, and
# its tools called over plain HTTP with curl.
CURATED_BODY="{\"servers\":[\"everything\",\"demo\"],\"credentials\":{\"demo\":{\"token\":\"$TOKEN\"}},
  \"tools\":{\"everything\":{\"allow\":[\"echo\",\"get-sum\"]},
             \"demo\":{\"deny\":[\"whoami\",\"record\"],\"rename\":{\"add\":\"plus\"}}}}"
http POST "$BASE/create-session" "$CURATED_BODY"
CURATED=$(json_field "$BODY" session_id)
expect_status "POST /create-session with tool rules answers 201" 201
run_client python-curated "$PY" "$HERE/curated_client.py" "$BASE/session/$CURATED/mcp" \
  --tools demo__echo,demo__plus,everything__echo,everything__get-sum \
  --call demo__plus '{"a": 2, "b": 3}' 5 --call everything__echo '{"message": "curated"}' 'Echo: curated' \
  --hidden demo__whoami --hidden demo__add --hidden everything__get-env
http GET "$BASE/session/$CURATED/tools"
LISTED=$("$PY" -c 'import json, sys; print(",".join(sorted(t["name"] for t in json.loads(sys.argv[1])["tools"])))' "$BODY" 2>/dev/null || true)
if [[ $STATUS == 200 && $LISTED == demo__echo,demo__plus,everything__echo,everything__get-sum ]]; then
  ok "GET /session/<id>/tools lists the curated tools"
else
  not_ok "GET /session/<id>/tools lists the curated tools" "got $STATUS $LISTED"
fi
http POST "$BASE/session/$CURATED/tools/demo__plus" '{"a": 2, "b": 3}'
if [[ $STATUS == 200 && $BODY == *'"5'* ]]; then
  ok "POST /session/<id>/tools/demo__plus answers 200 with 5"
else
  not_ok "POST /session/<id>/tools/demo__plus answers 200 with 5" "got $STATUS ${BODY:0:300}"
fi
http POST "$BASE/session/$CURATED/tools/demo__whoami" '{}'
expect_status "POST /session/<id>/tools/<hidden tool> answers 404" 404
http POST "$BASE/create-session" "{\"servers\":[\"everything\",\"demo\"],\"credentials\":{\"demo\":{\"token\":\"$TOKEN\"}},\"tool_mode\":\"search\"}"
SEARCHED=$(json_field "$BODY" session_id)
run_client python-search "$PY" "$HERE/curated_client.py" "$BASE/session/$SEARCHED/mcp" \
  --label "python search mode" --tools call_tool,describe_tool,search_tools \
  --call demo__add '{"a": 2, "b": 3}' 5 --search "add two numbers" demo__add

# ---------------------------------------------------------------- stdio and HTTP+SSE
# The reference server again, run by mcp-mux as a child process (stdio) and
# in its HTTP+SSE mode of revision 2024-11-05, behind one session.

# process_gone PID: no such process, or only its zombie (a container's init
# may never reap it).
process_gone() {
  [[ ! -e /proc/$1 ]] || [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) == Z ]]
}
# wait_gone PID SECONDS
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    process_gone "$1" && return 0
    sleep 0.1
  done
  return 1
}
# open_mcp_session SESSION_URL: initializes; sets OPENED_SID (MCP_SID stays
# the raw session's, which is checked again after the restart).
open_mcp_session() {
  http POST "$1" "$INIT"
  OPENED_SID=$MCP_SESSION_HEADER
  http POST "$1" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "Mcp-Session-Id: $OPENED_SID" "$PROTO"
}
# The stdio backends the gateway process NAME has spawned (its children).
children_of() { pgrep -P "${CHILDREN[$1]}" || true; }

TRANSPORTS_BODY="{\"servers\":[\"everything-stdio\",\"everything-sse\"],\"credentials\":{\"everything-stdio\":{\"api_key\":\"$STDIO_TOKEN\"}}}"
http POST "$BASE/create-session" "$TRANSPORTS_BODY"
expect_status "POST /create-session over a stdio and an HTTP+SSE backend answers 201" 201
TRANSPORTS_URL=$BASE/session/$(json_field "$BODY" session_id)/mcp
before=$(children_of mux)
open_mcp_session "$TRANSPORTS_URL"
TRANSPORTS_SID=$OPENED_SID
http POST "$TRANSPORTS_URL" "$LIST" "Mcp-Session-Id: $TRANSPORTS_SID" "$PROTO"
if [[ $STATUS == 200 && $BODY == *'"everything-stdio__echo"'* && $BODY == *'"everything-sse__echo"'* ]]; then
  ok "tools/list shows everything-stdio__echo and everything-sse__echo"
else
  not_ok "tools/list shows everything-stdio__echo and everything-sse__echo" "got $STATUS ${BODY:0:300}"
fi
for backend in everything-stdio everything-sse; do
  http POST "$TRANSPORTS_URL" "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"${backend}__echo\",\"arguments\":{\"message\":\"via $backend\"}}}" \
    "Mcp-Session-Id: $TRANSPORTS_SID" "$PROTO"
  if [[ $STATUS == 200 && $BODY == *"Echo: via $backend"* ]]; then
    ok "tools/call ${backend}__echo is answered by the backend"
  else
    not_ok "tools/call ${backend}__echo is answered by the backend" "got $STATUS ${BODY:0:300}"
  fi
done
http POST "$TRANSPORTS_URL" '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"everything-stdio__get-env","arguments":{}}}' \
  "Mcp-Session-Id: $TRANSPORTS_SID" "$PROTO"
if [[ $STATUS == 200 && $BODY == *E2E_STDIO_KEY*"$STDIO_TOKEN"* && $BODY != *"$E2E_GATEWAY_CANARY"* ]]; then
  ok "the stdio backend has the session's credential in its environment, and none of mcp-mux's"
else
  not_ok "the stdio backend has the session's credential in its environment, and none of mcp-mux's" \
    "got $STATUS; credential seen: $([[ $BODY == *"$STDIO_TOKEN"* ]] && echo yes || echo no); gateway variable seen: $([[ $BODY == *"$E2E_GATEWAY_CANARY"* ]] && echo yes || echo no)"
fi
STDIO_CHILD=$(comm -13 <(sort <<<"$before") <(children_of mux | sort) | head -n 1)
if [[ -n $STDIO_CHILD ]]; then
  http DELETE "$TRANSPORTS_URL" "" "Mcp-Session-Id: $TRANSPORTS_SID"
  if [[ $STATUS == 200 ]] && wait_gone "$STDIO_CHILD" 10; then
    ok "DELETE of the MCP session ends the stdio backend's process"
  else
    not_ok "DELETE of the MCP session ends the stdio backend's process" "DELETE answered $STATUS; process $STDIO_CHILD $(process_gone "$STDIO_CHILD" && echo ended || echo 'still runs')"
  fi
else
  not_ok "DELETE of the MCP session ends the stdio backend's process" "mcp-mux has no new child process"
fi

# A gateway killed outright leaves no stdio backend behind. A second
# mcp-mux, so that the checks below keep the first one. Its backend outlives
# the end of its input (the shell execs `sleep` once the server is done), as
# a careless server would: only the parent-death signal can end it.
KILL_DATA=$WORK/data-kill
mkdir -p "$KILL_DATA"
cat >"$WORK/registry-kill.yaml" <<'YAML'
servers:
  lingering:
    command: sh
    args: ["-c", "\"$0\" stdio; exec sleep 600", "${E2E_NODE_MODULES}/.bin/mcp-server-everything"]
YAML
start mux-kill "$WORK/mcp-mux-kill.log" "$MUX" serve \
  --bind "127.0.0.1:$KILL_MUX_PORT" \
  --registry "$WORK/registry-kill.yaml" \
  --database-url "sqlite://$KILL_DATA/mcp-mux.db?mode=rwc" \
  --data-dir "$KILL_DATA"
if wait_http mux-kill "http://127.0.0.1:$KILL_MUX_PORT/healthz" 60 200; then
  http POST "http://127.0.0.1:$KILL_MUX_PORT/create-session" '{"servers":["lingering"]}'
  open_mcp_session "http://127.0.0.1:$KILL_MUX_PORT/session/$(json_field "$BODY" session_id)/mcp"
  ORPHAN=$(children_of mux-kill | head -n 1)
  if [[ -z $ORPHAN ]]; then
    not_ok "a SIGKILLed mcp-mux leaves no stdio backend running" "mcp-mux started no child process (initialize answered $STATUS)"
  else
    # The gateway process alone: its group would take the child along and prove nothing.
    kill -KILL "${CHILDREN[mux-kill]}"
    if wait_gone "$ORPHAN" 5; then
      ok "a SIGKILLed mcp-mux leaves no stdio backend running"
    else
      not_ok "a SIGKILLed mcp-mux leaves no stdio backend running" "process $ORPHAN still runs 5 s later"
      kill -KILL "$ORPHAN" 2>/dev/null || true
    fi
  fi
  stop mux-kill 1 || true
else
  not_ok "a second mcp-mux serves /healthz" "no 200 within 60 s"
  show_tail "$WORK/mcp-mux-kill.log" 40
fi

# ---------------------------------------------------------------- console
console_checks

# ---------------------------------------------------------------- secrets at rest
# token_absent_from LABEL CONTROL FILE...: the token is in none of the files.
# CONTROL is a string that must be in at least one of them; if it is not,
# the search read the wrong files (or an encoding that hides everything) and
# proves nothing.
token_absent_from() {
  local label=$1 control=$2 found=() seen=0 f
  shift 2
  for f in "$@"; do
    [[ -f $f ]] || continue
    grep -qaF -- "$TOKEN" "$f" && found+=("${f#"$WORK"/}")
    grep -qaF -- "$control" "$f" && seen=1
  done
  if ((${#found[@]} > 0)); then
    not_ok "$label" "token found in ${found[*]}"
  elif ((seen == 0)); then
    not_ok "$label" "'$control' is not in $* either, so the search proves nothing"
  else
    ok "$label"
  fi
}
# The database files as they are while mcp-mux runs (a -wal file would hold
# the latest writes), and every file of the data directory after it stopped.
mapfile -t files < <(find "$DATA" -type f -name 'mcp-mux.db*')
token_absent_from "token absent from the database while running (${#files[@]} files)" "$SESSION_ID" "${files[@]}"

# ---------------------------------------------------------------- restart
# Sessions and MCP sessions live in the database, so the same URL and the
# same Mcp-Session-Id must work for a new process, and an mcp-remote bridge
# connected across the restart must go on without reconnecting.
HOLD="$WORK/mcp-remote-hold"
rm -f "$HOLD.ready" "$HOLD.go"
# It runs in a subshell: its counts come back as deltas in a file.
(PASSED=0 FAILED=0
 run_client mcp-remote-across-restart node "$HERE/mcp_remote_client.mjs" "$SESSION_URL" \
   --node-modules "$NODE_MODULES" --demo-fingerprint "$TOKEN_FP" \
   --label "mcp-remote across a restart" --hold "$HOLD" >"$WORK/across-restart.out"
 echo "$PASSED $FAILED" >"$WORK/across-restart.counts") &
ACROSS=$!
join_across_restart() {
  local passed=0 failed=1
  touch "$HOLD.go"
  wait "$ACROSS" || true
  cat "$WORK/across-restart.out"
  read -r passed failed <"$WORK/across-restart.counts" || true
  PASSED=$((PASSED + passed)) FAILED=$((FAILED + failed))
}
for _ in $(seq 600); do [[ -f $HOLD.ready ]] && break; sleep 0.1; done
if stop mux 10; then
  ok "mcp-mux stops on SIGTERM within 10 s"
else
  not_ok "mcp-mux stops on SIGTERM within 10 s" "had to be killed"
fi
if start_mux; then
  ok "mcp-mux restarts on the same database"
  join_across_restart
  http GET "$BASE/session/$SESSION_ID"
  expect_status "GET /session/<id> answers 200 after a restart" 200
  http POST "$SESSION_URL" "$LIST" "Mcp-Session-Id: $MCP_SID" "$PROTO"
  if [[ $STATUS == 200 && $BODY == *everything__echo* ]]; then
    ok "an Mcp-Session-Id from before the restart still answers tools/list"
  else
    not_ok "an Mcp-Session-Id from before the restart still answers tools/list" "got $STATUS ${BODY:0:300}"
  fi
  run_client python-after-restart "$PY" "$HERE/python_client.py" "$SESSION_URL" \
    --demo-fingerprint "$TOKEN_FP" --label "python after restart" --protocol 2026-07-28
  run_client mcp-remote-after-restart node "$HERE/mcp_remote_client.mjs" "$SESSION_URL" \
    --node-modules "$NODE_MODULES" --demo-fingerprint "$TOKEN_FP" --label "mcp-remote after restart"
  stop mux 10 || true
else
  join_across_restart
  if alive mux; then why="no 200 on /healthz within 60 s"; else why="it exited"; fi
  not_ok "mcp-mux restarts on the same database" "$why (log below)"
  show_tail "$MUX_LOG" 40
fi

mapfile -t files < <(find "$DATA" -type f)
token_absent_from "token absent from the data directory after stopping (${#files[@]} files)" "$SESSION_ID" "${files[@]}"
token_absent_from "token absent from the trace log ($(wc -l <"$MUX_LOG") lines)" " TRACE " "$MUX_LOG"
token_absent_from "token absent from every answer curl got ($(grep -c '^HTTP/' "$WORK/responses.log") answers)" "$SESSION_ID" "$WORK/responses.log"
if grep -qaF -- "$STDIO_TOKEN" "$MUX_LOG"; then
  not_ok "the stdio backend's credential is absent from the trace log" "found in mcp-mux.log"
else
  ok "the stdio backend's credential is absent from the trace log"
fi

# ---------------------------------------------------------------- OAuth backend
# Sessions signed in to a backend that wants OAuth, on a gateway of its own.
oauth_checks

# ---------------------------------------------------------------- hosts that sign in
host_token_checks
host_signin_checks

summary
