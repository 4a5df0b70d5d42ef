#!/usr/bin/env python3
"""End-to-end check of a session over an OAuth backend that waits for its
user's authorization, with the official Python SDK client (PyPI `mcp` 2.x).

    oauth_client.py URL --link LINK [--server demo] [--locations FILE] [--label NAME]

URL is the session's MCP URL and LINK the authorization link that
POST /create-session answered for --server, whose `greet` tool answers
"Hello, <name>!". Before anyone follows the link:
  - a client without elicitation (2025-11-25) that calls <server>__greet gets
    a tool error whose text holds LINK;
  - a 2026-07-28 client that takes elicitations is asked, in an
    InputRequiredResult, to open LINK as a URL elicitation; when its user
    declines, the call ends with a tool error that says so;
  - a 2025-11-25 client that takes URL elicitations lists no tool of the
    server and gets -32042 with LINK as the URL elicitation.
That client then opens the elicitation's URL, as a browser would (following
the redirects through the backend's authorization server back to mcp-mux's
callback), must be told that its tool list changed, and calls again:
"Hello, python!". --locations appends the Location header of every redirect
to FILE, so that the caller can look for the authorization code in the
gateway's log. Prints `ok - ...` / `not ok - ...` per check; exits 1 if any
failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import tap
from tap import check

URL_ELICITATION_REQUIRED = -32042
CONNECTED = "is connected to this session"
OVERALL_TIMEOUT_S = 90
CALL_TIMEOUT_S = 30
NOTIFICATION_TIMEOUT_S = 15



def result_text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")


def short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def flatten(exc: BaseException) -> str:
    """The innermost messages of an exception group, which anyio raises from task groups."""
    if hasattr(exc, "exceptions"):
        return "; ".join(flatten(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def decline(_context: Any, _params: Any) -> types.ElicitResult:
    # Declaring the capability is what matters: mcp-mux asks through an error,
    # not an elicitation request.
    return types.ElicitResult(action="decline")


async def expect_link_in_tool_error(label: str, client: Client, tool: str, link: str, who: str) -> None:
    try:
        result = await client.call_tool(tool, {"name": "python"})
    except MCPError as error:
        check(label, f"{who} gets a tool error holding the link", False, f"got error {error.code}: {short(error.message)}")
        return
    text = result_text(result)
    check(
        label,
        f"{who} gets a tool error holding the link",
        result.is_error and "needs authorization" in text and link in text,
        f"is_error={result.is_error} text={short(text)}",
    )


async def open_link(url: str, locations: str) -> tuple[int, str]:
    """Follows the link and its redirects as a browser would; the status and page at the end."""
    async with httpx2.AsyncClient(follow_redirects=True, timeout=httpx2.Timeout(CALL_TIMEOUT_S)) as http:
        response = await http.get(url)
    if locations:
        with open(locations, "a", encoding="utf-8") as out:
            for hop in response.history:
                out.write(hop.headers.get("location", "") + "\n")
    return response.status_code, response.text


async def run(args: argparse.Namespace) -> None:
    label = args.label
    prefix = f"{args.server}__"
    tool = f"{prefix}greet"

    async with Client(streamable_http_client(args.url), mode="legacy", read_timeout_seconds=CALL_TIMEOUT_S) as plain:
        await expect_link_in_tool_error(label, plain, tool, args.link, f"a client without elicitation calling {tool}")

    asked: list[Any] = []

    async def record_and_decline(_context: Any, params: Any) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="decline")

    async with Client(
        streamable_http_client(args.url), read_timeout_seconds=CALL_TIMEOUT_S, elicitation_callback=record_and_decline
    ) as modern:
        who = f"a {modern.protocol_version} client that takes elicitations"
        try:
            result = await modern.call_tool(tool, {"name": "python"})
            text = result_text(result)
        except MCPError as error:
            result, text = None, f"error {error.code}: {error.message}"
        urls = [getattr(params, "url", None) for params in asked]
        check(label, f"{who} is asked to open the link as a URL elicitation", urls == [args.link], f"asked {short(asked)}")
        check(
            label,
            f"{who} whose user declines gets a tool error saying so",
            result is not None and result.is_error and "was not authorized" in text,
            short(text),
        )

    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            changed.set()

    async with Client(
        streamable_http_client(args.url),
        mode="legacy",
        read_timeout_seconds=CALL_TIMEOUT_S,
        elicitation_callback=decline,
        message_handler=on_message,
    ) as client:
        spoken = client.protocol_version
        check(label, f"an elicitation client connects (protocol {spoken})", spoken == "2025-11-25", "expected 2025-11-25")

        names = [t.name for t in (await client.list_tools()).tools]
        mine = [n for n in names if n.startswith(prefix)]
        check(label, f"tools/list shows no {prefix}* tool before authorization", not mine, f"got {mine}")

        link = ""
        try:
            result = await client.call_tool(tool, {"name": "python"})
            check(label, f"tools/call {tool} answers error {URL_ELICITATION_REQUIRED}", False, f"it answered {short(result_text(result))}")
        except MCPError as error:
            if check(
                label,
                f"tools/call {tool} answers error {URL_ELICITATION_REQUIRED}",
                error.code == URL_ELICITATION_REQUIRED,
                f"got {error.code}: {short(error.message)}",
            ):
                elicitations = (error.data or {}).get("elicitations") or [{}]
                first = elicitations[0]
                link = first.get("url", "")
                check(
                    label,
                    "its data.elicitations[0] is a URL elicitation of the link, with an id and a message",
                    first.get("mode") == "url"
                    and link == args.link
                    and bool(first.get("elicitationId"))
                    and args.link in first.get("message", ""),
                    f"got {short(error.data)}",
                )
        if not link:
            return

        status, page = await open_link(link, args.locations)
        check(
            label,
            f"opening the elicitation's URL ends on the page saying {args.server} {CONNECTED}",
            status == 200 and f"{args.server} {CONNECTED}" in page,
            f"got {status} {short(page)}",
        )

        with anyio.move_on_after(NOTIFICATION_TIMEOUT_S):
            await changed.wait()
        check(
            label,
            "the open MCP session is sent notifications/tools/list_changed",
            changed.is_set(),
            f"none within {NOTIFICATION_TIMEOUT_S} s",
        )

        names = [t.name for t in (await client.list_tools()).tools]
        check(label, f"tools/list then shows {tool}", tool in names, f"got {sorted(names)}")
        result = await client.call_tool(tool, {"name": "python"})
        text = result_text(result)
        check(
            label,
            f"tools/call {tool} again answers 'Hello, python!'",
            not result.is_error and "Hello, python!" in text,
            f"is_error={result.is_error} text={short(text)}",
        )


def main() -> int:
    parser = argparse.ArgumentParser(description="OAuth session check with the Python SDK client")
    parser.add_argument("url")
    parser.add_argument("--link", required=True, help="the authorization link create-session answered")
    parser.add_argument("--server", default="demo")
    parser.add_argument("--locations", default="", help="append every redirect's Location header to this file")
    parser.add_argument("--label", default="python oauth")
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
