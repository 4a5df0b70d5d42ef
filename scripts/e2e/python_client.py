#!/usr/bin/env python3
"""End-to-end check with the official Python SDK client (PyPI `mcp` 2.x).

Connects to an MCP URL (an mcp-mux session URL, or a backend directly), lists
the tools, and calls one tool of each expected backend. Prints one
`ok - ...` / `not ok - ...` line per check and exits 1 if any failed.

    python_client.py URL [--backends everything,demo] [--no-prefix]
                         [--header 'Authorization: Bearer ...']
                         [--demo-fingerprint HEX] [--label NAME]
                         [--protocol 2026-07-28] [--mode auto|legacy]

The client offers sampling (a fixed "model" answer), so a backend tool that
samples makes a round trip through the client: a request on the answer
stream at 2025-11-25, an input_required result and a retry at 2026-07-28.
--protocol is the revision the client must end up speaking; --mode legacy
makes the client skip server/discover and initialize at once.

--no-prefix is for pointing it at a backend directly, where tool names carry
no `<server>__` prefix. --demo-fingerprint is the first 12 hex digits of the
SHA-256 of the demo token; `whoami` must report it, which proves the gateway
forwarded this session's credential and not some other one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

import tap
from tap import check

# What Claude Desktop and friends accept; anything else drops tools or servers.
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OVERALL_TIMEOUT_S = 90
CALL_TIMEOUT_S = 30



MODEL_ANSWER = "sampled by the e2e client"


async def answer_sampling(_context: Any, _params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=MODEL_ANSWER),
        model="e2e-model",
        stop_reason="endTurn",
    )


def result_text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")


def flatten(exc: BaseException) -> str:
    """The innermost messages of an exception group, which anyio raises from task groups."""
    if hasattr(exc, "exceptions"):
        return "; ".join(flatten(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


async def run(args: argparse.Namespace) -> None:
    label = args.label
    backends = [b for b in args.backends.split(",") if b]
    prefix = {b: "" if args.no_prefix else f"{b}{args.separator}" for b in backends}

    headers = {}
    for h in args.header:
        key, _, value = h.partition(":")
        headers[key.strip()] = value.strip()
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(CALL_TIMEOUT_S))
    transport = streamable_http_client(args.url, http_client=http)

    client = Client(
        transport, read_timeout_seconds=CALL_TIMEOUT_S, sampling_callback=answer_sampling, mode=args.mode
    )
    async with http, client:
        spoken = client.protocol_version
        check(label, f"connect (protocol {spoken})", not args.protocol or spoken == args.protocol, f"expected {args.protocol}")

        listed = await client.list_tools()
        names = [t.name for t in listed.tools]
        bad = [n for n in names if not NAME_RE.match(n)]
        check(label, f"tools/list names match {NAME_RE.pattern} ({len(names)} tools)", not bad, f"bad names: {bad}")
        if not args.no_prefix:
            stray = [n for n in names if not any(n.startswith(p) for p in prefix.values())]
            check(label, "every tool carries a backend prefix", not stray, f"unprefixed: {stray}")

        if "everything" in backends:
            p = prefix["everything"]
            mine = [n for n in names if n.startswith(p)]
            if check(label, f"tools/list has {p}echo", f"{p}echo" in names, f"got {sorted(names)}"):
                res = await client.call_tool(f"{p}echo", {"message": "hello from python"})
                text = result_text(res)
                check(
                    label,
                    f"tools/call {p}echo echoes",
                    not res.is_error and "hello from python" in text,
                    f"is_error={res.is_error} text={short(text)}",
                )
            check(label, f"tools/list has several everything tools ({len(mine)})", len(mine) >= 5, f"got {mine}")
            sampler = f"{p}trigger-sampling-request"
            if check(label, f"tools/list has {sampler}", sampler in names, f"got {sorted(names)}"):
                res = await client.call_tool(sampler, {"prompt": "say something", "maxTokens": 20})
                text = result_text(res)
                check(
                    label,
                    f"tools/call {sampler} reaches the client's model and back",
                    not res.is_error and MODEL_ANSWER in text,
                    f"is_error={res.is_error} text={short(text)}",
                )

        if "demo" in backends:
            p = prefix["demo"]
            if check(label, f"tools/list has {p}add", f"{p}add" in names, f"got {sorted(names)}"):
                res = await client.call_tool(f"{p}add", {"a": 2, "b": 3})
                text = result_text(res)
                structured = res.structured_content or {}
                value = structured.get("result", text.strip())
                try:
                    passed = not res.is_error and float(value) == 5.0
                except (TypeError, ValueError):
                    passed = False
                check(label, f"tools/call {p}add adds 2 + 3", passed, f"is_error={res.is_error} text={short(text)}")
            if check(label, f"tools/list has {p}whoami", f"{p}whoami" in names, f"got {sorted(names)}"):
                res = await client.call_tool(f"{p}whoami", {})
                who = res.structured_content or {}
                if not who:
                    try:
                        who = json.loads(result_text(res))
                    except ValueError:
                        who = {}
                passed = not res.is_error and who.get("authenticated") is True
                if args.demo_fingerprint:
                    passed = passed and who.get("token_sha256_prefix") == args.demo_fingerprint
                check(label, f"tools/call {p}whoami sees this session's token", passed, f"got {short(who)}")


def main() -> int:
    parser = argparse.ArgumentParser(description="MCP end-to-end check with the Python SDK client")
    parser.add_argument("url")
    parser.add_argument("--backends", default="everything,demo")
    parser.add_argument("--separator", default="__")
    parser.add_argument("--no-prefix", action="store_true")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--demo-fingerprint", default="")
    parser.add_argument("--label", default="python")
    parser.add_argument("--protocol", default="", help="the revision the client must end up speaking")
    parser.add_argument("--mode", default="auto", choices=["auto", "legacy"])
    args = parser.parse_args()

    async def bounded() -> None:
        with anyio.fail_after(OVERALL_TIMEOUT_S):
            await run(args)

    try:
        anyio.run(bounded)
    except Exception as exc:  # a crash is a failed check, with the reason on one line
        check(args.label, "session ran to the end", False, short(flatten(exc)))
    return 1 if tap.failures else 0


if __name__ == "__main__":
    sys.exit(main())
