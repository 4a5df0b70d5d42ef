#!/usr/bin/env bash
# Resource run: mcp-mux held to 1,024 open files is flooded with MCP sessions
# and half-sent request bodies while a bystander session keeps calling a tool;
# then checks the bystander never failed, /healthz answered, a new session is
# served (and prints how soon) and the open files return to the baseline.
# Then hostile floods against another gateway (pathological tool rules, a
# metrics-label flood, a connection-budget hog, a login burst), with a
# bystander calling and /healthz probed throughout (scripts/resources/hostile.py).
#
#   bash scripts/resources.sh
#
# MCP_MUX_BIN overrides the binary (default target/debug/mcp-mux, built if
# missing); RESOURCES_KEEP=1 keeps the logs. Uses the peers scripts/e2e.sh
# installs into .e2e/.
set -euo pipefail

if [[ -n ${MCP_MUX_BIN:-} && $MCP_MUX_BIN != /* ]]; then MCP_MUX_BIN=$PWD/$MCP_MUX_BIN; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-mux-resources.XXXXXX")
HARNESS_NAME=resources
HARNESS_KEEP=${RESOURCES_KEEP:-0}
# shellcheck source=scripts/harness.sh
source "$ROOT/scripts/harness.sh"

need npm
need sha256sum
install_e2e_packages "$ROOT/scripts/e2e" "$ROOT/.e2e"

MUX=${MCP_MUX_BIN:-$ROOT/target/debug/mcp-mux}
if [[ ! -x $MUX ]]; then
  echo "# $MUX is missing: cargo build" >&2
  cargo build --quiet 2>&1 | note
fi

out=$("$PY" scripts/resources/flood.py --mux "$MUX" --python "$PY" --work "$WORK") || true
out+=$'\n'$("$PY" scripts/resources/hostile.py --mux "$MUX" --python "$PY" --work "$WORK") || true
report_checks "flood.py and hostile.py" "$out"
