# shellcheck shell=bash
# The checks of hosts that sign in, for scripts/e2e.sh, which sources this
# file and calls host_token_checks; they use its helpers (http,
# expect_status, json_field, free_port), harness.sh's, and its taken (the
# ports in use), MUX, HERE, NODE_MODULES, PY and the `everything` backend
# (E2E_EVERYTHING_PORT, named in registry.yaml).
#
# The issuer is a real one: scripts/e2e/issuer.mjs runs oauth2-mock-server
# (pinned in package.json) twice, once as the issuer a gateway of its own
# trusts (--oauth-issuer, exactly as the issuer's OpenID discovery spells
# it: http://localhost:PORT, without a trailing slash; it serves no RFC
# 8414 metadata) and once as one it does not; it mints RS256 tokens with the
# claims and kid each check asks for, rotates a key in, and answers RFC 7662
# introspection for opaque tokens. That gateway runs with --oauth-scopes
# mcp:tools and --oauth-sessions-scope mcp:sessions.
#
# Every session URL of an "oauth" session is an OAuth protected resource:
# its Protected Resource Metadata, the WWW-Authenticate challenges spelled
# exactly as the contract spells them, each way a token can be wrong
# (expired, early, another issuer, another audience, a key nobody
# publishes, alg none, HS256 keyed with the public key, too large, too few
# scopes, in the query string), a key rotated in after the gateway started,
# another user's valid token (the same 404 as an unknown session), and
# self-service: two users create, list and delete their own sessions and
# cannot touch each other's. At the end no token is in the gateway's log.

HOST_SCOPE=mcp:tools
HOST_SESSIONS_SCOPE=mcp:sessions
HOST_UNKNOWN=00000000-0000-4000-8000-00000000beef
HOST_INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e-host","version":"1"}}}'
HOST_PROTO='MCP-Protocol-Version: 2025-11-25'

# host_mint JSON: prints a token the issuer signs as JSON asks (see
# issuer.mjs), nothing if it could not, and keeps it for the log check.
host_mint() {
  local token
  token=$(curl -s --max-time 10 -X POST --data-binary @- "$HOST_CONTROL/mint" <<<"$1" || true)
  if [[ $token == *.*.* ]]; then
    printf '%s\n' "$token" >>"$WORK/host-tokens"
    printf '%s' "$token"
  else
    echo "# issuer.mjs could not mint $1: ${token:0:200}" >&2
  fi
}

# host_bearer TOKEN: prints the @FILE argument of http that sends
# `Authorization: Bearer TOKEN` (a file: tokens stay out of the process
# list, and 64 KiB fits where an argument might not). The file is named
# by the token's hash, as this runs in a subshell.
host_bearer() {
  local file
  file=$WORK/host-bearer-$(printf '%s' "$1" | sha256sum | cut -c1-16)
  (umask 077 && printf 'Authorization: Bearer %s\n' "$1" >"$file")
  printf '@%s' "$file"
}

# The last answer's WWW-Authenticate header(s), and one other header.
host_challenge() { sed -n 's/^www-authenticate:[[:space:]]*//Ip' "$WORK/headers" 2>/dev/null | tr -d '\r'; }
host_header() { sed -n "s/^$1:[[:space:]]*//Ip" "$WORK/headers" 2>/dev/null | tr -d '\r' | tail -n 1; }

# host_json_check JSON PYTHON-EXPRESSION [ARG...]: true when the expression
# holds for `j`, the parsed JSON (`a` holds the ARGs).
host_json_check() {
  "$PY" -c 'import json, sys
try: j = json.loads(sys.argv[1])
except Exception: sys.exit(1)
a = sys.argv[3:]
sys.exit(0 if eval(sys.argv[2]) else 1)' "$@" 2>/dev/null
}

# expect_challenge NAME STATUS WWW-AUTHENTICATE: the last answer, exactly.
expect_challenge() {
  local got
  got=$(host_challenge)
  if [[ $STATUS == "$2" && $got == "$3" ]]; then
    ok "$1"
  else
    not_ok "$1" "expected $2 with WWW-Authenticate: $3; got $STATUS with WWW-Authenticate: ${got:-(none)} ${BODY:0:200}"
  fi
}

# expect_refused NAME REASON [URL-OF-METADATA [SCOPE]]: 401 invalid_token
# with that error_description. The contract spells the challenge without
# scope=; a `scope="SCOPE"` (the scopes the resource requires) added
# anywhere is tolerated: RFC 6750 §3 allows it on any challenge.
expect_refused() {
  local name=$1 reason=$2 metadata=${3:-$HOST_PRM} scope=${4:-$HOST_SCOPE} got want
  got=$(host_challenge)
  want="Bearer error=\"invalid_token\", error_description=\"$reason\", resource_metadata=\"$metadata\""
  if [[ $STATUS == 401 && ${got/, scope=\"$scope\"/} == "$want" ]]; then
    ok "$name"
  else
    not_ok "$name" "expected 401 with WWW-Authenticate: $want; got $STATUS with WWW-Authenticate: ${got:-(none)} ${BODY:0:200}"
  fi
}

# expect_insufficient NAME SCOPE METADATA: 403 insufficient_scope naming
# every scope needed and the metadata, as the MCP specification asks of a
# 403 (its "Runtime Insufficient Scope Errors").
expect_insufficient() {
  local got want="Bearer error=\"insufficient_scope\", error_description=\"the token lacks scopes; it needs $2\", resource_metadata=\"$3\", scope=\"$2\""
  got=$(host_challenge)
  if [[ $STATUS == 403 && $got == "$want" ]]; then
    ok "$1"
  else
    not_ok "$1" "expected 403 with WWW-Authenticate: $want; got $STATUS with WWW-Authenticate: ${got:-(none)} ${BODY:0:200}"
  fi
}

# host_as_unknown ID: the last answer with ID written as <id>, to compare
# with an unknown session's (whose id it names).
host_as_unknown() { printf '%s %s %s' "$STATUS" "$(host_header content-type)" "${BODY//$1/<id>}"; }

# expect_like_unknown NAME METHOD URL-OF-THE-SESSION ID HEADER: the answer
# to METHOD on that URL with HEADER is the one an unknown session gets.
expect_like_unknown() {
  local name=$1 method=$2 url=$3 id=$4 header=$5 body='' mine unknown
  [[ $method == POST ]] && body=$HOST_INIT
  http "$method" "$url" "$body" "$header" "$HOST_PROTO"
  mine=$(host_as_unknown "$id")
  http "$method" "${url//$id/$HOST_UNKNOWN}" "$body" "$header" "$HOST_PROTO"
  unknown=$(host_as_unknown "$HOST_UNKNOWN")
  if [[ $mine == 404* && $mine == "$unknown" ]]; then
    ok "$name"
  else
    not_ok "$name" "expected the unknown session's answer '${unknown:0:200}', got '${mine:0:200}'"
  fi
}

# host_create NAME WANT-OWNER HEADER BODY: POST /create-session as HEADER;
# sets HOST_ID and HOST_URL (the answer's mcp_url).
host_create() {
  local name=$1 owner=$2
  http POST "$HOST_BASE/create-session" "$4" "$3"
  HOST_ID=$(json_field "$BODY" session_id)
  HOST_URL=$(json_field "$BODY" mcp_url)
  if [[ $STATUS == 201 && -n $HOST_ID && $HOST_URL == "$HOST_BASE/session/$HOST_ID/mcp" ]] &&
    host_json_check "$BODY" '(j.get("access") == "oauth" and j.get("owner") == {"issuer": a[0], "subject": a[1]}
      and "Authorization" not in json.dumps(j.get("client_configs")) and "session_token" not in j)' "$HOST_ISSUER" "$owner"; then
    ok "$name"
  else
    not_ok "$name" "got $STATUS ${BODY:0:400}"
  fi
}

# host_session_ids HEADER: sets HOST_IDS to the ids GET /sessions lists for
# HEADER, sorted, comma-separated.
host_session_ids() {
  http GET "$HOST_BASE/sessions?limit=1000" "" "$1"
  HOST_IDS=$("$PY" -c 'import json, sys
try: print(",".join(sorted(s["session_id"] for s in json.loads(sys.argv[1])["sessions"])))
except Exception: print("(not a list: " + sys.argv[1][:200] + ")")' "$BODY")
}

host_token_checks() {
  local HOST_ISSUER_PORT HOST_UNTRUSTED_PORT HOST_CONTROL_PORT HOST_MUX_PORT HOST_BASE HOST_CONTROL
  local HOST_ISSUER HOST_UNTRUSTED HOST_PRM HOST_ID HOST_URL HOST_IDS HOST_STARTED name
  local issuer_log=$WORK/host-issuer.log mux_log=$WORK/mcp-mux-hosts.log data=$WORK/data-hosts
  local admin admin_header introspection_secret got want
  local alice_id alice_url plain_id static_url valid rotated_kid token mcp_sid answer
  local alice_self_id alice_self_url bob_self_id bob_self_url
  for name in HOST_ISSUER_PORT HOST_UNTRUSTED_PORT HOST_CONTROL_PORT HOST_MUX_PORT; do
    printf -v "$name" '%s' "$(free_port)"
    while [[ $taken == *" ${!name} "* ]]; do printf -v "$name" '%s' "$(free_port)"; done
    taken+="${!name} "
  done
  HOST_BASE=http://127.0.0.1:$HOST_MUX_PORT
  HOST_CONTROL=http://127.0.0.1:$HOST_CONTROL_PORT
  mkdir -p "$data"
  : >"$WORK/host-tokens"
  introspection_secret="e2e-introspection-$("$PY" -c 'import secrets; print(secrets.token_hex(12))')"

  # ------------------------------------------------ the issuers
  start host-issuer "$issuer_log" node "$HERE/issuer.mjs" --port "$HOST_ISSUER_PORT" \
    --untrusted-port "$HOST_UNTRUSTED_PORT" --control-port "$HOST_CONTROL_PORT" \
    --node-modules "$NODE_MODULES" --introspection-client "mcp-mux-e2e:$introspection_secret"
  if ! wait_http host-issuer "$HOST_CONTROL/info" 30 200; then
    not_ok "host tokens: oauth2-mock-server is up" "no answer on its control port within 30 s"
    show_tail "$issuer_log"
    return 0
  fi
  http GET "$HOST_CONTROL/info"
  HOST_ISSUER=$(json_field "$BODY" issuer)
  HOST_UNTRUSTED=$(json_field "$BODY" untrusted_issuer)
  # What the gateway will find: OpenID discovery only, spelling the issuer
  # with `localhost`; a JWKS with the key the tokens name.
  http GET "$HOST_ISSUER/.well-known/oauth-authorization-server"
  got=$STATUS
  http GET "$HOST_ISSUER/.well-known/openid-configuration"
  if [[ $got == 404 && $STATUS == 200 && $HOST_ISSUER == "http://localhost:$HOST_ISSUER_PORT" ]] &&
    host_json_check "$BODY" 'j["issuer"] == a[0] and j["jwks_uri"] == a[0] + "/jwks" and j["introspection_endpoint"] == a[0] + "/introspect"' "$HOST_ISSUER"; then
    ok "host tokens: oauth2-mock-server serves OpenID discovery of issuer $HOST_ISSUER (RFC 8414's path: 404)"
  else
    not_ok "host tokens: oauth2-mock-server serves OpenID discovery of issuer http://localhost:$HOST_ISSUER_PORT" \
      "RFC 8414 path $got, OpenID $STATUS, issuer '$HOST_ISSUER' ${BODY:0:200}"
  fi
  http GET "$HOST_ISSUER/jwks"
  if [[ $STATUS == 200 ]] && host_json_check "$BODY" 'len(j["keys"]) == 1 and j["keys"][0]["alg"] == "RS256" and "d" not in j["keys"][0]'; then
    ok "host tokens: its JWKS publishes one RS256 public key"
  else
    not_ok "host tokens: its JWKS publishes one RS256 public key" "got $STATUS ${BODY:0:200}"
  fi

  # ------------------------------------------------ the gateway that trusts it
  admin="e2e-host-admin-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
  admin_header=@$WORK/host-admin-header
  (umask 077 && printf 'Authorization: Bearer %s\n' "$admin" >"$WORK/host-admin-header")
  RUST_LOG=trace MCP_MUX_ADMIN_TOKEN=$admin \
    MCP_MUX_OAUTH_INTROSPECTION_CLIENT_ID=mcp-mux-e2e MCP_MUX_OAUTH_INTROSPECTION_SECRET=$introspection_secret \
    start mux-hosts "$mux_log" "$MUX" serve \
    --bind "127.0.0.1:$HOST_MUX_PORT" \
    --registry "$HERE/registry.yaml" \
    --database-url "sqlite://$data/mcp-mux.db?mode=rwc" \
    --data-dir "$data" \
    --oauth-issuer "$HOST_ISSUER" \
    --oauth-scopes "$HOST_SCOPE" \
    --oauth-sessions-scope "$HOST_SESSIONS_SCOPE"
  if wait_http mux-hosts "$HOST_BASE/healthz" 60 200; then
    HOST_STARTED=$SECONDS
    ok "host tokens: an mcp-mux trusting $HOST_ISSUER serves /healthz"
  else
    if alive mux-hosts; then got="no 200 within 60 s"; else got="it exited"; fi
    not_ok "host tokens: an mcp-mux trusting $HOST_ISSUER serves /healthz" "$got (log below)"
    show_tail "$mux_log" 40
    stop host-issuer 5 || true
    return 0
  fi

  # ------------------------------------------------ a session signed in to by alice
  host_create "host tokens: the admin's POST /create-session of an oauth session for alice answers access, owner and mcp_url, and no Authorization in client_configs" \
    alice "$admin_header" "{\"servers\":[\"everything\"],\"access\":\"oauth\",\"owner\":{\"issuer\":\"$HOST_ISSUER\",\"subject\":\"alice\"}}"
  alice_id=$HOST_ID alice_url=$HOST_URL
  if [[ -z $alice_id || -z $alice_url ]]; then
    echo "# giving up on the host token checks: they all need that session" >&2
    stop mux-hosts 10 || true
    stop host-issuer 5 || true
    return 0
  fi
  HOST_PRM=$HOST_BASE/.well-known/oauth-protected-resource/session/$alice_id/mcp

  # The first valid token, then at once a key rotated in: the keys the
  # gateway fetched at start do not have it, and it must fetch them again.
  valid=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$valid")"
  mcp_sid=$MCP_SESSION_HEADER
  if [[ $STATUS == 200 && -n $mcp_sid ]]; then
    ok "host tokens: initialize with alice's token (aud = the mcp_url) answers 200 with an Mcp-Session-Id"
  else
    not_ok "host tokens: initialize with alice's token (aud = the mcp_url) answers 200 with an Mcp-Session-Id" \
      "got $STATUS $(host_challenge) ${BODY:0:300}"
  fi
  http POST "$HOST_CONTROL/rotate" '{"kid":"rotated-in-later"}'
  rotated_kid=$(json_field "$BODY" kid)
  token=$(host_mint "{\"kid\":\"$rotated_kid\",\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  if [[ $STATUS == 200 && -n $rotated_kid ]]; then
    ok "host tokens: a token signed by a key rotated in after the gateway started is accepted (one JWKS refetch)"
  else
    not_ok "host tokens: a token signed by a key rotated in after the gateway started is accepted (one JWKS refetch)" \
      "kid '$rotated_kid', $((SECONDS - HOST_STARTED)) s after the gateway answered /healthz: got $STATUS $(host_challenge) ${BODY:0:200}"
  fi
  # Signed by the issuer's real key, but naming one nobody publishes.
  token=$(host_mint "{\"header\":{\"kid\":\"made-up-kid\"},\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: a made-up kid is refused: the token names a key its issuer does not publish" \
    "the token names a key its issuer does not publish"

  # ------------------------------------------------ the MCP session and the tools routes with the token
  http POST "$alice_url" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$(host_bearer "$valid")" \
    "Mcp-Session-Id: $mcp_sid" "$HOST_PROTO"
  http POST "$alice_url" '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' "$(host_bearer "$valid")" \
    "Mcp-Session-Id: $mcp_sid" "$HOST_PROTO"
  if [[ $STATUS == 200 && $BODY == *everything__echo* ]]; then
    ok "host tokens: tools/list with alice's token answers everything__echo"
  else
    not_ok "host tokens: tools/list with alice's token answers everything__echo" "got $STATUS ${BODY:0:300}"
  fi
  http GET "$HOST_BASE/session/$alice_id/tools" "" "$(host_bearer "$valid")"
  if [[ $STATUS == 200 && $BODY == *everything__echo* ]]; then
    ok "host tokens: GET /session/<id>/tools with alice's token lists everything__echo"
  else
    not_ok "host tokens: GET /session/<id>/tools with alice's token lists everything__echo" "got $STATUS ${BODY:0:300}"
  fi
  http POST "$HOST_BASE/session/$alice_id/tools/everything__echo" '{"message":"signed in"}' "$(host_bearer "$valid")"
  if [[ $STATUS == 200 && $BODY == *'Echo: signed in'* ]]; then
    ok "host tokens: POST /session/<id>/tools/everything__echo with alice's token answers Echo: signed in"
  else
    not_ok "host tokens: POST /session/<id>/tools/everything__echo with alice's token answers Echo: signed in" \
      "got $STATUS ${BODY:0:300}"
  fi
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":[\"https://elsewhere.example/mcp\",\"$alice_url\"],\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_status "host tokens: a token whose aud list holds the mcp_url is accepted (RFC 7519 §4.1.3)" 200

  # ------------------------------------------------ Protected Resource Metadata
  http GET "$HOST_PRM" "" "Origin: https://host.example"
  if [[ $STATUS == 200 ]] && host_json_check "$BODY" 'j == {"resource": a[0], "authorization_servers": [a[1]], "scopes_supported": [a[2]], "bearer_methods_supported": ["header"]}' \
    "$alice_url" "$HOST_ISSUER" "$HOST_SCOPE"; then
    ok "host tokens: the session's Protected Resource Metadata is {resource: the mcp_url, authorization_servers, scopes_supported, bearer_methods_supported: [header]}"
  else
    not_ok "host tokens: the session's Protected Resource Metadata is {resource: the mcp_url, authorization_servers, scopes_supported, bearer_methods_supported: [header]}" \
      "GET $HOST_PRM: got $STATUS ${BODY:0:400}"
  fi
  got=$(host_header access-control-allow-origin)
  if [[ $got == '*' ]]; then
    ok "host tokens: it answers a browser's request with Access-Control-Allow-Origin: *"
  else
    not_ok "host tokens: it answers a browser's request with Access-Control-Allow-Origin: *" "got $STATUS, Access-Control-Allow-Origin: '${got}'"
  fi
  http GET "$HOST_BASE/.well-known/oauth-protected-resource" "" "Origin: https://host.example"
  if [[ $STATUS == 200 && $(host_header access-control-allow-origin) == '*' ]] &&
    host_json_check "$BODY" 'j == {"resource": a[0], "authorization_servers": [a[1]], "scopes_supported": [a[2]], "bearer_methods_supported": ["header"]}' \
      "$HOST_BASE" "$HOST_ISSUER" "$HOST_SESSIONS_SCOPE"; then
    ok "host tokens: the gateway's Protected Resource Metadata names B, the issuer and the sessions scope, with Access-Control-Allow-Origin: *"
  else
    not_ok "host tokens: the gateway's Protected Resource Metadata names B, the issuer and the sessions scope, with Access-Control-Allow-Origin: *" \
      "got $STATUS, Access-Control-Allow-Origin: '$(host_header access-control-allow-origin)' ${BODY:0:400}"
  fi
  http GET "$HOST_BASE/.well-known/oauth-protected-resource/session/$HOST_UNKNOWN/mcp"
  expect_status "host tokens: the metadata of an unknown session answers 404" 404
  http POST "$HOST_BASE/create-session" '{"servers":["everything"]}' "$admin_header"
  plain_id=$(json_field "$BODY" session_id)
  http GET "$HOST_BASE/.well-known/oauth-protected-resource/session/$plain_id/mcp"
  expect_status "host tokens: the metadata of a session that is not oauth answers 404" 404

  # ------------------------------------------------ challenges
  want="Bearer resource_metadata=\"$HOST_PRM\", scope=\"$HOST_SCOPE\""
  http POST "$alice_url" "$HOST_INIT"
  expect_challenge "host tokens: POST without a token answers 401, WWW-Authenticate: Bearer resource_metadata=..., scope=..." 401 "$want"
  http GET "$alice_url" "" "Accept: text/event-stream"
  expect_challenge "host tokens: GET (the SSE stream) without a token answers 401 with that challenge" 401 "$want"
  http DELETE "$alice_url" "" "Mcp-Session-Id: $mcp_sid"
  expect_challenge "host tokens: DELETE without a token answers 401 with that challenge" 401 "$want"
  http GET "$HOST_BASE/session/$alice_id/tools"
  expect_challenge "host tokens: GET /session/<id>/tools without a token answers 401 with that challenge" 401 "$want"
  http POST "$HOST_BASE/session/$alice_id/tools/everything__echo" '{"message":"anonymous"}'
  expect_challenge "host tokens: POST /session/<id>/tools/<name> without a token answers 401 with that challenge" 401 "$want"

  # ------------------------------------------------ each way a token is wrong
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"},\"exp_in\":-600,\"nbf_in\":-4200,\"iat_in\":-4200}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: an expired token (10 min ago) is refused: the token has expired" "the token has expired"
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"},\"nbf_in\":600}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: a token valid in 10 min is refused: the token is not valid yet" "the token is not valid yet"
  token=$(host_mint "{\"issuer\":\"untrusted\",\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: a token of another real issuer ($HOST_UNTRUSTED) is refused: its issuer is not trusted" \
    "the token's issuer is not one this gateway trusts"
  token=$(host_mint "{\"claims\":{\"iss\":\"$HOST_ISSUER/\",\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: the trusted key's token with iss spelled with a trailing slash is refused: its issuer is not trusted" \
    "the token's issuer is not one this gateway trusts"
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$HOST_BASE/session/$plain_id/mcp\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: a token for another session's URL is refused: the token is for another audience" \
    "the token is for another audience"
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url/\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: a token for the mcp_url with a trailing slash is refused: the token is for another audience" \
    "the token is for another audience"
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$HOST_BASE\",\"scope\":\"$HOST_SCOPE $HOST_SESSIONS_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: a token for the gateway itself (aud B) is refused on a session URL: the token is for another audience" \
    "the token is for another audience"
  token=$(host_mint "{\"alg\":\"none\",\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: an unsigned token ({\"alg\":\"none\"}, empty signature) is refused" \
    "the token is signed with none, which is not accepted (public-key signatures only)"
  token=$(host_mint "{\"alg\":\"HS256-public-pem\",\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: an HS256 token keyed with the issuer's public key PEM is refused (key confusion)" \
    "the token is signed with HS256, which is not accepted (public-key signatures only)"
  # Mallory's claims under alice's signature.
  token=$(host_mint "{\"claims\":{\"sub\":\"mallory\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"}}")
  token=${token%.*}.${valid##*.}
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: claims under another token's signature are refused: the token's signature does not verify" \
    "the token's signature does not verify"
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"},\"size\":17000}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_refused "host tokens: a validly signed token of 17000 bytes is refused: the token is over 16384 bytes" \
    "the token is over 16384 bytes"
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"},\"size\":65536}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  if [[ $STATUS == 431 ]]; then
    ok "host tokens: a validly signed token of 64 KiB is refused (431 from the HTTP server)"
  else
    expect_refused "host tokens: a validly signed token of 64 KiB is refused: the token is over 16384 bytes" \
      "the token is over 16384 bytes"
  fi
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"openid profile\"}}")
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_insufficient "host tokens: a token without $HOST_SCOPE answers 403 insufficient_scope naming $HOST_SCOPE" \
    "$HOST_SCOPE" "$HOST_PRM"
  http POST "$alice_url?access_token=$valid" "$HOST_INIT"
  expect_status "host tokens: a token in the query string (?access_token=) answers 400" 400
  http GET "$HOST_BASE/healthz"
  expect_status "host tokens: the gateway still answers /healthz after every refused token" 200

  # ------------------------------------------------ another user's valid token
  token=$(host_mint "{\"claims\":{\"sub\":\"bob\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\"}}")
  expect_like_unknown "host tokens: bob's valid token on alice's session URL gets exactly an unknown session's 404" \
    POST "$alice_url" "$alice_id" "$(host_bearer "$token")"
  expect_like_unknown "host tokens: bob's valid token on alice's GET /session/<id>/tools gets exactly an unknown session's 404" \
    GET "$HOST_BASE/session/$alice_id/tools" "$alice_id" "$(host_bearer "$token")"

  # ------------------------------------------------ opaque tokens (RFC 7662)
  token="e2e-opaque-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
  printf '%s\n' "$token" >>"$WORK/host-tokens"
  http POST "$HOST_CONTROL/opaque" "{\"token\":\"$token\",\"response\":{\"active\":true,\"iss\":\"$HOST_ISSUER\",\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SCOPE\",\"client_id\":\"e2e-host\",\"token_type\":\"access_token\",\"exp\":$(($(date +%s) + 600))}}"
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  expect_status "host tokens: alice's opaque token, active at the issuer's introspection, is accepted" 200
  http GET "$HOST_CONTROL/introspections"
  if host_json_check "$BODY" 'any(i["token"] == a[0] for i in j) and all(i["authorized"] for i in j)' "$token"; then
    ok "host tokens: the gateway introspected it with its client_secret_basic credentials"
  else
    not_ok "host tokens: the gateway introspected it with its client_secret_basic credentials" "the issuer saw: ${BODY:0:300}"
  fi
  token="e2e-opaque-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
  printf '%s\n' "$token" >>"$WORK/host-tokens"
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  got=$(host_challenge)
  if [[ $STATUS == 401 && $got == 'Bearer error="invalid_token", error_description="'* && $got == *"resource_metadata=\"$HOST_PRM\""* ]]; then
    ok "host tokens: an opaque token its issuer says is not active is refused (invalid_token)"
  else
    not_ok "host tokens: an opaque token its issuer says is not active is refused (invalid_token)" "got $STATUS with WWW-Authenticate: ${got:-(none)}"
  fi
  token="e2e-opaque-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
  printf '%s\n' "$token" >>"$WORK/host-tokens"
  http POST "$HOST_CONTROL/opaque" "{\"token\":\"$token\",\"response\":{\"active\":true,\"iss\":\"$HOST_ISSUER\",\"sub\":\"alice\",\"aud\":\"https://elsewhere.example/mcp\",\"scope\":\"$HOST_SCOPE\",\"exp\":$(($(date +%s) + 600))}}"
  http POST "$alice_url" "$HOST_INIT" "$(host_bearer "$token")"
  got=$(host_challenge)
  if [[ $STATUS == 401 && $got == 'Bearer error="invalid_token", error_description="'* ]]; then
    ok "host tokens: an active opaque token for another audience is refused (invalid_token)"
  else
    not_ok "host tokens: an active opaque token for another audience is refused (invalid_token)" "got $STATUS with WWW-Authenticate: ${got:-(none)}"
  fi

  # ------------------------------------------------ a static-token session on the same gateway
  http POST "$HOST_BASE/create-session" '{"servers":["everything"],"require_token":true}' "$admin_header"
  static_url=$HOST_BASE/session/$(json_field "$BODY" session_id)/mcp
  http POST "$static_url" "$HOST_INIT"
  got=$(host_challenge)
  if [[ $STATUS == 401 && $got == Bearer* && $got != *resource_metadata* && $BODY == *'Authorization: Bearer <session token>'* ]]; then
    ok "host tokens: a require_token session still answers 401 without resource_metadata, asking for its session token"
  else
    not_ok "host tokens: a require_token session still answers 401 without resource_metadata, asking for its session token" \
      "got $STATUS with WWW-Authenticate: ${got:-(none)} ${BODY:0:300}"
  fi

  # ------------------------------------------------ self-service
  local alice_self bob_self
  alice_self=$(host_bearer "$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$HOST_BASE\",\"scope\":\"$HOST_SESSIONS_SCOPE $HOST_SCOPE\"}}")")
  bob_self=$(host_bearer "$(host_mint "{\"claims\":{\"sub\":\"bob\",\"aud\":\"$HOST_BASE/\",\"scope\":\"$HOST_SESSIONS_SCOPE\"}}")")
  http POST "$HOST_BASE/create-session" '{"servers":["everything"]}'
  got=$(host_challenge)
  if [[ $STATUS == 401 && $got == *"resource_metadata=\"$HOST_BASE/.well-known/oauth-protected-resource\""* ]]; then
    ok "host tokens: POST /create-session without a token answers 401 naming the gateway's metadata"
  else
    not_ok "host tokens: POST /create-session without a token answers 401 naming the gateway's metadata" \
      "got $STATUS with WWW-Authenticate: ${got:-(none)}"
  fi
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$HOST_BASE\",\"scope\":\"$HOST_SCOPE\"}}")
  http POST "$HOST_BASE/create-session" '{"servers":["everything"]}' "$(host_bearer "$token")"
  expect_insufficient "host tokens: POST /create-session with a token without $HOST_SESSIONS_SCOPE answers 403 insufficient_scope naming it" \
    "$HOST_SESSIONS_SCOPE" "$HOST_BASE/.well-known/oauth-protected-resource"
  token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_url\",\"scope\":\"$HOST_SESSIONS_SCOPE $HOST_SCOPE\"}}")
  http POST "$HOST_BASE/create-session" '{"servers":["everything"]}' "$(host_bearer "$token")"
  expect_refused "host tokens: POST /create-session with a token for a session URL is refused: the token is for another audience" \
    "the token is for another audience" "$HOST_BASE/.well-known/oauth-protected-resource" "$HOST_SESSIONS_SCOPE"
  host_create "host tokens: alice's own POST /create-session (aud B) answers 201, access oauth, owned by her" \
    alice "$alice_self" '{"servers":["everything"]}'
  alice_self_id=$HOST_ID alice_self_url=$HOST_URL
  host_create "host tokens: bob's own POST /create-session (aud B/) answers 201, access oauth, owned by him" \
    bob "$bob_self" '{"servers":["everything"]}'
  bob_self_id=$HOST_ID bob_self_url=$HOST_URL

  host_session_ids "$alice_self"
  want=$(printf '%s\n' "$alice_id" "$alice_self_id" | sort | paste -sd, -)
  if [[ $STATUS == 200 && $HOST_IDS == "$want" ]]; then
    ok "host tokens: alice's GET /sessions lists her two sessions and nothing else"
  else
    not_ok "host tokens: alice's GET /sessions lists her two sessions and nothing else" "expected $want, got $STATUS $HOST_IDS"
  fi
  host_session_ids "$bob_self"
  if [[ $STATUS == 200 && $HOST_IDS == "$bob_self_id" ]]; then
    ok "host tokens: bob's GET /sessions lists his session and nothing else"
  else
    not_ok "host tokens: bob's GET /sessions lists his session and nothing else" "expected $bob_self_id, got $STATUS $HOST_IDS"
  fi
  host_session_ids "$admin_header"
  got=0
  for name in "$alice_id" "$alice_self_id" "$bob_self_id" "$plain_id"; do
    [[ -n $name && ,$HOST_IDS, == *",$name,"* ]] || got=1
  done
  if [[ $STATUS == 200 && $got == 0 ]]; then
    ok "host tokens: the admin's GET /sessions lists alice's, bob's and the plain sessions"
  else
    not_ok "host tokens: the admin's GET /sessions lists alice's, bob's and the plain sessions" "got $STATUS $HOST_IDS"
  fi

  http GET "$HOST_BASE/session/$alice_self_id" "" "$alice_self"
  expect_status "host tokens: alice's GET /session/<her id> answers 200" 200
  expect_like_unknown "host tokens: bob's GET /session/<alice's id> gets exactly an unknown session's 404" \
    GET "$HOST_BASE/session/$alice_self_id" "$alice_self_id" "$bob_self"
  expect_like_unknown "host tokens: bob's DELETE /session/<alice's id> gets exactly an unknown session's 404" \
    DELETE "$HOST_BASE/session/$alice_self_id" "$alice_self_id" "$bob_self"
  http GET "$HOST_BASE/session/$alice_self_id" "" "$alice_self"
  expect_status "host tokens: alice's session is still there after bob's DELETE" 200
  if [[ -n $alice_self_url ]]; then
    token=$(host_mint "{\"claims\":{\"sub\":\"bob\",\"aud\":\"$alice_self_url\",\"scope\":\"$HOST_SCOPE\"}}")
    expect_like_unknown "host tokens: bob's valid token for alice's own session URL gets exactly an unknown session's 404" \
      POST "$alice_self_url" "$alice_self_id" "$(host_bearer "$token")"
    token=$(host_mint "{\"claims\":{\"sub\":\"alice\",\"aud\":\"$alice_self_url\",\"scope\":\"$HOST_SCOPE\"}}")
    http POST "$alice_self_url" "$HOST_INIT" "$(host_bearer "$token")"
    expect_status "host tokens: alice's token for her own session's URL initializes (200)" 200
  fi
  if [[ -n $bob_self_url ]]; then
    token=$(host_mint "{\"claims\":{\"sub\":\"bob\",\"aud\":\"$bob_self_url\",\"scope\":\"$HOST_SCOPE\"}}")
    http POST "$bob_self_url" "$HOST_INIT" "$(host_bearer "$token")"
    expect_status "host tokens: bob's token for his own session's URL initializes (200)" 200
  fi
  http DELETE "$HOST_BASE/session/$alice_self_id" "" "$alice_self"
  expect_status "host tokens: alice's DELETE /session/<her id> answers 200" 200
  http GET "$HOST_BASE/session/$alice_self_id" "" "$alice_self"
  expect_status "host tokens: alice's deleted session answers 404" 404
  http DELETE "$HOST_BASE/session/$alice_id" "" "$admin_header"
  expect_status "host tokens: the admin's DELETE of the session it made for alice answers 200" 200
  http GET "$HOST_BASE/session/$alice_id" "" "$admin_header"
  expect_status "host tokens: that session answers 404 after it" 404

  stop mux-hosts 10 || true
  stop host-issuer 5 || true

  # ------------------------------------------------ no token in the log
  # The signatures (and the opaque tokens) stand for the tokens: unique, and
  # short enough to search for.
  sed -E 's/^[^.]*\.[^.]*\.//' "$WORK/host-tokens" | grep -v '^$' | sort -u >"$WORK/host-token-patterns" || true
  got=$(wc -l <"$WORK/host-token-patterns")
  if ! grep -qa ' TRACE ' "$mux_log"; then
    not_ok "host tokens: the $got tokens presented are not in the gateway's trace log" "it has no TRACE line, so the search proves nothing"
  elif grep -qaFf "$WORK/host-token-patterns" "$mux_log"; then
    not_ok "host tokens: the $got tokens presented are not in the gateway's trace log" \
      "$(grep -caFf "$WORK/host-token-patterns" "$mux_log") lines of mcp-mux-hosts.log hold one"
  else
    ok "host tokens: the $got tokens presented are not in the gateway's trace log ($(wc -l <"$mux_log") lines)"
  fi
  if grep -qaF -- "$introspection_secret" "$mux_log"; then
    not_ok "host tokens: the introspection secret is not in the gateway's log" "found in mcp-mux-hosts.log"
  else
    ok "host tokens: the introspection secret is not in the gateway's log"
  fi
}
