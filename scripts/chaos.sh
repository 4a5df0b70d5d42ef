#!/usr/bin/env bash
# Chaos run: many concurrent clients call tools through one session while the
# backends and mcp-mux itself are killed (SIGKILL), stopped (SIGTERM), stalled
# (SIGSTOP) and restarted; then prints calls attempted / succeeded / failed
# with a clear error / lost / hung, and checks that none was lost or hung and
# that no call with an effect ran twice. A second run does the same with the
# demo backend killed again and again under a fallback replica (registry
# `fallback`), and checks that the replica answered meanwhile.
#
#   bash scripts/chaos.sh [--duration SECONDS] [--clients N] [--seed N]
#
# Defaults: 60 s per run, 12 clients, a random seed (printed, to replay a run).
# MCP_MUX_BIN overrides the binary (default target/debug/mcp-mux, built if
# missing); CHAOS_KEEP=1 keeps the logs. Uses the peers scripts/e2e.sh
# installs into .e2e/.
set -euo pipefail

if [[ -n ${MCP_MUX_BIN:-} && $MCP_MUX_BIN != /* ]]; then MCP_MUX_BIN=$PWD/$MCP_MUX_BIN; fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-mux-chaos.XXXXXX")
HARNESS_NAME=chaos
HARNESS_KEEP=${CHAOS_KEEP:-0}
# shellcheck source=scripts/harness.sh
source "$ROOT/scripts/harness.sh"

need node
need npm
need timeout
need sha256sum
install_e2e_packages "$ROOT/scripts/e2e" "$ROOT/.e2e"

MUX=${MCP_MUX_BIN:-target/debug/mcp-mux}
if [[ ! -x $MUX ]]; then
  echo "# $MUX is missing: cargo build" >&2
  cargo build --quiet 2>&1 | note
fi

out=$("$PY" scripts/chaos/chaos.py --mux "$MUX" --node-modules "$NODE_MODULES" \
  --python "$PY" --work "$WORK" "$@") || true
# Then the failover run: the demo backend killed under a fallback replica.
failover=$("$PY" scripts/chaos/chaos.py --mux "$MUX" --node-modules "$NODE_MODULES" \
  --python "$PY" --work "$WORK/failover" --failover "$@") || true
report_checks chaos.py "$out"$'\n'"$failover"
