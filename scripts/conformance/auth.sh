#!/usr/bin/env bash
# The official MCP conformance suite's client authorization scenarios
# (@modelcontextprotocol/conformance, `client --scenario auth/...`) with
# mcp-mux as the OAuth client: each scenario serves a protected MCP server
# with its own authorization server, and scripts/conformance/auth_client.py
# plays the session's user and MCP client in front of a fresh mcp-mux whose
# one backend is that server (create-session, open the authorization link,
# initialize, tools/list, call test-tool). See auth_client.py.
#
#   bash scripts/conformance/auth.sh [SCENARIO...]
#
# Without arguments it runs every auth/ scenario of revision 2025-11-25 that
# applies to mcp-mux, one at a time (each starts its own mcp-mux); those
# that do not apply are listed with the reason (NOT_APPLICABLE below). Named
# scenarios run whether or not they apply.
# Prints `ok - SCENARIO` when the suite's verdict is a pass (no FAILURE and
# no WARNING check; the client neither timed out nor failed, unless the
# scenario allows it), else `not ok - SCENARIO: ` and the checks that failed
# (`id [STATUS]: description`). The last line is
# `conformance auth: P/T scenarios passed`; the exit code is non-zero unless
# P = T.
#
# MCP_MUX_BIN overrides the binary (default target/debug/mcp-mux, built if
# missing). CONFORMANCE_TIMEOUT_MS is the suite's timeout per scenario
# (default 30000). CONFORMANCE_CLIENT_ARGS adds arguments to the suite's
# `client` command: `--spec-version 2025-11-25 --force` runs the 2026-07-28
# auth/ scenarios named on the command line against a 2025-11-25 server
# (their own speaks only the 2026-07-28 revision, whose backends mcp-mux
# does not open). CONFORMANCE_KEEP=1 keeps the scratch directory (kept
# anyway when a scenario fails): per scenario, the suite's output and
# checks.json, and the client's directory with the registry and mcp-mux.log.
# Node 22 and the suite are those scripts/conformance.sh installs into
# .e2e/conformance.
set -euo pipefail

if [[ -n ${MCP_MUX_BIN:-} && $MCP_MUX_BIN != /* ]]; then MCP_MUX_BIN=$PWD/$MCP_MUX_BIN; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
HERE=$ROOT/scripts/conformance
CACHE=$ROOT/.e2e/conformance
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-mux-conformance-auth.XXXXXX")
TIMEOUT_MS=${CONFORMANCE_TIMEOUT_MS:-30000}

HARNESS_NAME=conformance/auth
HARNESS_KEEP=${CONFORMANCE_KEEP:-0}
# shellcheck source=scripts/harness.sh
source "$ROOT/scripts/harness.sh"
summary() {
  SUMMARY_DONE=1
  echo "conformance auth: $PASSED/$((PASSED + FAILED)) scenarios passed"
}
give_up() { # REASON: the scenarios cannot run at all
  not_ok "conformance/auth.sh ran to the end" "$1"
  summary
  exit 1
}

# Scenarios that test what mcp-mux does not do, and why.
declare -A NOT_APPLICABLE=(
  [auth/basic-cimd]="needs the client id https://conformance-test.local/client-metadata.json, a client metadata document served over https at that URL; mcp-mux's is <https --public-url>/oauth/client-metadata.json"
)

# ---------------------------------------------------------------- setup
need npm
need python3
need timeout
need sha256sum
# The suite splits the client command at spaces.
[[ $HERE != *' '* ]] || give_up "the suite cannot run a client under a path with spaces ($HERE)"

install_conformance_suite "$HERE" "$CACHE" || give_up "the conformance suite is not installed (see above)"
suite_version=$("$NODE" -p 'require(process.argv[1]).version' "$CACHE/node_modules/@modelcontextprotocol/conformance/package.json")
echo "# node $("$NODE" --version), @modelcontextprotocol/conformance $suite_version" >&2

MUX=${MCP_MUX_BIN:-$ROOT/target/debug/mcp-mux}
if [[ ! -x $MUX ]]; then
  if [[ -n ${MCP_MUX_BIN:-} ]]; then
    echo "MCP_MUX_BIN=$MCP_MUX_BIN is not an executable file" >&2
    exit 2
  fi
  echo "# $MUX is missing: cargo build" >&2
  cargo build --quiet 2>&1 | note
fi
export MCP_MUX_BIN=$MUX

if (($# > 0)); then
  SCENARIOS=("$@")
  RUN_NAMED=1
else
  # `  - auth/metadata-default [2025-11-25,2026-07-28]`
  mapfile -t SCENARIOS < <("$NODE" "$SUITE_JS" list --client |
    sed -n 's/^  - \(auth\/[^ ]*\) \[\(.*,\)\{0,1\}2025-11-25\(,.*\)\{0,1\}\]$/\1/p')
  ((${#SCENARIOS[@]} > 0)) || give_up "the suite lists no auth/ scenario of revision 2025-11-25"
  RUN_NAMED=0
fi

# ---------------------------------------------------------------- scenarios
# The failed checks of one run: `id [STATUS]: description` (and the check's
# errorMessage), then whether the client timed out or failed.
failed_checks() { # RESULTS_DIR SUITE_STDERR
  python3 - "$@" <<'EOF'
import glob, json, sys
results, stderr = sys.argv[1], sys.argv[2]
bad = []
for path in sorted(glob.glob(f"{results}/**/checks.json", recursive=True)):
    for check in json.load(open(path)):
        if check.get("status") in ("FAILURE", "WARNING"):
            text = check.get("description") or check.get("name") or ""
            if check.get("errorMessage"):
                text += f" ({check['errorMessage']})"
            bad.append(f"{check['id']} [{check['status']}]: {' '.join(text.split())}")
log = open(stderr, errors="replace").read()
if "CLIENT TIMED OUT" in log:
    bad.append("the client timed out")
if "CLIENT EXITED WITH ERROR" in log:
    bad.append("the client exited with an error")
print("; ".join(bad) or f"no failed check; see {stderr}")
EOF
}

SKIPPED=()
for scenario in "${SCENARIOS[@]}"; do
  if ((RUN_NAMED == 0)) && [[ -n ${NOT_APPLICABLE[$scenario]:-} ]]; then
    SKIPPED+=("$scenario")
    continue
  fi
  out=$WORK/${scenario//\//_}
  mkdir -p "$out"
  rc=0
  AUTH_CLIENT_DIR=$out/client timeout $((TIMEOUT_MS / 1000 + 60)) \
    "$NODE" "$SUITE_JS" client --command "exec python3 $HERE/auth_client.py" \
    --scenario "$scenario" --timeout "$TIMEOUT_MS" -o "$out/results" ${CONFORMANCE_CLIENT_ARGS:-} \
    >"$out/suite.stdout" 2>"$out/suite.stderr" || rc=$?
  if ((rc == 0)) && grep -q 'OVERALL: PASSED' "$out/suite.stderr"; then
    ok "$scenario"
  else
    not_ok "$scenario" "$(failed_checks "$out/results" "$out/suite.stderr")"
  fi
done

for scenario in "${SKIPPED[@]}"; do
  echo "# not applicable: $scenario: ${NOT_APPLICABLE[$scenario]}"
done
((FAILED == 0)) || HARNESS_KEEP=1
summary
