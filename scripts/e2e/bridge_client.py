#!/usr/bin/env python3
"""End-to-end check of the bridge from revision 2026-07-28 to 2025-11-25,
with the Python SDK on both sides.

The SDK's client (PyPI `mcp` 2.x) speaks 2026-07-28 to an mcp-mux session
over `asking_backend.py`, a 2025-11-25 backend written with the same SDK,
whose tools ask their client mid-call. Each client declares a different set
of capabilities (the callbacks it gives); the client drives the
`InputRequiredResult` rounds itself. Every POST of a `tools/call` is
counted, so that requests a backend sends at once are seen to come in one
round.

    bridge_client.py SESSION_URL [--prefix asking__] [--label NAME]

Prints one `ok - ...` / `not ok - ...` line per check; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

import tap
from tap import check

CALL_TIMEOUT_S = 30
ROOT = "file:///e2e/root"



async def sampled(_context: Any, _params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="S"), model="e2e", stop_reason="endTurn"
    )


async def elicited(_context: Any, _params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"value": "E"})


async def rooted(_context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri=ROOT, name="e2e")])


# What each client can give: the callbacks it declares.
PROFILES: dict[str, dict[str, Any]] = {
    "everything": {"sampling_callback": sampled, "elicitation_callback": elicited, "list_roots_callback": rooted},
    "roots only": {"list_roots_callback": rooted},
    "elicitation only": {"elicitation_callback": elicited},
    "sampling and roots": {"sampling_callback": sampled, "list_roots_callback": rooted},
    "nothing": {},
}

# (profile, tool, the text it must answer, POSTs it must take: one per round)
EXPECTED = [
    ("everything", "careful", f"elicitation=E,sampling=S,roots={ROOT}", 2),
    ("everything", "triple", f"E|S|{ROOT}", 2),
    ("everything", "rounds", "E-E-E-E", 5),
    ("everything", "pairs", "S,S,E,E", 3),
    ("roots only", "careful", f"roots={ROOT}", 2),
    ("elicitation only", "careful", "elicitation=E", 2),
    ("sampling and roots", "careful", f"sampling=S,roots={ROOT}", 2),
    ("nothing", "careful", "none", 1),
]


def result_text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")


async def run(args: argparse.Namespace) -> None:
    with anyio.fail_after(120):
        await run_profiles(args)


async def run_profiles(args: argparse.Namespace) -> None:
    for profile, callbacks in PROFILES.items():
        posts: Counter[str] = Counter()

        async def count(request: httpx2.Request) -> None:
            try:
                body = json.loads(request.content or b"{}")
            except ValueError:
                return
            if isinstance(body, dict) and body.get("method") == "tools/call":
                posts[body["params"]["name"]] += 1

        http = httpx2.AsyncClient(timeout=httpx2.Timeout(CALL_TIMEOUT_S), event_hooks={"request": [count]})
        transport = streamable_http_client(args.url, http_client=http)
        client = Client(transport, read_timeout_seconds=CALL_TIMEOUT_S, **callbacks)
        label = f"{args.label} ({profile})"
        async with http, client:
            check(label, "speaks 2026-07-28", client.protocol_version == "2026-07-28", str(client.protocol_version))
            for wanted_profile, tool, text, rounds in EXPECTED:
                if wanted_profile != profile:
                    continue
                name = f"{args.prefix}{tool}"
                try:
                    result = await client.call_tool(name, {})
                    got = result_text(result)
                    failed = result.is_error
                except Exception as error:  # noqa: BLE001 - reported as a failed check
                    got, failed = f"{type(error).__name__}: {error}", True
                check(label, f"{tool} answers {text!r}", not failed and got == text, f"got {got!r}")
                check(
                    label,
                    f"{tool} takes {rounds} POST{'s' if rounds > 1 else ''}, one per round",
                    posts[name] == rounds,
                    f"took {posts[name]}",
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--prefix", default="asking__")
    parser.add_argument("--label", default="bridge")
    args = parser.parse_args()
    anyio.run(run, args)
    sys.exit(1 if tap.failures else 0)


if __name__ == "__main__":
    main()
