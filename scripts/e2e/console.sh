# shellcheck shell=bash
# The console checks of scripts/e2e.sh, which sources this file and calls
# console_checks (also alone, with E2E_ONLY=console, once the backends are
# up); they use its helpers (http, expect_status, json_field, run_client),
# harness.sh's, and its CHROMIUM, CONSOLE_MUX_PORT, HERE, MUX, NODE_MODULES,
# PY and WORK.
#
# The operators' console in a real browser, on a gateway of its own that has
# an admin token: the browser logs in with it, as an operator does. Two
# sessions are made through the API: one must be listed (and a tool of it is
# tried from its page), the other is deleted from the console, confirming
# first, and must disappear. A curated session is made with the form.
console_checks() {
  local size
  CONSOLE_DATA=$WORK/data-console
  CONSOLE_BASE=http://127.0.0.1:$CONSOLE_MUX_PORT
  mkdir -p "$CONSOLE_DATA"
  export E2E_ADMIN_TOKEN
  E2E_ADMIN_TOKEN="e2e-admin-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
  # curl reads the header from a file: the token stays out of the process list.
  (umask 077 && printf 'Authorization: Bearer %s\n' "$E2E_ADMIN_TOKEN" >"$WORK/admin-header")
  RUST_LOG=trace MCP_MUX_ADMIN_TOKEN=$E2E_ADMIN_TOKEN start mux-console "$WORK/mcp-mux-console.log" "$MUX" serve \
    --bind "127.0.0.1:$CONSOLE_MUX_PORT" \
    --registry "$HERE/registry.yaml" \
    --database-url "sqlite://$CONSOLE_DATA/mcp-mux.db?mode=rwc" \
    --data-dir "$CONSOLE_DATA"
  if wait_http mux-console "$CONSOLE_BASE/healthz" 60 200; then
    http POST "$CONSOLE_BASE/create-session" '{"servers":["everything"]}' "@$WORK/admin-header"
    LISTED_ID=$(json_field "$BODY" session_id)
    http POST "$CONSOLE_BASE/create-session" '{"servers":["everything"]}' "@$WORK/admin-header"
    DOOMED_ID=$(json_field "$BODY" session_id)
    if [[ -n $LISTED_ID && -n $DOOMED_ID ]]; then
      run_client console node "$HERE/console_client.mjs" "$CONSOLE_BASE" \
        --listed "$LISTED_ID" --delete "$DOOMED_ID" --screenshot "$WORK/console.png" \
        --chromium "$CHROMIUM" --node-modules "$NODE_MODULES"
      # A PNG (its signature) of more than a blank page's few hundred bytes.
      size=$(stat -c %s "$WORK/console.png" 2>/dev/null || echo 0)
      if [[ $(head -c 4 "$WORK/console.png" 2>/dev/null | tail -c 3) == PNG ]] && ((size > 10000)); then
        ok "console: the screenshot is a PNG of $size bytes"
      else
        not_ok "console: the screenshot is a PNG of more than 10000 bytes" "$WORK/console.png has $size bytes"
      fi
      http GET "$CONSOLE_BASE/session/$DOOMED_ID" "" "@$WORK/admin-header"
      expect_status "console: the session deleted in the console is gone from the API (404)" 404
    else
      not_ok "console: two sessions created through the API" "create-session answered $STATUS ${BODY:0:200}"
    fi
    if grep -qaF -- "$E2E_ADMIN_TOKEN" "$WORK/mcp-mux-console.log"; then
      not_ok "console: the admin token is absent from the gateway's log" "found in mcp-mux-console.log"
    else
      ok "console: the admin token is absent from the gateway's log"
    fi
    stop mux-console 10 || true
  else
    not_ok "a console mcp-mux serves /healthz" "no 200 within 60 s"
    show_tail "$WORK/mcp-mux-console.log" 40
  fi
}
