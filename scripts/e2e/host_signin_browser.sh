#!/usr/bin/env bash
# A browser for scripts/e2e/host_signin.sh: opens an authorization link the
# way a person does, with curl. It follows each redirect itself, keeps cookies,
# signs in on a login page (HOST_SIGNIN_LOGIN as the login name, any password),
# agrees on a consent page, and stops at the redirect to the link's own
# redirect_uri, which it opens too: that is the host's callback on localhost.
#
#   host_signin_browser.sh URL
#
# It is put first on PATH as `xdg-open` and named in BROWSER, so that a host
# that opens a browser (mcp-remote, through the `open` package) runs it.
# Env: HOST_SIGNIN_LOGIN (default e2e-user); HOST_SIGNIN_BROWSER_LOG, a file to
# which each step is appended (default stderr). Exits 0 once the callback
# answered 2xx, 1 otherwise.
set -uo pipefail

url=${1:?usage: host_signin_browser.sh URL}
login=${HOST_SIGNIN_LOGIN:-e2e-user}
log=${HOST_SIGNIN_BROWSER_LOG:-/dev/stderr}
dir=$(mktemp -d "${TMPDIR:-/tmp}/host-signin-browser.XXXXXX")
trap 'rm -rf "$dir"' EXIT
say() { printf 'browser: %s\n' "$*" >>"$log"; }

# The callback is wherever the link's redirect_uri points.
redirect_uri=$(python3 -c 'import sys, urllib.parse as u
q = u.parse_qs(u.urlsplit(sys.argv[1]).query)
print(q.get("redirect_uri", [""])[0])' "$url")
if [[ -z $redirect_uri ]]; then
  say "the link has no redirect_uri: $url"
  exit 1
fi
say "open ${url%%\?*} (redirect_uri $redirect_uri, login $login)"

method=GET data=()
for hop in $(seq 1 20); do
  out=$(curl -s --max-time 20 -b "$dir/jar" -c "$dir/jar" -X "$method" "${data[@]}" \
    -D "$dir/headers" -o "$dir/page" -w '%{http_code} %{redirect_url}' "$url") || {
    say "hop $hop: $method ${url%%\?*}: curl failed (exit $?)"
    exit 1
  }
  code=${out%% *} next=${out#* }
  say "hop $hop: $method ${url%%\?*} -> $code"
  method=GET data=()
  case $code in
    30[1237])
      url=$next
      if [[ $url == "$redirect_uri"* ]]; then
        # What the callback is told, without the code itself; then the
        # callback, and the sign-in is over one way or the other.
        say "redirect to the callback with $(sed -E 's/(^|&)code=[^&]*/\1code=(hidden)/' <<<"${url#*\?}")"
        code=$(curl -s --max-time 20 -o "$dir/page" -w '%{http_code}' "$url") || code="000 (curl failed)"
        say "callback ${url%%\?*} -> $code"
        [[ $code == 2* ]] && exit 0
        say "the callback answered: $(head -c 300 "$dir/page")"
        exit 1
      fi
      ;;
    200)
      action=$(grep -o '<form[^>]*action="[^"]*"' "$dir/page" | head -n 1 | sed -E 's/.*action="([^"]*)".*/\1/; s/&amp;/\&/g')
      prompt=$(grep -o 'name="prompt" value="[^"]*"' "$dir/page" | head -n 1 | sed -E 's/.*value="([^"]*)".*/\1/')
      [[ $action == /* ]] && action=$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$url")$action
      case $prompt in
        login)
          say "login page: signing in as $login"
          data=(--data-urlencode prompt=login --data-urlencode "login=$login" --data-urlencode password=any)
          ;;
        consent)
          say "consent page: $(grep -o '<li>[^<]*</li>' "$dir/page" | sed -E 's#</?li>##g' | tr '\n' ' ')-> continue"
          data=(--data-urlencode prompt=consent)
          ;;
        *)
          say "a page with no login or consent form: $(head -c 300 "$dir/page")"
          exit 1
          ;;
      esac
      method=POST url=$action
      ;;
    *)
      say "answered $code: $(head -c 300 "$dir/page")"
      exit 1
      ;;
  esac
done
say "no callback after 20 hops"
exit 1
