# shellcheck shell=bash
# The OAuth checks of scripts/e2e.sh, which sources this file and calls
# oauth_checks; they use its helpers (http, expect_status, json_field,
# free_port, run_client), harness.sh's, and its INIT, taken (the ports in
# use), MUX, NODE_MODULES and PY.
#
# The backend is the example server of the MCP TypeScript SDK
# (@modelcontextprotocol/sdk, pinned in package.json) with its own OAuth
# authorization server: dynamic client registration, PKCE, consent granted
# without a login page, one-hour access tokens, no refresh token and no
# revocation endpoint. With --oauth-strict it takes only tokens issued for
# the resource http://localhost:PORT/mcp, spelled exactly so, which is why
# the registry names it with `localhost`. A gateway of its own lists it as
# `demo` with auth: { type: oauth }; its tool `greet` answers "Hello, NAME!".
#
# Three sessions: one is authorized in-band by the Python SDK client (the
# link it is given in an error, then the call again), one by following the
# link with curl and then used through mcp-remote, and one that requires a
# session token, whose link carries a one-time key. At the end no access
# token, authorization code or key may be in the gateway's log, and no
# access token in any answer.

# json_at JSON PATH: prints the value at a dotted PATH (authorization.demo.url,
# servers.0.state), a string as it is and anything else as JSON; nothing when
# there is no such value.
json_at() {
  "$PY" -c 'import json, sys
try:
    value = json.loads(sys.argv[1])
    for key in sys.argv[2].split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    print(value if isinstance(value, str) else json.dumps(value, sort_keys=True))
except Exception: pass' "$1" "$2"
}

# wait_log NAME FILE TIMEOUT TEXT...: waits until FILE holds every TEXT.
# Gives up after TIMEOUT seconds or when NAME has died.
wait_log() {
  local name=$1 file=$2 timeout=$3 deadline text missing
  shift 3
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    alive "$name" || return 1
    missing=0
    for text in "$@"; do
      grep -qF -- "$text" "$file" 2>/dev/null || missing=1
    done
    ((missing == 1)) || return 0
    sleep 0.2
  done
  return 1
}

# open_link URL: what a browser does with an authorization link. Follows
# the redirects; sets STATUS (the last answer's) and BODY (its page). Every
# hop's headers are kept in oauth-hops.log, where the authorization codes
# are found later.
open_link() {
  STATUS=$(curl -s -L --max-time 30 -D "$WORK/link-headers" -o "$WORK/link-page" -w '%{http_code}' "$1" || true)
  BODY=$(cat "$WORK/link-page" 2>/dev/null || true)
  { cat "$WORK/link-headers" "$WORK/link-page" && echo; } >>"$WORK/oauth-hops.log" 2>/dev/null || true
}

# expect_state NAME SESSION STATE AUTHORIZATION-STATUS: GET /session/<id>
# on OAUTH_BASE (set by oauth_checks) shows the one server with that state
# and that authorization status.
expect_state() {
  local name=$1 id=$2 state=$3 authorization=$4 got
  http GET "$OAUTH_BASE/session/$id"
  got="$(json_at "$BODY" servers.0.state) $(json_at "$BODY" servers.0.authorization.status)"
  if [[ $STATUS == 200 && $got == "$state $authorization" ]]; then
    ok "$name"
  else
    not_ok "$name" "expected '$state $authorization', got $STATUS '$got' ${BODY:0:300}"
  fi
}

# absent_from NAME PATTERN-FILE FILE...: no line of PATTERN-FILE (fixed
# strings) is in any FILE.
absent_from() {
  local name=$1 patterns=$2 found=() f
  shift 2
  for f in "$@"; do
    [[ -f $f ]] || continue
    grep -qaFf "$patterns" -- "$f" && found+=("${f#"$WORK"/}")
  done
  if ((${#found[@]} > 0)); then not_ok "$name" "found in ${found[*]}"; else ok "$name"; fi
}

oauth_checks() {
  local OAUTH_MCP_PORT OAUTH_AS_PORT OAUTH_MUX_PORT OAUTH_BASE name server log data registry
  local id session_url link page expires count f answers=() mux_log=$WORK/mcp-mux-oauth.log
  for name in OAUTH_MCP_PORT OAUTH_AS_PORT OAUTH_MUX_PORT; do
    printf -v "$name" '%s' "$(free_port)"
    while [[ $taken == *" ${!name} "* ]]; do printf -v "$name" '%s' "$(free_port)"; done
    taken+="${!name} "
  done
  OAUTH_BASE=http://127.0.0.1:$OAUTH_MUX_PORT
  server=$NODE_MODULES/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js
  log=$WORK/oauth-backend.log
  data=$WORK/data-oauth
  registry=$WORK/registry-oauth.yaml
  mkdir -p "$data"
  : >"$WORK/oauth-hops.log"
  : >"$WORK/oauth-locations.log"

  # ------------------------------------------------ the backend and its gateway
  MCP_PORT=$OAUTH_MCP_PORT MCP_AUTH_PORT=$OAUTH_AS_PORT start oauth-backend "$log" \
    node "$server" --oauth --oauth-strict
  if wait_log oauth-backend "$log" 30 "OAuth Authorization Server listening on port $OAUTH_AS_PORT" \
    "MCP Streamable HTTP Server listening on port $OAUTH_MCP_PORT"; then
    ok "oauth: the SDK's example server and its authorization server are up"
  else
    not_ok "oauth: the SDK's example server and its authorization server are up" "not both listening within 30 s"
    show_tail "$log"
    return 0
  fi
  # Without a token it must refuse: otherwise the checks below prove nothing.
  http POST "http://localhost:$OAUTH_MCP_PORT/mcp" "$INIT"
  if [[ $STATUS == 401 ]] && grep -qi '^www-authenticate: Bearer .*resource_metadata=' "$WORK/headers"; then
    ok "oauth: the backend answers 401 with resource_metadata without a token"
  else
    not_ok "oauth: the backend answers 401 with resource_metadata without a token" "got $STATUS ${BODY:0:200}"
  fi

  cat >"$registry" <<YAML
servers:
  demo:
    url: "http://localhost:$OAUTH_MCP_PORT/mcp"
    description: The MCP TypeScript SDK's example server behind its own OAuth authorization server
    auth: { type: oauth }
YAML
  RUST_LOG=trace start mux-oauth "$mux_log" "$MUX" serve \
    --bind "127.0.0.1:$OAUTH_MUX_PORT" \
    --registry "$registry" \
    --database-url "sqlite://$data/mcp-mux.db?mode=rwc" \
    --data-dir "$data"
  if wait_http mux-oauth "$OAUTH_BASE/healthz" 60 200; then
    ok "oauth: an mcp-mux with an OAuth backend serves /healthz"
  else
    not_ok "oauth: an mcp-mux with an OAuth backend serves /healthz" "no 200 within 60 s"
    show_tail "$mux_log" 40
    return 0
  fi

  # ------------------------------------------------ in-band, through the Python SDK
  http POST "$OAUTH_BASE/create-session" '{"servers":["demo"]}'
  id=$(json_field "$BODY" session_id)
  link=$(json_at "$BODY" authorization.demo.url)
  if [[ $STATUS == 201 && -n $id && $(json_at "$BODY" authorization.demo.status) == needed &&
    $link == "$OAUTH_BASE/session/$id/authorize/demo" ]]; then
    ok "oauth: POST /create-session answers authorization.demo needed, with the session's link"
  else
    not_ok "oauth: POST /create-session answers authorization.demo needed, with the session's link" \
      "got $STATUS ${BODY:0:400}"
  fi
  session_url=$OAUTH_BASE/session/$id/mcp
  http GET "$OAUTH_BASE/session/$id"
  if [[ $STATUS == 200 && $(json_at "$BODY" servers.0.state) == needs_authorization &&
    $(json_at "$BODY" servers.0.authorization.status) == needed &&
    $(json_at "$BODY" servers.0.authorization.url) == "$link" ]]; then
    ok "oauth: GET /session/<id> shows demo needs_authorization, with the link"
  else
    not_ok "oauth: GET /session/<id> shows demo needs_authorization, with the link" "got $STATUS ${BODY:0:400}"
  fi
  run_client python-oauth "$PY" "$HERE/oauth_client.py" "$session_url" --link "$link" \
    --locations "$WORK/oauth-locations.log"
  expect_state "oauth: GET /session/<id> shows demo ready and connected after the in-band authorization" \
    "$id" ready connected

  # ------------------------------------------------ the link in a browser, then mcp-remote
  http POST "$OAUTH_BASE/create-session" '{"servers":["demo"]}'
  id=$(json_field "$BODY" session_id)
  link=$(json_at "$BODY" authorization.demo.url)
  session_url=$OAUTH_BASE/session/$id/mcp
  open_link "$link"
  page='<p>demo is connected to this session; you can close this tab.</p>'
  if [[ $STATUS == 200 && $BODY == *"$page"* ]] && grep -qi "^location: $OAUTH_BASE/oauth/callback?" "$WORK/link-headers"; then
    ok "oauth: curl -L on the link goes through the authorization server to the connected page"
  else
    not_ok "oauth: curl -L on the link goes through the authorization server to the connected page" \
      "got $STATUS ${BODY:0:300}"
  fi
  expect_state "oauth: GET /session/<id> shows demo not_opened and connected before any MCP session" \
    "$id" not_opened connected
  run_client mcp-remote-oauth node "$HERE/mcp_remote_client.mjs" "$session_url" \
    --node-modules "$NODE_MODULES" --backends demo --label "mcp-remote oauth" \
    --call demo__greet '{"name": "mcp-remote"}' 'Hello, mcp-remote!'
  expect_state "oauth: GET /session/<id> shows demo ready and connected after mcp-remote's call" \
    "$id" ready connected
  # The grant's expiry and nothing else: the backend issues one-hour tokens.
  expires=$(json_at "$BODY" servers.0.authorization.expires_at)
  if [[ $(json_at "$BODY" servers.0.authorization) == '{"expires_at": "'"$expires"'", "status": "connected"}' ]] &&
    "$PY" -c 'import datetime, sys
at = datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00"))
now = datetime.datetime.now(datetime.timezone.utc)
sys.exit(0 if now < at <= now + datetime.timedelta(hours=1, minutes=5) else 1)' "$expires" 2>/dev/null; then
    ok "oauth: its authorization is {status, expires_at} alone, expiring within the hour"
  else
    not_ok "oauth: its authorization is {status, expires_at} alone, expiring within the hour" \
      "got $(json_at "$BODY" servers.0.authorization)"
  fi
  # The example server offers no revocation: deleting must not fail for that.
  http DELETE "$OAUTH_BASE/session/$id"
  expect_status "oauth: DELETE /session/<id> of a connected session answers 200 (no revocation offered)" 200
  http GET "$OAUTH_BASE/session/$id"
  expect_status "oauth: GET /session/<id> after the DELETE answers 404" 404

  # ------------------------------------------------ a session that requires its token
  http POST "$OAUTH_BASE/create-session" '{"servers":["demo"],"require_token":true}'
  id=$(json_field "$BODY" session_id)
  link=$(json_at "$BODY" authorization.demo.url)
  if [[ $STATUS == 201 && $link == "$OAUTH_BASE/session/$id/authorize/demo?key="?* ]]; then
    ok "oauth: with require_token the link carries a one-time ?key="
  else
    not_ok "oauth: with require_token the link carries a one-time ?key=" "got $STATUS ${BODY:0:400}"
  fi
  [[ $link == *'?key='?* ]] && printf '%s\n' "${link#*\?key=}" >"$WORK/oauth-keys"
  open_link "${link%%\?*}"
  expect_status "oauth: that link without its key answers 401" 401
  open_link "$link"
  if [[ $STATUS == 200 && $BODY == *"$page"* ]]; then
    ok "oauth: that link with its key ends on the connected page"
  else
    not_ok "oauth: that link with its key ends on the connected page" "got $STATUS ${BODY:0:300}"
  fi
  open_link "$link"
  expect_status "oauth: the same key a second time answers 403" 403

  stop mux-oauth 10 || true
  stop oauth-backend 5 || true

  # ------------------------------------------------ no secret in the log or the answers
  for f in "$WORK/responses.log" "$WORK/oauth-hops.log" "$WORK/python-oauth.stderr" "$WORK/mcp-remote-oauth.stderr"; do
    [[ -f $f ]] && answers+=("$f")
  done
  # The example server logs each access token it accepts ("token: '<uuid>'").
  grep -aoE "token: '[^']+'" "$log" | sed -E "s/^token: '(.*)'$/\1/" | sort -u >"$WORK/oauth-access-tokens" || true
  count=$(wc -l <"$WORK/oauth-access-tokens")
  if ((count == 0)); then
    not_ok "oauth: the access tokens are in no answer and not in the gateway's log" \
      "the backend's log names no token, so the search proves nothing"
  else
    absent_from "oauth: the $count access tokens the backend accepted are in no answer and not in the gateway's log" \
      "$WORK/oauth-access-tokens" "$mux_log" "${answers[@]}"
  fi
  if grep -qaiE 'bearer [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$mux_log" "${answers[@]}"; then
    not_ok "oauth: no answer and no line of the gateway's log holds 'Bearer <uuid>'" \
      "$(grep -laiE 'bearer [0-9a-f]{8}-[0-9a-f]{4}-' "$mux_log" "${answers[@]}" | tr '\n' ' ')"
  else
    ok "oauth: no answer and no line of the gateway's log holds 'Bearer <uuid>'"
  fi
  if ! grep -qa ' TRACE ' "$mux_log"; then
    not_ok "oauth: the gateway's trace log holds no access_token" "it has no TRACE line, so the search proves nothing"
  elif grep -qaF access_token "$mux_log"; then
    not_ok "oauth: the gateway's trace log holds no access_token" "$(grep -caF access_token "$mux_log") lines do"
  else
    ok "oauth: the gateway's trace log ($(wc -l <"$mux_log") lines) holds no access_token"
  fi
  # The codes, from the authorization server's redirects to the callback.
  cat "$WORK/oauth-hops.log" "$WORK/oauth-locations.log" | tr -d '\r' |
    sed -nE 's#.*/oauth/callback\?(.*&)?code=([^&[:space:]]+).*#\2#p' | sort -u >"$WORK/oauth-codes"
  count=$(wc -l <"$WORK/oauth-codes")
  if ((count < 3)); then
    not_ok "oauth: the authorization codes are not in the gateway's log" "only $count codes seen in the redirects, 3 expected"
  else
    absent_from "oauth: the $count authorization codes are not in the gateway's log" "$WORK/oauth-codes" "$mux_log"
  fi
  if [[ -s $WORK/oauth-keys ]]; then
    absent_from "oauth: the one-time key is not in the gateway's log" "$WORK/oauth-keys" "$mux_log"
  fi
}
