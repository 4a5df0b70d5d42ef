# shellcheck shell=bash
# The host sign-in checks of scripts/e2e.sh, which sources this file and calls
# host_signin_checks; they use its helpers (http, expect_status, json_field,
# free_port, run_client), harness.sh's, oauth.sh's (json_at, wait_log,
# absent_from), and its INIT, taken (the ports in use), MUX, NODE_MODULES, PY
# and the everything backend.
#
# Sessions whose URL is an OAuth 2.1 protected resource ("access":"oauth"),
# each owned by one user of the authorization server, and real hosts signing
# in to them by themselves: mcp-remote (npm), the stdio bridge desktop hosts
# run, and the Python SDK client with its OAuthClientProvider. Each goes
# through the whole flow: the 401 and its resource_metadata, Protected
# Resource Metadata (RFC 9728), the authorization server's metadata, dynamic
# client registration (RFC 7591), PKCE, a login page and a consent page in a
# browser, the token for the session URL (RFC 8707 resource), then tools/list
# and tools/call through the gateway.
#
# The authorization server is oidc-provider (npm, pinned in package.json),
# run by scripts/e2e/host_signin_as.mjs: its development login and consent
# pages (the login name becomes the token's `sub`), opaque access tokens for
# mcp-remote, which the gateway checks by introspection (RFC 7662) with a
# client of its own, and JWT access tokens for the Python client, which it
# checks against the issuer's JWKS. oidc-provider 9 also supports Client ID
# Metadata Documents (draft-ietf-oauth-client-id-metadata-document, SEP-991;
# client_id_metadata_document_supported), and so do mcp-remote
# (--client-metadata-url) and the Python SDK (client_metadata_url): both
# hosts sign in once more with one instead of registering. A document's URL
# must be https, so they are served on localhost with a certificate made here
# (openssl).
#
# The browser is scripts/e2e/host_signin_browser.sh (curl), put first on PATH
# as xdg-open and named in BROWSER: mcp-remote opens links with the `open`
# package, whose own copy of xdg-open runs $BROWSER when there is no desktop.
# The Python client's redirect handler does the same with httpx2.
#
# At the end a user's token opens no other user's session (404, as for an
# unknown one), and no access token and not the introspection secret is in
# the gateway's trace log or in any answer.

# hs_said NAME JSON: the authorization server's log has an event (a JSON line)
# with every field of JSON.
hs_said() {
  if "$PY" -c 'import json, sys
want = json.loads(sys.argv[2])
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    if isinstance(event, dict) and all(event.get(k) == v for k, v in want.items()):
        sys.exit(0)
sys.exit(1)' "$HS_AS_LOG" "$2"; then
    ok "$1"
  else
    not_ok "$1" "no event $2 in the authorization server's log"
    grep -aF '{"event"' "$HS_AS_LOG" | tail -n 8 | note
  fi
}

# hs_session LOGIN: an "oauth" session owned by LOGIN at the issuer, created by
# the admin; sets HS_ID and HS_URL.
hs_session() {
  local login=$1 configs
  http POST "$HS_BASE/create-session" \
    "{\"servers\":[\"everything\"],\"access\":\"oauth\",\"owner\":{\"issuer\":\"$HS_ISS\",\"subject\":\"$login\"}}" \
    "@$WORK/host-admin-header"
  HS_ID=$(json_field "$BODY" session_id)
  HS_URL=$(json_field "$BODY" mcp_url)
  configs=$(json_at "$BODY" client_configs)
  if [[ $STATUS == 201 && -n $HS_ID && $HS_URL == "$HS_BASE/session/$HS_ID/mcp" &&
    $(json_at "$BODY" access) == oauth &&
    $(json_at "$BODY" owner.issuer) == "$HS_ISS" && $(json_at "$BODY" owner.subject) == "$login" &&
    $configs != *Authorization* ]]; then
    ok "host sign-in: POST /create-session (admin) answers 201, access oauth, owner $login, its mcp_url, client_configs without an Authorization header"
  else
    not_ok "host sign-in: POST /create-session (admin) answers 201, access oauth, owner $login, its mcp_url, client_configs without an Authorization header" \
      "got $STATUS ${BODY:0:500}"
    HS_URL=${HS_URL:-$HS_BASE/session/$HS_ID/mcp}
  fi
}

# hs_browser_signed_in NAME LOGFILE LOGIN CALLBACK: the scripted browser went
# through the login and consent pages and its callback answered 200.
hs_browser_signed_in() {
  local name=$1 log=$2 login=$3 callback=$4
  if grep -qF "login page: signing in as $login" "$log" 2>/dev/null && grep -qF 'consent page:' "$log" &&
    grep -qF "callback $callback -> 200" "$log"; then
    ok "$name"
  else
    not_ok "$name" "the browser's log:"
    note <"$log" 2>/dev/null || true
  fi
}

# hs_other_audience WHAT URL HEADER-FILE: a token for another session URL
# answers 401 invalid_token, "the token is for another audience".
hs_other_audience() {
  local www
  http POST "$2" "$INIT" "@$3"
  www=$(sed -n 's/^www-authenticate:[[:space:]]*//Ip' "$WORK/headers" | tr -d '\r')
  if [[ $STATUS == 401 && $www == *'error="invalid_token"'* &&
    $www == *'error_description="the token is for another audience"'* ]]; then
    ok "host sign-in: $1 answers 401 invalid_token, for another audience"
  else
    not_ok "host sign-in: $1 answers 401 invalid_token, for another audience" "got $STATUS, WWW-Authenticate: $www"
  fi
}

# hs_answer ID HEADER-FILE: prints "STATUS BODY N" of an initialize with that
# header on session ID's URL, N the number of WWW-Authenticate headers, and
# the id written <id> in the body (which may name the session asked for).
hs_answer() {
  http POST "$HS_BASE/session/$1/mcp" "$INIT" "@$2"
  printf '%s %s %s' "$STATUS" "${BODY//"$1"/<id>}" "$(grep -ci '^www-authenticate:' "$WORK/headers" || true)"
}

host_signin_checks() {
  local HS_AS_PORT HS_CIMD_PORT HS_MUX_PORT HS_MR_PORT HS_MRC_PORT HS_PY_PORT HS_PYC_PORT
  local HS_BASE HS_ISS HS_AS_LOG=$WORK/host-signin-as.log HS_ID HS_URL
  local name dir=$WORK/host-signin bin data mux_log=$WORK/mcp-mux-host.log admin secret intro_id=mcp-mux-introspection
  local cimd_url=0 alice_id alice_url bob_id bob_url carol_url dave_url tokens f prm www alice_token bob_token
  local mine unknown_answer unknown=00000000-0000-4000-8000-000000000000
  for name in HS_AS_PORT HS_CIMD_PORT HS_MUX_PORT HS_MR_PORT HS_MRC_PORT HS_PY_PORT HS_PYC_PORT; do
    printf -v "$name" '%s' "$(free_port)"
    while [[ $taken == *" ${!name} "* ]]; do printf -v "$name" '%s' "$(free_port)"; done
    taken+="${!name} "
  done
  HS_BASE=http://127.0.0.1:$HS_MUX_PORT
  HS_ISS=http://127.0.0.1:$HS_AS_PORT
  bin=$dir/bin
  data=$dir/data
  mkdir -p "$bin" "$data" "$dir/cimd/clients"
  admin="e2e-admin-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
  secret="e2e-introspection-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
  (umask 077 && printf 'Authorization: Bearer %s\n' "$admin" >"$WORK/host-admin-header")
  ln -s "$HERE/host_signin_browser.sh" "$bin/xdg-open"

  # ------------------------------------------------ the authorization server
  # Client ID Metadata Documents are https URLs: a certificate for localhost,
  # which the authorization server (and nothing else) is told to trust.
  if command -v openssl >/dev/null && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
    -keyout "$dir/cimd-key.pem" -out "$dir/cimd-cert.pem" >/dev/null 2>&1; then
    cimd_url=https://localhost:$HS_CIMD_PORT/clients
  else
    not_ok "host sign-in: a certificate for the client ID metadata documents" "openssl is missing or failed"
    HS_CIMD_PORT=""
  fi
  AS_PORT=$HS_AS_PORT GATEWAY=$HS_BASE INTROSPECTION_CLIENT_ID=$intro_id INTROSPECTION_SECRET=$secret \
    JWT_CLIENTS="mcp-mux e2e python host" CIMD_PORT=$HS_CIMD_PORT CIMD_DIR=$dir/cimd \
    CIMD_CERT=$dir/cimd-cert.pem CIMD_KEY=$dir/cimd-key.pem NODE_EXTRA_CA_CERTS=$dir/cimd-cert.pem \
    start host-as "$HS_AS_LOG" node "$HERE/host_signin_as.mjs" --node-modules "$NODE_MODULES"
  if ! wait_log host-as "$HS_AS_LOG" 30 '"ready":true'; then
    not_ok "host sign-in: oidc-provider is up" "not ready within 30 s"
    show_tail "$HS_AS_LOG"
    return 0
  fi
  http GET "$HS_ISS/.well-known/oauth-authorization-server"
  if [[ $STATUS == 200 && $(json_at "$BODY" issuer) == "$HS_ISS" && $(json_at "$BODY" registration_endpoint) == "$HS_ISS/reg" &&
    $(json_at "$BODY" introspection_endpoint) == "$HS_ISS/token/introspection" &&
    $(json_at "$BODY" code_challenge_methods_supported) == '["S256"]' &&
    ($cimd_url == 0 || $(json_at "$BODY" client_id_metadata_document_supported) == true) ]]; then
    ok "host sign-in: oidc-provider is up: registration, introspection, PKCE S256, client ID metadata documents"
  else
    not_ok "host sign-in: oidc-provider is up: registration, introspection, PKCE S256, client ID metadata documents" \
      "got $STATUS ${BODY:0:400}"
  fi

  # ------------------------------------------------ the gateway
  RUST_LOG=trace MCP_MUX_ADMIN_TOKEN=$admin \
    MCP_MUX_OAUTH_INTROSPECTION_CLIENT_ID=$intro_id MCP_MUX_OAUTH_INTROSPECTION_SECRET=$secret \
    start mux-host "$mux_log" "$MUX" serve \
    --bind "127.0.0.1:$HS_MUX_PORT" \
    --registry "$HERE/registry.yaml" \
    --database-url "sqlite://$data/mcp-mux.db?mode=rwc" \
    --data-dir "$data" \
    --oauth-issuer "$HS_ISS" \
    --oauth-scopes mcp:tools
  if wait_http mux-host "$HS_BASE/healthz" 60 200; then
    ok "host sign-in: an mcp-mux that trusts the issuer serves /healthz"
  else
    if alive mux-host; then name="no 200 within 60 s"; else name="it exited"; fi
    not_ok "host sign-in: an mcp-mux that trusts the issuer serves /healthz" "$name (log below)"
    show_tail "$mux_log" 40
    stop host-as 5 || true
    return 0
  fi

  # ------------------------------------------------ mcp-remote: registration, opaque token
  hs_session alice
  alice_id=$HS_ID alice_url=$HS_URL
  prm=$HS_BASE/.well-known/oauth-protected-resource/session/$alice_id/mcp
  http POST "$alice_url" "$INIT"
  www=$(sed -n 's/^www-authenticate:[[:space:]]*//Ip' "$WORK/headers" | tr -d '\r')
  if [[ $STATUS == 401 && $www == Bearer* && $www == *"resource_metadata=\"$prm\""* && $www == *'scope="mcp:tools"'* ]]; then
    ok "host sign-in: the session URL without a token answers 401, Bearer resource_metadata and scope"
  else
    not_ok "host sign-in: the session URL without a token answers 401, Bearer resource_metadata and scope" \
      "got $STATUS, WWW-Authenticate: $www"
  fi
  http GET "$prm"
  if [[ $STATUS == 200 && $(json_at "$BODY" resource) == "$alice_url" &&
    $(json_at "$BODY" authorization_servers) == "[\"$HS_ISS\"]" &&
    $(json_at "$BODY" scopes_supported) == '["mcp:tools"]' &&
    $(json_at "$BODY" bearer_methods_supported) == '["header"]' ]] &&
    grep -qi '^access-control-allow-origin: \*' "$WORK/headers"; then
    ok "host sign-in: its Protected Resource Metadata names the session URL, the issuer and mcp:tools (CORS *)"
  else
    not_ok "host sign-in: its Protected Resource Metadata names the session URL, the issuer and mcp:tools (CORS *)" \
      "got $STATUS ${BODY:0:400}"
  fi
  : >"$dir/browser-alice.log"
  run_client host-mcp-remote env PATH="$bin:$PATH" BROWSER="$bin/xdg-open" HOST_SIGNIN_LOGIN=alice \
    HOST_SIGNIN_BROWSER_LOG="$dir/browser-alice.log" MCP_REMOTE_CONFIG_DIR="$dir/mcp-auth-alice" \
    node "$HERE/mcp_remote_client.mjs" "$alice_url" --node-modules "$NODE_MODULES" --backends everything \
    --label "mcp-remote signs in" --bridge-arg "$HS_MR_PORT" \
    --call everything__echo '{"message": "signed in through mcp-remote"}' 'signed in through mcp-remote'
  hs_browser_signed_in "host sign-in: mcp-remote opened the link; the browser signed in as alice and agreed" \
    "$dir/browser-alice.log" alice "http://localhost:$HS_MR_PORT/oauth/callback"
  hs_said "host sign-in: mcp-remote registered itself (RFC 7591)" '{"event": "registration", "client_name": "MCP CLI Proxy"}'
  hs_said "host sign-in: mcp-remote got an opaque token for the session URL, subject alice" \
    "{\"event\": \"access token\", \"format\": \"opaque\", \"sub\": \"alice\", \"aud\": \"$alice_url\"}"
  hs_said "host sign-in: the gateway introspected it with its own client and found it active for the session URL" \
    "{\"event\": \"introspection\", \"caller\": \"$intro_id\", \"active\": true, \"sub\": \"alice\", \"aud\": \"$alice_url\"}"

  # ------------------------------------------------ the Python SDK: registration, JWT
  hs_session bob
  bob_id=$HS_ID bob_url=$HS_URL
  run_client host-python "$PY" "$HERE/host_signin_client.py" "$bob_url" --issuer "$HS_ISS" --login bob \
    --redirect-uri "http://localhost:$HS_PY_PORT/callback" --client-name "mcp-mux e2e python host" --token jwt \
    --label "python SDK signs in" --token-out "$dir/token-bob"
  hs_said "host sign-in: the Python SDK got a JWT for the session URL, subject bob" \
    "{\"event\": \"access token\", \"format\": \"jwt\", \"sub\": \"bob\", \"aud\": \"$bob_url\"}"
  if grep -aF '"event":"introspection"' "$HS_AS_LOG" | grep -qF "\"aud\":\"$bob_url\""; then
    not_ok "host sign-in: the gateway checked the JWT itself, without introspection" "it introspected bob's token"
  else
    ok "host sign-in: the gateway checked the JWT itself, without introspection"
  fi

  # ------------------------------------------------ client ID metadata documents
  if [[ $cimd_url != 0 ]]; then
    hs_session carol
    carol_url=$HS_URL
    cat >"$dir/cimd/clients/mcp-remote.json" <<JSON
{"client_id": "$cimd_url/mcp-remote.json", "client_name": "mcp-remote (client ID metadata document)",
 "redirect_uris": ["http://localhost:$HS_MRC_PORT/oauth/callback"], "token_endpoint_auth_method": "none",
 "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}
JSON
    : >"$dir/browser-carol.log"
    run_client host-mcp-remote-cimd env PATH="$bin:$PATH" BROWSER="$bin/xdg-open" HOST_SIGNIN_LOGIN=carol \
      HOST_SIGNIN_BROWSER_LOG="$dir/browser-carol.log" MCP_REMOTE_CONFIG_DIR="$dir/mcp-auth-carol" \
      node "$HERE/mcp_remote_client.mjs" "$carol_url" --node-modules "$NODE_MODULES" --backends everything \
      --label "mcp-remote signs in with a client ID metadata document" \
      --bridge-arg "$HS_MRC_PORT" --bridge-arg --client-metadata-url --bridge-arg "$cimd_url/mcp-remote.json" \
      --call everything__echo '{"message": "signed in by URL"}' 'signed in by URL'
    hs_browser_signed_in "host sign-in: mcp-remote (metadata document): the browser signed in as carol and agreed" \
      "$dir/browser-carol.log" carol "http://localhost:$HS_MRC_PORT/oauth/callback"
    hs_said "host sign-in: oidc-provider fetched mcp-remote's client ID metadata document" \
      '{"event": "client metadata document fetched", "path": "/clients/mcp-remote.json"}'
    hs_said "host sign-in: the token's client_id is that document's URL, subject carol, for the session URL" \
      "{\"event\": \"access token\", \"client_id\": \"$cimd_url/mcp-remote.json\", \"sub\": \"carol\", \"aud\": \"$carol_url\"}"
    hs_said "host sign-in: the gateway introspected it and found it active" \
      "{\"event\": \"introspection\", \"caller\": \"$intro_id\", \"active\": true, \"sub\": \"carol\", \"aud\": \"$carol_url\"}"

    hs_session dave
    dave_url=$HS_URL
    cat >"$dir/cimd/clients/python.json" <<JSON
{"client_id": "$cimd_url/python.json", "client_name": "mcp-mux e2e python host",
 "redirect_uris": ["http://localhost:$HS_PYC_PORT/callback"], "token_endpoint_auth_method": "none",
 "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}
JSON
    run_client host-python-cimd "$PY" "$HERE/host_signin_client.py" "$dave_url" --issuer "$HS_ISS" --login dave \
      --redirect-uri "http://localhost:$HS_PYC_PORT/callback" --client-metadata-url "$cimd_url/python.json" \
      --token jwt --label "python SDK signs in with a client ID metadata document"
    hs_said "host sign-in: oidc-provider fetched the Python host's client ID metadata document" \
      '{"event": "client metadata document fetched", "path": "/clients/python.json"}'
  fi

  # ------------------------------------------------ one user, another's session
  # alice signs in to bob's session URL: her token is for that URL, and the
  # session must then look like no session at all.
  run_client host-python-other-user "$PY" "$HERE/host_signin_client.py" "$bob_url" --issuer "$HS_ISS" --login alice \
    --redirect-uri "http://localhost:$HS_PY_PORT/callback" --client-name "mcp-mux e2e python host" --token jwt \
    --label "python SDK signs in as alice to bob's session" --refused --token-out "$dir/token-alice-for-bob"
  if [[ -s $dir/token-alice-for-bob ]]; then
    printf 'Authorization: Bearer %s\n' "$(cat "$dir/token-alice-for-bob")" >"$dir/alice-for-bob-header"
    mine=$(hs_answer "$bob_id" "$dir/alice-for-bob-header")
    unknown_answer=$(hs_answer "$unknown" "$dir/alice-for-bob-header")
    if [[ $mine == 404* && $mine == "$unknown_answer" ]]; then
      ok "host sign-in: bob's session answers alice's token for it exactly as an unknown session does (404)"
    else
      not_ok "host sign-in: bob's session answers alice's token for it exactly as an unknown session does (404)" \
        "bob's session: '${mine:0:200}', an unknown one: '${unknown_answer:0:200}' (status, body, WWW-Authenticate count)"
    fi
  else
    not_ok "host sign-in: bob's session answers alice's token for it exactly as an unknown session does (404)" \
      "alice got no token for bob's session URL"
  fi
  # mcp-remote keeps its tokens in MCP_REMOTE_CONFIG_DIR/<version>/<hash>_tokens.json.
  alice_token=$(cat "$dir"/mcp-auth-alice/*/*_tokens.json 2>/dev/null | "$PY" -c 'import json, sys
try: print(json.load(sys.stdin)["access_token"])
except Exception: pass')
  bob_token=$(cat "$dir/token-bob" 2>/dev/null || true)
  if [[ -n $alice_token && -n $bob_token ]]; then
    printf 'Authorization: Bearer %s\n' "$alice_token" >"$dir/alice-header"
    printf 'Authorization: Bearer %s\n' "$bob_token" >"$dir/bob-header"
    http POST "$alice_url" "$INIT" "@$dir/alice-header"
    expect_status "host sign-in: alice's token from mcp-remote (opaque) opens her session with curl too (200)" 200
    hs_other_audience "alice's opaque token on bob's session" "$bob_url" "$dir/alice-header"
    hs_other_audience "bob's JWT on alice's session" "$alice_url" "$dir/bob-header"
  else
    not_ok "host sign-in: the hosts' tokens were kept for the checks across users" \
      "alice's (mcp-remote) is $([[ -n $alice_token ]] && echo there || echo missing), bob's (Python) is $([[ -n $bob_token ]] && echo there || echo missing)"
  fi
  tokens=$dir/access-tokens
  : >"$tokens"
  for f in "$dir"/mcp-auth-*/*/*_tokens.json; do
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["access_token"])' "$f" >>"$tokens" 2>/dev/null || true
  done
  cat "$dir"/token-* >>"$tokens" 2>/dev/null || true

  stop mux-host 10 || true
  stop host-as 5 || true

  # ------------------------------------------------ no secret in the log or the answers
  if [[ -s $tokens ]]; then
    absent_from "host sign-in: the $(wc -l <"$tokens") access tokens are in no answer and not in the gateway's log" \
      "$tokens" "$mux_log" "$WORK/responses.log"
  else
    not_ok "host sign-in: the access tokens are in no answer and not in the gateway's log" \
      "no token was kept, so the search proves nothing"
  fi
  printf '%s\n%s\n' "$secret" "$admin" >"$dir/secrets"
  if grep -qa ' TRACE ' "$mux_log"; then
    absent_from "host sign-in: the introspection secret and the admin token are not in the gateway's trace log" \
      "$dir/secrets" "$mux_log" "$WORK/responses.log"
  else
    not_ok "host sign-in: the introspection secret and the admin token are not in the gateway's trace log" \
      "it has no TRACE line, so the search proves nothing"
  fi
}
