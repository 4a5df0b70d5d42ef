"""A client generated from the gateway's live /openapi.json by
openapi-python-client, as an operator's tooling would make one: it creates a
session, calls a tool over plain HTTP, deletes the session and finds it gone.

    python generated_client.py BASE-URL OPENAPI-JSON WORK-DIR SERVER TOOL

Runs in a venv of its own (scripts/e2e/client-requirements.txt): the
generator pins other versions than the MCP SDK. Prints TAP lines (tap.py).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import typing
from pathlib import Path

import tap
from tap import check

LABEL = "generated client"


def generate(document: Path, work: Path) -> Path:
    """Generates the client package and returns the folder that holds it."""
    out = work / "generated-client"
    bin_dir = Path(sys.executable).parent
    # Its own ruff (a post-generation hook) is found on PATH.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", str(document), "--output-path", str(out), "--overwrite"],
        capture_output=True,
        text=True,
        env=env,
    )
    said = done.stdout + done.stderr
    if not check(LABEL, "openapi-python-client generates a client from /openapi.json", done.returncode == 0, said[-1500:]):
        sys.exit(1)
    # What it could not model is said, not failed: /metrics answers the
    # OpenMetrics media type, which the generator cannot parse, and its
    # operation is generated without a parsed answer.
    for line in said.splitlines():
        if line.startswith("WARNING") or line.startswith("Cannot parse"):
            print(f"# openapi-python-client: {line}", flush=True)
    return next(out.glob("*/client.py")).parent.parent


def body_type(function) -> type:
    """The model class an operation's `body` parameter takes."""
    hint = typing.get_type_hints(function)["body"]
    for candidate in (hint, *typing.get_args(hint)):
        if hasattr(candidate, "from_dict"):
            return candidate
    raise TypeError(f"no model in {hint}")


def main() -> int:
    base, document, work, server, tool = sys.argv[1:6]
    root = generate(Path(document), Path(work))
    sys.path.insert(0, str(root))
    package = next(root.glob("*/client.py")).parent.name
    client_module = importlib.import_module(package)
    api = lambda tag, operation: importlib.import_module(f"{package}.api.{tag}.{operation}")  # noqa: E731
    create_session = api("sessions", "create_session")
    get_session = api("sessions", "get_session")
    delete_session = api("sessions", "delete_session")
    call_session_tool = api("tools", "call_session_tool")
    client = client_module.Client(base_url=base, raise_on_unexpected_status=False)

    body = body_type(create_session.sync_detailed).from_dict({"servers": [server]})
    created = create_session.sync_detailed(client=client, body=body)
    session = created.parsed.session_id if created.parsed is not None and hasattr(created.parsed, "session_id") else None
    if not check(LABEL, "create_session answers 201 with a session id, parsed", created.status_code == 201 and bool(session),
                 f"{created.status_code} {created.content[:300]!r}"):
        return 1

    arguments = body_type(call_session_tool.sync_detailed).from_dict({"message": "from a generated client"})
    called = call_session_tool.sync_detailed(id=session, name=tool, client=client, body=arguments)
    text = called.content.decode(errors="replace")
    check(LABEL, f"call_session_tool calls {tool} and answers 200 with its result", called.status_code == 200
          and "Echo: from a generated client" in text, f"{called.status_code} {text[:300]}")

    deleted = delete_session.sync_detailed(id=session, client=client)
    check(LABEL, "delete_session answers 200, deleted", deleted.status_code == 200 and deleted.parsed is not None
          and getattr(deleted.parsed, "status", None) == "deleted", f"{deleted.status_code} {deleted.content[:300]!r}")
    gone = get_session.sync_detailed(id=session, client=client)
    check(LABEL, "get_session then answers 404", gone.status_code == 404, f"{gone.status_code} {gone.content[:300]!r}")
    return 1 if tap.failures else 0


if __name__ == "__main__":
    sys.exit(main())
