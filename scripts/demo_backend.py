#!/usr/bin/env python3
"""A small MCP server that requires a bearer token: a second backend for mcp-mux.

It speaks MCP Streamable HTTP at http://HOST:PORT/mcp and answers HTTP 401 to
any request that lacks `Authorization: Bearer <DEMO_BACKEND_TOKEN>`. That makes
it the simplest way to see mcp-mux hold a per-session credential: register it
with `auth: { type: bearer }`, then pass the token in `POST /create-session`.

    python3 -m venv .venv && .venv/bin/pip install 'mcp==2.3.0'
    DEMO_BACKEND_TOKEN=s3cret .venv/bin/python scripts/demo_backend.py --port 3002

    # registry.yaml
    servers:
      demo:
        url: http://127.0.0.1:3002/mcp
        auth: { type: bearer }

    curl -s localhost:8000/create-session -H 'content-type: application/json' \\
      -d '{"servers": ["demo"], "credentials": {"demo": {"token": "s3cret"}}}'

Tools: `add(a, b)`, `echo(message)`, `whoami()`, which proves the caller
was authenticated without ever revealing the token, and `record(key)`, which
appends the key to the file DEMO_RECORD_FILE names (a tool with an effect).

Options (flags beat the environment): --host / DEMO_BACKEND_HOST (default
127.0.0.1), --port / DEMO_BACKEND_PORT (default 3002), and the token, which is
read from the environment only, so that it never shows in the process list.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys

from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

CLIENT_ID = "demo-client"


def fingerprint(token: str) -> str:
    """The first 12 hex digits of the token's SHA-256: enough to tell which
    token was used, useless for recovering it."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class StaticTokenVerifier:
    """Accepts exactly one token, compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token.encode()):
            return AccessToken(token=token, client_id=CLIENT_ID, scopes=[])
        return None


def build_server(token: str, host: str, port: int) -> MCPServer:
    server = MCPServer(
        name="demo",
        instructions="Demo backend for mcp-mux: arithmetic, echo and an auth check.",
        token_verifier=StaticTokenVerifier(token),
        # The SDK's bearer check is part of its OAuth support, which wants an
        # issuer. No authorization server exists here (the token is static),
        # and with no resource_server_url the SDK publishes no OAuth metadata,
        # so clients are never sent looking for one.
        auth=AuthSettings(
            issuer_url=f"http://{host}:{port}",
            resource_server_url=None,
            validate_token_resource=False,
        ),
    )

    @server.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @server.tool()
    def echo(message: str) -> str:
        """Return the message unchanged."""
        return message

    @server.tool()
    def record(key: str) -> str:
        """Append the key to DEMO_RECORD_FILE: a call with an effect, so that a
        caller can tell whether it ran once, twice or not at all."""
        path = os.environ.get("DEMO_RECORD_FILE")
        if path:
            with open(path, "a", encoding="utf-8") as file:
                file.write(key + "\n")
        return f"recorded {key}"

    @server.tool()
    def whoami() -> dict[str, object]:
        """Tell who the server thinks is calling, and a fingerprint of the token used."""
        access = get_access_token()
        if access is None:  # unreachable while the bearer check is on
            return {"authenticated": False}
        return {
            "authenticated": True,
            "client_id": access.client_id,
            "token_sha256_prefix": fingerprint(access.token),
        }

    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("DEMO_BACKEND_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_BACKEND_PORT", "3002")))
    args = parser.parse_args()

    token = os.environ.get("DEMO_BACKEND_TOKEN", "")
    if not token:
        print("demo_backend: set DEMO_BACKEND_TOKEN to the bearer token clients must send", file=sys.stderr)
        return 2

    build_server(token, args.host, args.port).run("streamable-http", host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
