#!/usr/bin/env bash
# Installs the OAuth backend's pinned npm packages (oidc_backend.mjs: an
# oidc-provider authorization server and a protected MCP server) into
# .e2e/oauth-load (git-ignored), once per change of its files, and copies
# the backend there: its ES imports resolve node_modules next to the file,
# not through NODE_PATH. Prints the backend's path. Used by
# scripts/oauth_load.sh and scripts/bench.sh.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$(cd "$HERE/../.." && pwd)/.e2e/oauth-load
stamp=$(sha256sum "$HERE/package.json" "$HERE/package-lock.json" "$HERE/oidc_backend.mjs" | sha256sum | cut -c1-16)
if [[ $(cat "$CACHE/.stamp" 2>/dev/null) != "$stamp" ]]; then
  echo "# installing the OAuth backend's npm packages into .e2e/oauth-load" >&2
  rm -rf "$CACHE" && mkdir -p "$CACHE"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/oidc_backend.mjs" "$CACHE/"
  (cd "$CACHE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) 2>&1 | sed '/^[[:space:]]*$/d; s/^/# /' >&2
  echo "$stamp" >"$CACHE/.stamp"
fi
echo "$CACHE/oidc_backend.mjs"
