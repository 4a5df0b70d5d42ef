#!/usr/bin/env bash
# Benchmark: what mcp-mux adds to an MCP call, beside nginx as the floor,
# in one run on this machine. Prints tables; asserts nothing.
#
#   bash scripts/bench.sh [--duration SECONDS] [--repeat N] [--database-url postgres://…]
#                         [--only calls|growth|features|initialize|memory|create-session|nodes|callgrind]
#
# Builds mcp-mux in release mode, and scripts/bench/stack_floor (the chosen
# stack forwarding bodies with no MCP work, a floor beside nginx); installs
# wrk, nginx-light and valgrind with apt-get when they are missing. The backend is scripts/bench/backend.mjs
# (Node); the OAuth backend's row uses scripts/oauth_load/oidc_backend.mjs,
# whose npm packages scripts/oauth_load/install.sh installs (skipped without
# npm). --duration is the length of each wrk run (3 s), --repeat the runs
# per point (2). BENCH_KEEP=1 keeps the logs. Not run by CI: it takes about
# half an hour.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-mux-bench.XXXXXX")
cleanup() { if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "# logs kept: $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v valgrind >/dev/null || missing+=(valgrind)
if ((${#missing[@]})); then
  echo "# installing ${missing[*]} with apt-get" >&2
  sudo=""
  ((EUID == 0)) || sudo=sudo
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
export PATH=$PATH:/usr/sbin

echo "# building mcp-mux and the stack's floors (release)" >&2
cargo build --release --quiet --bin mcp-mux
# The floors build apart, with their own lock file, into the same target.
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target} cargo build --release --quiet --locked --manifest-path scripts/bench/stack_floor/Cargo.toml

oauth=()
if command -v npm >/dev/null; then oauth=(--oauth-backend "$(bash scripts/oauth_load/install.sh)"); fi

python3 scripts/bench/bench.py --mux "${CARGO_TARGET_DIR:-target}/release/mcp-mux" --stack-floor "${CARGO_TARGET_DIR:-target}/release" \
  --work "$WORK" "${oauth[@]}" "$@"
