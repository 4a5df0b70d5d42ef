"""Writes tests/search/everything_tools.json: the tools/list answer of the
pinned reference server, with its tool names qualified as a session over the
server `everything` shows them. Run from the repository's root with
`python3 scripts/search/everything_tools.py` (needs npx and the npm registry).
"""

import json
import subprocess
import sys

SERVER = "@modelcontextprotocol/server-everything@2026.8.31"
PREFIX = "everything__"
OUT = "tests/search/everything_tools.json"

server = subprocess.Popen(
    ["npx", "-y", SERVER, "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
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
            return message["result"]
    sys.exit(f"{SERVER} ended before answering request {request_id}")


send({"id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "mcp-mux-fixture", "version": "1"}}})
answer(0)
send({"method": "notifications/initialized"})
tools, cursor, request_id = [], None, 1
while True:
    send({"id": request_id, "method": "tools/list", "params": {"cursor": cursor} if cursor else {}})
    page = answer(request_id)
    tools += page["tools"]
    cursor, request_id = page.get("nextCursor"), request_id + 1
    if not cursor:
        break
server.terminate()

for tool in tools:
    tool["name"] = PREFIX + tool["name"]
with open(OUT, "w") as out:
    json.dump({"tools": tools}, out, indent=2, ensure_ascii=False)
    out.write("\n")
print(f"{OUT}: {len(tools)} tools of {SERVER}", file=sys.stderr)
