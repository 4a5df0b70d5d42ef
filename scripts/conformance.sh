#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, server
# scenarios) run against our fixture server
# (scripts/conformance/fixture_server.ts), which speaks revision 2025-11-25:
#   (a) directly, and
#   (b) through an mcp-mux session whose one backend is that fixture, created
#       with "prefix": "when_needed", so the session is a transparent proxy and
#       every scenario should pass through it exactly as it passes directly;
#   (c) the 2026-07-28 scenarios (--suite all --spec-version 2026-07-28)
#       directly: the fixture serves each sessionless request as a 2025-11-25
#       server would, so most fail;
#   (d) the same scenarios through the same session: mcp-mux serves that
#       revision over the legacy fixture, and each scenario must pass but the
#       one no bridge can pass (BRIDGE_CANNOT below). Both counts are
#       printed, with the scenarios each run passed; mcp-mux's must be the
#       larger, and hold every scenario the fixture passes alone.
#
#   bash scripts/conformance.sh      # from the repository root
#
# MCP_MUX_BIN overrides the binary (default target/debug/mcp-mux, built if
# missing). CONFORMANCE_SUITE picks the suite's --suite for (a) and (b)
# (default "active": the scenarios the suite counts as current; "all" adds
# the draft ones and the extensions, which fail directly and are skipped).
# CONFORMANCE_KEEP=1 keeps the scratch directory (the suite's checks.json
# files, the mcp-mux RUST_LOG=debug log).
# Node 22 (the suite needs >= 22), the suite and the fixture's dependencies
# are pinned in scripts/conformance/package.json and
# package-lock.json, and installed into .e2e/conformance (git-ignored) on first
# use and whenever those two files change.
#
# Only scenarios that pass directly can say anything about mcp-mux in (b).
# Each of them prints `ok - SCENARIO` if it also passes through mcp-mux, else
# `not ok - SCENARIO: reason`. With the active suite, a scenario failing
# directly is a broken fixture and fails the run; with "all", it prints
# `# skipped (fails directly): SCENARIO`. (d) prints
# `ok - SCENARIO [2026-07-28 through mcp-mux]`. The last line is
# `conformance: N passed, M failed`; the exit code is non-zero if M > 0 or if
# the script itself broke.
set -euo pipefail

if [[ -n ${MCP_MUX_BIN:-} && $MCP_MUX_BIN != /* ]]; then MCP_MUX_BIN=$PWD/$MCP_MUX_BIN; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
HERE=$ROOT/scripts/conformance
CACHE=$ROOT/.e2e/conformance
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-mux-conformance.XXXXXX")
SUITE=${CONFORMANCE_SUITE:-active}

HARNESS_NAME=conformance
HARNESS_KEEP=${CONFORMANCE_KEEP:-0}
# shellcheck source=scripts/harness.sh
source "$ROOT/scripts/harness.sh"

give_up() { # REASON: the checks cannot run at all
  not_ok "conformance.sh ran to the end" "$1"
  summary
  exit 1
}

# ---------------------------------------------------------------- setup
need curl
need npm
need setsid
need timeout
need sha256sum

install_conformance_suite "$HERE" "$CACHE" || give_up "the conformance suite is not installed (see above)"
node_version=$("$NODE" --version)
suite_version=$("$NODE" -p 'require(process.argv[1]).version' "$CACHE/node_modules/@modelcontextprotocol/conformance/package.json")
echo "# node $node_version, @modelcontextprotocol/conformance $suite_version, --suite $SUITE" >&2

# The fixture resolves its imports from where it lies, so it runs from the
# install directory (written atomically: two runs may share the cache).
cp "$HERE/fixture_server.ts" "$CACHE/.fixture_server.ts.$$"
mv -f "$CACHE/.fixture_server.ts.$$" "$CACHE/fixture_server.ts"

MUX=${MCP_MUX_BIN:-target/debug/mcp-mux}
if [[ ! -x $MUX ]]; then
  if [[ -n ${MCP_MUX_BIN:-} ]]; then
    echo "MCP_MUX_BIN=$MCP_MUX_BIN is not an executable file" >&2
    exit 2
  fi
  echo "# $MUX is missing: cargo build" >&2
  cargo build --quiet 2>&1 | note
fi

# Ports come from the kernel (bind to port 0), never from a fixed list.
free_port() {
  "$NODE" -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
export CONFORMANCE_FIXTURE_PORT
CONFORMANCE_FIXTURE_PORT=$(free_port)
MUX_PORT=$(free_port)
while [[ $MUX_PORT == "$CONFORMANCE_FIXTURE_PORT" ]]; do MUX_PORT=$(free_port); done
FIXTURE_URL=http://127.0.0.1:$CONFORMANCE_FIXTURE_PORT/mcp
BASE=http://127.0.0.1:$MUX_PORT

# ---------------------------------------------------------------- fixture
HOST=127.0.0.1 PORT=$CONFORMANCE_FIXTURE_PORT start fixture "$WORK/fixture.log" \
  "$NODE" "$TSX_JS" "$CACHE/fixture_server.ts"
if ! wait_http fixture "$FIXTURE_URL" 60; then
  show_tail "$WORK/fixture.log" 30
  give_up "the fixture gave no HTTP answer on port $CONFORMANCE_FIXTURE_PORT within 60 s"
fi

# ---------------------------------------------------------------- mcp-mux
# The registry names the port through a variable, which mcp-mux expands at start.
cat >"$WORK/registry.yaml" <<'YAML'
servers:
  conformance:
    url: "http://127.0.0.1:${CONFORMANCE_FIXTURE_PORT}/mcp"
    description: mcp-mux's conformance fixture (scripts/conformance/fixture_server.ts)
    auth: { type: none }
YAML
DATA=$WORK/data
MUX_LOG=$WORK/mcp-mux.log
mkdir -p "$DATA"
RUST_LOG=${RUST_LOG:-debug} start mux "$MUX_LOG" "$MUX" serve \
  --bind "127.0.0.1:$MUX_PORT" \
  --registry "$WORK/registry.yaml" \
  --database-url "sqlite://$DATA/mcp-mux.db?mode=rwc" \
  --data-dir "$DATA"
if ! wait_http mux "$BASE/healthz" 60 200; then
  show_tail "$MUX_LOG" 40
  give_up "mcp-mux did not answer 200 on /healthz within 60 s"
fi
STATUS=$(curl -s -o "$WORK/session.json" -w '%{http_code}' --max-time 30 \
  -H 'Content-Type: application/json' --data-binary '{"servers":["conformance"],"prefix":"when_needed"}' \
  "$BASE/create-session" || true)
MUX_URL=$("$NODE" -p 'try { JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).mcp_url ?? "" } catch { "" }' "$WORK/session.json")
if [[ $STATUS != 201 || -z $MUX_URL ]]; then
  give_up "POST /create-session answered $STATUS $(head -c 300 "$WORK/session.json" 2>/dev/null)"
fi
echo "# fixture $FIXTURE_URL, mcp-mux session $MUX_URL" >&2

# ---------------------------------------------------------------- the suite
# run_suite LABEL URL [SUITE ARGS]: writes $WORK/LABEL.tsv (scenario,
# pass|fail, reason).
run_suite() {
  local label=$1 url=$2 rc=0
  shift 2
  (($# > 0)) || set -- --suite "$SUITE"
  (cd "$WORK" && timeout 600 "$NODE" "$SUITE_JS" server "$@" --url "$url" \
    -o "$WORK/$label") >"$WORK/$label.stdout" 2>"$WORK/$label.stderr" || rc=$?
  if ((rc == 124)); then echo "# the $label run timed out after 600 s" >&2; fi
  "$NODE" "$HERE/report.mjs" "$WORK/$label.stdout" >"$WORK/$label.tsv"
  if [[ ! -s $WORK/$label.tsv ]]; then
    show_tail "$WORK/$label.stderr" 30
    give_up "the $label run reported no scenario (exit code $rc)"
  fi
}
run_suite direct "$FIXTURE_URL"
run_suite mux "$MUX_URL"
run_suite direct2026 "$FIXTURE_URL" --suite all --spec-version 2026-07-28
run_suite mux2026 "$MUX_URL" --suite all --spec-version 2026-07-28

# Which spec revisions each scenario applies to, as `list` prints them.
declare -A TAGS=()
while read -r name tags; do TAGS[$name]=$tags; done < <(
  "$NODE" "$SUITE_JS" list --server | sed -n 's/^  - \([^ ]*\) \[\(.*\)\]$/\1 \2/p'
)
# verdicts LABEL: fills VERDICT and REASON from $WORK/LABEL.tsv.
declare -A VERDICT=() REASON=()
verdicts() {
  VERDICT=() REASON=()
  while IFS=$'\t' read -r name verdict reason; do
    VERDICT[$name]=$verdict
    REASON[$name]=$reason
  done <"$WORK/$1.tsv"
}

# (a, b) Revision 2025-11-25: every scenario that passes directly passes
# through mcp-mux.
verdicts mux
SKIPPED=()
while IFS=$'\t' read -r name verdict reason; do
  if [[ $verdict != pass ]]; then
    # The fixture is ours and written for the active scenarios: one of them
    # failing directly is a broken fixture, not a scenario to skip.
    if [[ $SUITE == active ]]; then
      not_ok "$name (directly against the fixture)" "$reason"
    else
      SKIPPED+=("$name")
    fi
    continue
  fi
  tag=${TAGS[$name]:-}
  label=$name
  [[ $tag == 2026-07-28 || $tag == extension ]] && label="$name [$tag only]"
  case ${VERDICT[$name]:-} in
  pass) ok "$label" ;;
  fail) not_ok "$label" "${REASON[$name]}" ;;
  *) not_ok "$label" "no result through mcp-mux" ;;
  esac
done <"$WORK/direct.tsv"
for name in "${SKIPPED[@]}"; do echo "# skipped (fails directly): $name"; done

# (c, d) Revision 2026-07-28, which the fixture does not speak: alone it
# serves each request as a sessionless 2025-11-25 server, so it cannot
# answer in rounds, check Mcp-Param-* headers or give caching hints.
# Through mcp-mux every scenario must pass but the ones a 2025-11-25
# backend cannot make pass through any bridge (BRIDGE_CANNOT): the
# scenario names its input request ("user_name"), and a 2025-11-25 backend
# has no way to name one.
BRIDGE_CANNOT='^input-required-result-basic-elicitation$'
verdicts direct2026
declare -A DIRECT2026=()
for name in "${!VERDICT[@]}"; do DIRECT2026[$name]=${VERDICT[$name]}; done
verdicts mux2026
direct_passed=() mux_passed=()
while IFS=$'\t' read -r name verdict reason; do
  [[ ${DIRECT2026[$name]:-} == pass ]] && direct_passed+=("$name")
  [[ $verdict == pass ]] && mux_passed+=("$name")
  if [[ $verdict == pass ]]; then
    ok "$name [2026-07-28 through mcp-mux]"
  elif [[ $name =~ $BRIDGE_CANNOT ]]; then
    echo "# not bridged (a 2025-11-25 backend cannot name its input requests): $name: $reason"
  else
    not_ok "$name [2026-07-28 through mcp-mux]" "$reason"
  fi
done <"$WORK/mux2026.tsv"
total2026=$(wc -l <"$WORK/mux2026.tsv")
echo "# 2026-07-28, the fixture alone: ${#direct_passed[@]} of $total2026 passed: ${direct_passed[*]}"
echo "# 2026-07-28, through mcp-mux: ${#mux_passed[@]} of $total2026 passed: ${mux_passed[*]}"
while IFS=$'\t' read -r name verdict _; do
  [[ $verdict == pass && ${VERDICT[$name]:-} != pass ]] && not_ok "$name [2026-07-28]" "passes against the fixture alone, not through mcp-mux"
done <"$WORK/direct2026.tsv"
if ((${#mux_passed[@]} > ${#direct_passed[@]})); then
  ok "mcp-mux passes more 2026-07-28 scenarios over the fixture than the fixture alone (${#mux_passed[@]} > ${#direct_passed[@]})"
else
  not_ok "mcp-mux passes more 2026-07-28 scenarios over the fixture than the fixture alone" "${#mux_passed[@]} through mcp-mux, ${#direct_passed[@]} alone"
fi

summary
