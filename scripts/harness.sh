# shellcheck shell=bash
# The helpers the scripts share (e2e, conformance, chaos, resources): counting and
# printing checks, starting and stopping children, cleaning up on exit.
# Sourced, not run. Before sourcing, the script sets
#   HARNESS_NAME  the name in its messages and in the closing line
#                 `HARNESS_NAME: N passed, M failed` (its file is HARNESS_NAME.sh)
#   HARNESS_KEEP  1 to keep WORK, the scratch directory, on exit
#   WORK          that scratch directory
# Sourcing installs the EXIT, INT and TERM traps.

PASSED=0
FAILED=0
SUMMARY_DONE=0
declare -A CHILDREN=() # name -> process group id of a child we started

ok() {
  PASSED=$((PASSED + 1))
  echo "ok - $1"
}
not_ok() {
  FAILED=$((FAILED + 1))
  echo "not ok - $1: $2"
}
# The closing line; after it, finish does not print it again.
summary() {
  SUMMARY_DONE=1
  echo "$HARNESS_NAME: $PASSED passed, $FAILED failed"
}
# Prints what a check script printed (`ok - ...` and `not ok - ...` lines),
# counts its checks and prints the closing line; WORK is kept when a check
# failed or none was printed.
report_checks() { # SCRIPT OUTPUT
  printf '%s\n' "$2"
  PASSED=$(grep -c '^ok - ' <<<"$2" || true)
  FAILED=$(grep -c '^not ok - ' <<<"$2" || true)
  if ((PASSED + FAILED == 0)); then
    not_ok "$1 ran to the end" "no checks printed (logs in $WORK)"
  fi
  ((FAILED == 0)) || HARNESS_KEEP=1
  summary
}
note() { sed '/^[[:space:]]*$/d; s/^/# /' >&2; }
show_tail() { # FILE LINES: the end of a log, marked as commentary
  [[ -f $1 ]] && tail -n "${2:-20}" "$1" | note
  return 0
}

# Each child runs in its own session (setsid), so one signal to its process
# group also reaches what it spawned (npx, node, uvicorn workers, the second
# node tsx starts).
start() { # NAME LOGFILE COMMAND...
  local name=$1 log=$2
  shift 2
  setsid "$@" >>"$log" 2>&1 </dev/null &
  CHILDREN[$name]=$!
}
alive() { [[ -n ${CHILDREN[$1]:-} ]] && kill -0 "${CHILDREN[$1]}" 2>/dev/null; }
stop() { # NAME [GRACE_SECONDS]: SIGTERM, then SIGKILL after the grace period; fails if it took SIGKILL
  local name=$1 grace=${2:-10} pgid=${CHILDREN[$1]:-} i forced=0
  [[ -n $pgid ]] || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pgid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pgid" 2>/dev/null && forced=1
  kill -KILL -- "-$pgid" 2>/dev/null || true
  wait "$pgid" 2>/dev/null || true
  unset "CHILDREN[$name]"
  return "$forced"
}

finish() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  for name in "${!CHILDREN[@]}"; do stop "$name" 3 || true; done
  if ((SUMMARY_DONE == 0)); then
    if ((rc != 0)); then
      not_ok "$HARNESS_NAME.sh ran to the end" "stopped with exit code $rc (see the lines above)"
    fi
    summary
  fi
  if [[ $HARNESS_KEEP == 1 ]]; then echo "# scratch directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
  if ((rc == 0 && FAILED > 0)); then rc=1; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need() {
  command -v "$1" >/dev/null || {
    echo "$HARNESS_NAME.sh needs $1 on PATH" >&2
    exit 2
  }
}

# A stamp is the hash of the files an install came from: reinstall only when
# it changed.
stamp_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

# Waits until URL answers HTTP at all (any status) or, with a third argument,
# answers that status. Gives up after TIMEOUT seconds or when NAME has died.
wait_http() { # NAME URL TIMEOUT [STATUS]
  local name=$1 url=$2 timeout=$3 want=${4:-} deadline code
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    alive "$name" || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    if [[ $code != 000 && (-z $want || $code == "$want") ]]; then return 0; fi
    sleep 0.2
  done
  return 1
}

# Installs Node 22 and the MCP conformance suite pinned in DIR
# (scripts/conformance: package.json and package-lock.json) into CACHE
# (.e2e/conformance), again only when the pins changed; puts that Node first
# on PATH (tsx and the suite start further node processes) and sets NODE,
# SUITE_JS and TSX_JS. Fails, saying which, when one of those is missing.
install_conformance_suite() { # DIR CACHE
  local here=$1 cache=$2 stamp f
  stamp=$(stamp_of "$here/package.json" "$here/package-lock.json")
  if [[ $(cat "$cache/.stamp" 2>/dev/null) != "$stamp" ]]; then
    echo "# installing Node 22 and the conformance suite into .e2e/conformance" >&2
    rm -rf "$cache"
    mkdir -p "$cache"
    cp "$here/package.json" "$here/package-lock.json" "$cache/"
    (cd "$cache" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) 2>&1 | note
    if ((PIPESTATUS[0] != 0)); then
      echo "npm ci failed in $cache" >&2
      return 1
    fi
    echo "$stamp" >"$cache/.stamp"
  fi
  # The npm package `node` puts the real binary here (node_modules/.bin/node
  # is a link to it).
  NODE=$cache/node_modules/node/bin/node
  SUITE_JS=$cache/node_modules/@modelcontextprotocol/conformance/dist/index.js
  TSX_JS=$cache/node_modules/tsx/dist/cli.mjs
  for f in "$NODE" "$SUITE_JS" "$TSX_JS"; do
    if [[ ! -e $f ]]; then
      echo "$f is missing after the install; remove $cache and run again" >&2
      return 1
    fi
  done
  export PATH=$cache/node_modules/node/bin:$PATH
}

# Installs the pinned npm and PyPI packages of DIR (scripts/e2e) into CACHE
# (.e2e), again only when the pins changed; sets NODE_MODULES, PY and
# CLIENT_PY (the generated API client's venv).
install_e2e_packages() { # DIR CACHE
  local here=$1 cache=$2 node_stamp
  node_stamp=$(stamp_of "$here/package.json" "$here/package-lock.json")
  if [[ $(cat "$cache/node/.stamp" 2>/dev/null) != "$node_stamp" ]]; then
    echo "# installing npm packages into .e2e/node" >&2
    rm -rf "$cache/node"
    mkdir -p "$cache/node"
    cp "$here/package.json" "$here/package-lock.json" "$cache/node/"
    (cd "$cache/node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) 2>&1 | note
    echo "$node_stamp" >"$cache/node/.stamp"
  fi
  NODE_MODULES=$cache/node/node_modules

  install_venv "$here/requirements.txt" "$cache/venv"
  PY=$cache/venv/bin/python
  install_venv "$here/client-requirements.txt" "$cache/client-venv"
  CLIENT_PY=$cache/client-venv/bin/python
}

# A venv at VENV with the pins of REQUIREMENTS, made again only when they
# changed.
install_venv() { # REQUIREMENTS VENV
  local requirements=$1 venv=$2 stamp base_python
  stamp=$(stamp_of "$requirements")
  if [[ $(cat "$venv/.stamp" 2>/dev/null) != "$stamp" ]]; then
    echo "# installing PyPI packages into .e2e/${venv##*/}" >&2
    base_python=${E2E_PYTHON:-$(command -v python3.11 || command -v python3)}
    rm -rf "$venv"
    "$base_python" -m venv "$venv"
    timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" 2>&1 | note
    echo "$stamp" >"$venv/.stamp"
  fi
}
