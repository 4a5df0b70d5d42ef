#!/usr/bin/env python3
"""A backend whose tools ask their client mid-call, written with the Python SDK.

mcp-mux speaks revision 2025-11-25 to it, so its tools ask the 2025 way: a
request to the client while the call runs (`elicitation/create`,
`sampling/createMessage`, `roots/list`), which mcp-mux turns into
`InputRequiredResult` rounds for clients of revision 2026-07-28. The SDK
sends `roots/list` outside the call (it names no request it belongs to).

    asking_backend.py --port PORT [--host 127.0.0.1]

Tools:
- `triple`: asks for a name, a sample and the roots at once;
- `rounds`: asks for four values, one after another;
- `pairs`: asks for two samples at once, then two values at once;
- `careful`: asks, at once, for whatever the client declared it can give,
  and says what it asked ("none" for a client that declared nothing).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

import anyio
import mcp_types as types
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

mcp = MCPServer("asking")


async def sample(ctx: Context, question: str) -> str:
    message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text=question))
    answer = await ctx.session.create_message([message], max_tokens=20, related_request_id=ctx.request_id)
    return answer.content.text if answer.content.type == "text" else f"({answer.content.type})"


async def ask(ctx: Context, question: str) -> str:
    schema = {"type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"]}
    answer = await ctx.session.elicit_form(question, schema, related_request_id=ctx.request_id)
    return str((answer.content or {}).get("value")) if answer.action == "accept" else f"({answer.action})"


async def roots(ctx: Context) -> str:
    listed = await ctx.session.list_roots()
    return ",".join(str(root.uri) for root in listed.roots)


async def at_once(*asks: Callable[[], Awaitable[str]]) -> list[str]:
    """The answers of ASKS, asked concurrently, in their order."""
    answers = [""] * len(asks)

    async def one(index: int) -> None:
        answers[index] = await asks[index]()

    async with anyio.create_task_group() as group:
        for index in range(len(asks)):
            group.start_soon(one, index)
    return answers


@mcp.tool()
async def triple(ctx: Context) -> str:
    """Asks for a name, a sample and the roots at once."""
    return "|".join(await at_once(lambda: ask(ctx, "name?"), lambda: sample(ctx, "greet"), lambda: roots(ctx)))


@mcp.tool()
async def rounds(ctx: Context) -> str:
    """Asks for four values, one after another."""
    return "-".join([await ask(ctx, f"step {step}?") for step in range(1, 5)])


@mcp.tool()
async def pairs(ctx: Context) -> str:
    """Asks for two samples at once, then two values at once."""
    samples = await at_once(lambda: sample(ctx, "first?"), lambda: sample(ctx, "second?"))
    values = await at_once(lambda: ask(ctx, "third?"), lambda: ask(ctx, "fourth?"))
    return ",".join(samples + values)


@mcp.tool()
async def careful(ctx: Context) -> str:
    """Asks, at once, for whatever the client declared it can give."""
    params = ctx.session.client_params
    declared = params.capabilities if params else None
    asks: list[Callable[[], Awaitable[str]]] = []
    kinds: list[str] = []
    if declared and declared.elicitation:
        kinds.append("elicitation")
        asks.append(lambda: ask(ctx, "anything?"))
    if declared and declared.sampling:
        kinds.append("sampling")
        asks.append(lambda: sample(ctx, "anything?"))
    if declared and declared.roots:
        kinds.append("roots")
        asks.append(lambda: roots(ctx))
    answers = await at_once(*asks)
    return ",".join(f"{kind}={answer}" for kind, answer in zip(kinds, answers, strict=True)) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    mcp.run(transport="streamable-http", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
