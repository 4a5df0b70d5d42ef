#!/usr/bin/env python3
"""End-to-end check of a curated session with the official Python SDK client.

    curated_client.py URL --tools NAME,NAME,... [--call NAME JSON-ARGS TEXT]...
                          [--hidden NAME]... [--search QUERY EXPECTED-NAME]
                          [--label NAME]

Lists the tools and expects exactly --tools (in any order); each --call must
answer a text containing TEXT; each --hidden must be refused as an unknown
tool; --search calls search_tools with QUERY and expects EXPECTED-NAME among
the top 5, then calls it through call_tool with the arguments of the first
--call. Prints `ok - ...` / `not ok - ...` per check; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import tap
from tap import check


def result_text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")


async def run(args: argparse.Namespace) -> None:
    label = args.label
    async with Client(streamable_http_client(args.url), read_timeout_seconds=30) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        wanted = sorted(args.tools.split(","))
        check(label, f"tools/list shows exactly {', '.join(wanted)}", names == wanted, f"got {names}")
        for name, arguments, text in args.call:
            result = await client.call_tool(name, json.loads(arguments))
            got = result_text(result)
            check(label, f"{name} answers {text!r}", not result.is_error and text in got, f"got {got[:200]!r}")
        for name in args.hidden:
            try:
                result = await client.call_tool(name, {})
                check(label, f"{name} is refused as unknown", False, f"it answered {result_text(result)[:200]!r}")
            except MCPError as error:
                message = str(error)
                check(label, f"{name} is refused as unknown", f'unknown tool "{name}"' in message, message)
        if args.search:
            query, expected = args.search
            found = await client.call_tool("search_tools", {"query": query, "limit": 5})
            hits = [tool["name"] for tool in json.loads(result_text(found))["tools"]]
            check(label, f"search_tools {query!r} finds {expected} in its top 5", expected in hits, f"got {hits}")
            if args.call:
                name, arguments, text = args.call[0]
                result = await client.call_tool("call_tool", {"name": name, "arguments": json.loads(arguments)})
                got = result_text(result)
                check(label, f"call_tool {name} answers {text!r}", not result.is_error and text in got, f"got {got[:200]!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description="curated session check with the Python SDK client")
    parser.add_argument("url")
    parser.add_argument("--tools", required=True)
    parser.add_argument("--call", nargs=3, action="append", default=[], metavar=("NAME", "JSON", "TEXT"))
    parser.add_argument("--hidden", action="append", default=[])
    parser.add_argument("--search", nargs=2, metavar=("QUERY", "EXPECTED"))
    parser.add_argument("--label", default="python curated")
    args = parser.parse_args()

    async def bounded() -> None:
        with anyio.fail_after(90):
            await run(args)

    try:
        anyio.run(bounded)
    except Exception as exc:  # a crash is a failed check, with its reason
        check(args.label, "session ran to the end", False, f"{type(exc).__name__}: {exc}"[:300])
    return 1 if tap.failures else 0


if __name__ == "__main__":
    sys.exit(main())
