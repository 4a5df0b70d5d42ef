"""Captures the tools/list answers of real public MCP servers, pinned by
version, into tests/search/eval/catalogues/<server>.json, with each tool's
name qualified as a session over that server shows it (`<server>__<tool>`).
The search evaluation (tests/search/eval.rs, benches/search.rs) ranks them.

Run from the repository's root: `python3 scripts/search-eval/capture.py`
(needs node, npm and the npm registry; the packages are installed into a
temporary folder). None of these servers needs an account to list its
tools: the credentials below are placeholders that no tool call ever uses.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

OUT = "tests/search/eval/catalogues"

# server name -> (npm package, version, command line after `node_modules/.bin/`, extra env)
SERVERS = {
    "github": ("@modelcontextprotocol/server-github", "2025.4.8",
               ["mcp-server-github"], {"GITHUB_PERSONAL_ACCESS_TOKEN": "placeholder"}),
    "sentry": ("@sentry/mcp-server", "0.36.0",
               ["sentry-mcp", "--access-token=placeholder"], {}),
    "notion": ("@notionhq/notion-mcp-server", "2.5.2",
               ["notion-mcp-server"], {"NOTION_TOKEN": "placeholder"}),
    "playwright": ("@playwright/mcp", "0.0.86", ["playwright-mcp"], {}),
    "filesystem": ("@modelcontextprotocol/server-filesystem", "2026.8.31",
                   ["mcp-server-filesystem", "/tmp"], {}),
}


def capture(folder, name, package, version, command, env):
    server = subprocess.Popen(
        [os.path.join(folder, "node_modules", ".bin", command[0]), *command[1:]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env={**os.environ, **env}, cwd=folder,
    )

    def send(message):
        server.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
        server.stdin.flush()

    def answer(request_id):
        """The result of request `request_id`; other lines (logs, notifications) are skipped."""
        for line in server.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("id") == request_id:
                if "result" not in message:
                    sys.exit(f"{package}@{version}: {message}")
                return message["result"]
        sys.exit(f"{package}@{version} ended before answering request {request_id}")

    send({"id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "mcp-mux-search-eval", "version": "1"}}})
    answer(0)
    send({"method": "notifications/initialized"})
    tools, cursor, request_id = [], None, 1
    while True:
        send({"id": request_id, "method": "tools/list",
              "params": {"cursor": cursor} if cursor else {}})
        page = answer(request_id)
        tools += page["tools"]
        cursor, request_id = page.get("nextCursor"), request_id + 1
        if not cursor:
            break
    server.terminate()
    server.wait()
    for tool in tools:
        tool["name"] = f"{name}__{tool['name']}"
    return {"server": name, "source": f"npm {package}@{version}", "tools": tools}


def main():
    only = set(sys.argv[1:])
    os.makedirs(OUT, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="mcp-mux-search-eval-")
    try:
        chosen = {k: v for k, v in SERVERS.items() if not only or k in only}
        subprocess.run(["npm", "init", "-y"], cwd=folder, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                        *[f"{p}@{v}" for p, v, _, _ in chosen.values()]],
                       cwd=folder, check=True, stdout=subprocess.DEVNULL)
        for name, (package, version, command, env) in chosen.items():
            catalogue = capture(folder, name, package, version, command, env)
            path = os.path.join(OUT, f"{name}.json")
            with open(path, "w") as out:
                json.dump(catalogue, out, indent=1, ensure_ascii=False)
                out.write("\n")
            print(f"{path}: {len(catalogue['tools'])} tools of {package}@{version}",
                  file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


main()
