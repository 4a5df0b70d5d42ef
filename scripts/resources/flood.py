#!/usr/bin/env python3
"""Floods an mcp-mux held to 1,024 open files with MCP sessions and
half-sent request bodies while a bystander session keeps calling a tool,
then checks that the gateway recovers.

Started by scripts/resources.sh, which installs the peers. mcp-mux runs under
`ulimit -n 1024` (soft and hard, so it cannot raise it) with a short body
timeout, in front of scripts/demo_backend.py. The flood:
  - 16 sessions, each initialized 40 times over (more MCP sessions than one
    session may hold, each with a stream to the backend), 32 at a time;
  - 1,100 connections that send the start of a body and never the rest:
    Content-Length bodies and chunked bodies, to the MCP endpoint and to
    /create-session.
Meanwhile the bystander calls `demo__add` on one kept-alive connection every
50 ms. Checks, each printed `ok - ...` or `not ok - ...`:
  - every bystander call during the flood succeeded;
  - /healthz answered during the flood;
  - the half-sent bodies got 408 or were closed, none was left open;
  - after the flood ends (sessions deleted, sockets closed) a new session
    answers a call (how soon is printed: it waits on the demo backend, which
    is still closing the flood's backend sessions; 10 s is the limit of a
    gateway that still serves);
  - the gateway's open files return to the baseline, plus the idle connections and
    SQLite's pool that outlive a burst;
  - the log never says "Too many open files".
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from report import report

FLOOD_SESSIONS = 16
INITIALIZES_PER_SESSION = 40
HALF_SENT_BODIES = 1100
BODY_TIMEOUT_SECS = 2
# What may stay open after a burst, by design, until idle timeouts close it:
# the idle connections to a backend host (src/capacity.rs) and SQLite's pool,
# 4 connections of 3 files each in WAL mode (src/store/mod.rs).
KEPT_AFTER_A_BURST = 32 + 4 * 3
ACCEPT = "application/json, text/event-stream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, path: str, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {timeout} s")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_file_kinds(pid: int) -> str:
    """What a process's open files are: sockets, files, the rest."""
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = "socket" if target.startswith("socket:") else "file" if target.startswith("/") else target.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))


class Gateway:
    """Requests to mcp-mux, one connection each unless a connection is given."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None, connection=None, timeout: float = 10):
        own = connection is None
        connection = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        all_headers = {"content-type": "application/json", **(headers or {})}
        connection.request(method, path, json.dumps(body) if body is not None else None, all_headers)
        response = connection.getresponse()
        data = response.read()
        headers_out = {k.lower(): v for k, v in response.getheaders()}
        if own:
            connection.close()
        return response.status, headers_out, data

    def create_session(self, token: str) -> str:
        status, _, data = self.request("POST", "/create-session", {"servers": ["demo"], "credentials": {"demo": {"token": token}}})
        if status != 201:
            raise RuntimeError(f"create-session answered {status}: {data[:200]!r}")
        return json.loads(data)["session_id"]

    def initialize(self, session_id: str, connection=None, timeout: float = 10) -> tuple[int, str | None]:
        status, headers, _ = self.request(
            "POST",
            f"/session/{session_id}/mcp",
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "flood", "version": "1"}},
            },
            {"accept": ACCEPT},
            connection,
            timeout,
        )
        return status, headers.get("mcp-session-id")


def call_result(data: bytes, kind: str) -> dict | None:
    """The JSON-RPC message of a JSON or SSE answer."""
    text = data.decode("utf-8", "replace")
    if "text/event-stream" in kind:
        for block in text.split("\n\n"):
            payload = "\n".join(line[5:].strip() for line in block.splitlines() if line.startswith("data:"))
            if payload:
                message = json.loads(payload)
                if "result" in message or "error" in message:
                    return message
        return None
    return json.loads(text) if text else None


class Bystander:
    """One session calling `demo__add` on a kept-alive connection."""

    def __init__(self, gateway: Gateway, token: str):
        self.gateway = gateway
        self.session_id = gateway.create_session(token)
        self.connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
        status, self.mcp_session = gateway.initialize(self.session_id, self.connection)
        if status != 200 or not self.mcp_session:
            raise RuntimeError(f"the bystander's initialize answered {status}")
        self.headers = {"accept": ACCEPT, "mcp-session-id": self.mcp_session, "mcp-protocol-version": "2025-11-25"}
        self.gateway.request(
            "POST", f"/session/{self.session_id}/mcp", {"jsonrpc": "2.0", "method": "notifications/initialized"}, self.headers, self.connection
        )
        self.calls = 0
        self.failures: list[str] = []
        self.reconnects = 0
        self.slowest = 0.0

    def call_once(self) -> str | None:
        """None when the call answered 1 + n = n + 1, else why not."""
        self.calls += 1
        n = self.calls
        started = time.monotonic()
        try:
            status, headers, data = self.gateway.request(
                "POST",
                f"/session/{self.session_id}/mcp",
                {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "demo__add", "arguments": {"a": 1, "b": n}}},
                self.headers,
                self.connection,
            )
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            self.reconnects += 1
            return f"connection failed: {type(error).__name__}"
        finally:
            self.slowest = max(self.slowest, time.monotonic() - started)
        if status != 200:
            return f"HTTP {status}: {data[:160]!r}"
        message = call_result(data, headers.get("content-type", ""))
        texts = " ".join(c.get("text", "") for c in ((message or {}).get("result") or {}).get("content", []))
        if str(n + 1) not in texts:
            return f"unexpected answer: {data[:160]!r}"
        return None

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.05):
            problem = self.call_once()
            if problem:
                self.failures.append(problem)


def flood_sessions(gateway: Gateway, token: str) -> tuple[list[str], dict[int, int]]:
    """Creates the flood sessions and initializes each one over and over."""
    sessions = [gateway.create_session(token) for _ in range(FLOOD_SESSIONS)]
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def one(session_id: str) -> None:
        try:
            status, _ = gateway.initialize(session_id, timeout=30)
        except (OSError, http.client.HTTPException):
            status = 0
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(one, [s for s in sessions for _ in range(INITIALIZES_PER_SESSION)]))
    return sessions, statuses


def half_sent_bodies(port: int, sessions: list[str]) -> tuple[list[socket.socket], int]:
    """Connections that send headers and the start of a body, never the rest,
    and how many could not even connect."""
    sockets, not_connected = [], 0
    for index in range(HALF_SENT_BODIES):
        target = "/create-session" if index % 4 == 0 else f"/session/{sessions[index % len(sessions)]}/mcp"
        if index % 2 == 0:
            head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: {ACCEPT}\r\ncontent-length: 100\r\n\r\n{{"
        else:
            head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: {ACCEPT}\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{{\r\n"
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(head.encode())
        except OSError:
            not_connected += 1
            continue
        sockets.append(s)
    return sockets, not_connected


def outcome_of(s: socket.socket) -> str:
    """What became of a half-sent body: '408', another status, 'closed' or 'open'."""
    s.setblocking(False)
    try:
        data = s.recv(256)
    except BlockingIOError:
        return "open"
    except OSError:
        return "closed"
    if not data:
        return "closed"
    parts = data.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 else "closed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mux", required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()

    # This process holds the flood's sockets, so it needs more than the gateway has.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = HALF_SENT_BODIES + 512
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    demo_port, mux_port = free_port(), free_port()
    registry = work / "registry.yaml"
    registry.write_text(f"servers:\n  demo:\n    url: http://127.0.0.1:{demo_port}/mcp\n    auth: {{ type: bearer }}\n")
    log = work / "mcp-mux.log"
    env = dict(os.environ)
    demo_script = Path(__file__).resolve().parent.parent / "demo_backend.py"
    demo = subprocess.Popen(
        [args.python, str(demo_script), "--host", "127.0.0.1", "--port", str(demo_port)],
        stdout=open(work / "demo.log", "ab"),
        stderr=subprocess.STDOUT,
        env={**env, "DEMO_BACKEND_TOKEN": token},
        start_new_session=True,
    )
    mux_command = (
        f"ulimit -n 1024 && exec {args.mux} serve --bind 127.0.0.1:{mux_port} --registry {registry}"
        f" --data-dir {work / 'data'} --body-timeout-secs {BODY_TIMEOUT_SECS}"
    )
    mux = subprocess.Popen(
        ["bash", "-c", mux_command],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        env={**env, "RUST_LOG": env.get("RUST_LOG", "info")},
        start_new_session=True,
    )
    try:
        wait_for(demo_port, "/mcp", demo, "the demo backend")
        wait_for(mux_port, "/healthz", mux, "mcp-mux")
        return run(mux, mux_port, token, log)
    finally:
        for child in (mux, demo):
            try:
                os.killpg(child.pid, 9)
            except ProcessLookupError:
                pass
            child.wait()


def run(mux: subprocess.Popen, port: int, token: str, log: Path) -> int:
    gateway = Gateway(port)
    limit = open(f"/proc/{mux.pid}/limits").read()
    open_file_line = next(line for line in limit.splitlines() if line.startswith("Max open files"))
    bystander = Bystander(gateway, token)
    for _ in range(5):
        if problem := bystander.call_once():
            raise RuntimeError(f"the bystander's call failed before the flood: {problem}")
    baseline = open_files(mux.pid)
    baseline_kinds = open_file_kinds(mux.pid)

    stop = threading.Event()
    peak = [baseline]

    def watch() -> None:
        while not stop.wait(0.1):
            try:
                peak[0] = max(peak[0], open_files(mux.pid))
            except OSError:
                return

    threads = [threading.Thread(target=bystander.run, args=(stop,), daemon=True), threading.Thread(target=watch, daemon=True)]
    for thread in threads:
        thread.start()

    started = time.monotonic()
    sessions, initialize_statuses = flood_sessions(gateway, token)
    sockets, not_connected = half_sent_bodies(port, sessions)
    flood_time = time.monotonic() - started

    # /healthz on a new connection while the half-sent bodies still hold theirs.
    healthz_started = time.monotonic()
    try:
        healthz = gateway.request("GET", "/healthz", timeout=20)[0]
    except (OSError, http.client.HTTPException) as error:
        healthz = type(error).__name__
    healthz_time = time.monotonic() - healthz_started

    # Every half-sent body is answered 408 or closed once the body timeout passes.
    time.sleep(BODY_TIMEOUT_SECS * 3)
    deadline = time.monotonic() + 30
    outcomes: dict[str, int] = {}
    pending = list(sockets)
    while pending and time.monotonic() < deadline:
        still = []
        for s in pending:
            outcome = outcome_of(s)
            if outcome == "open":
                still.append(s)
            else:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        pending = still
        if pending:
            time.sleep(0.5)
    outcomes["open after 30 s"] = len(pending)
    outcomes["not connected"] = not_connected
    stop.set()
    for thread in threads:
        thread.join(40)

    # The flood ends: its sessions are deleted, its sockets closed.
    for s in sockets:
        s.close()
    deletes = []
    for session_id in sessions:
        try:
            deletes.append(gateway.request("DELETE", f"/session/{session_id}")[0])
        except (OSError, http.client.HTTPException) as error:
            deletes.append(type(error).__name__)

    recovery_started = time.monotonic()
    try:
        fresh = Bystander(gateway, token)
        recovery_problem = fresh.call_once()
        fresh.connection.close()
    except (RuntimeError, OSError, http.client.HTTPException) as error:
        recovery_problem = str(error)
    recovery_time = time.monotonic() - recovery_started
    bystander.connection.close()

    settle_deadline = time.monotonic() + 30
    after = open_files(mux.pid)
    while after > baseline + KEPT_AFTER_A_BURST and time.monotonic() < settle_deadline:
        time.sleep(0.5)
        after = open_files(mux.pid)
    log_text = log.read_text(errors="replace")

    print(f"# mcp-mux: {open_file_line.split(None, 3)[-1].strip()} (max open files: soft hard unit)")
    print(f"# flood: {FLOOD_SESSIONS} sessions x {INITIALIZES_PER_SESSION} initialize, {HALF_SENT_BODIES} half-sent bodies, in {flood_time:.1f} s")
    print("# initialize answers: " + ", ".join(f"{status} x{n}" for status, n in sorted(initialize_statuses.items())))
    print("# half-sent bodies: " + ", ".join(f"{outcome} x{n}" for outcome, n in sorted(outcomes.items())))
    print(f"# /healthz during the flood: {healthz} in {healthz_time:.2f} s")
    print(f"# bystander: {bystander.calls} calls, {len(bystander.failures)} failed, slowest {bystander.slowest * 1000:.0f} ms")
    for problem in sorted(set(bystander.failures))[:5]:
        print(f"#   {problem}")
    print(f"# open files: baseline {baseline} ({baseline_kinds}), peak {peak[0]}, after {after} ({open_file_kinds(mux.pid)})")
    print(f"# after the flood: a new session answered a call in {recovery_time * 1000:.0f} ms")

    checks = [
        ("mcp-mux ran with 1024 open files", " 1024 " in f" {open_file_line.split(None, 3)[-1]} ", open_file_line),
        ("the flood's initializes were answered", sum(initialize_statuses.values()) == FLOOD_SESSIONS * INITIALIZES_PER_SESSION and 0 not in initialize_statuses, str(initialize_statuses)),
        ("every bystander call during the flood succeeded", bystander.calls > 20 and not bystander.failures, f"{len(bystander.failures)} of {bystander.calls} failed"),
        ("/healthz answered during the flood", healthz == 200, f"{healthz} after {healthz_time:.1f} s"),
        ("every half-sent body got 408", outcomes.get("408") == HALF_SENT_BODIES, str(outcomes)),
        ("the flood's sessions were deleted", all(status == 200 for status in deletes), str(deletes)),
        ("a new session answers a call after the flood", recovery_problem is None and recovery_time < 10.0, f"{recovery_problem} after {recovery_time:.2f} s"),
        ("open files returned to the baseline", after <= baseline + KEPT_AFTER_A_BURST, f"baseline {baseline}, after {after}"),
        ("the log never says Too many open files", "Too many open files" not in log_text, "see the log"),
        ("mcp-mux is still running", mux.poll() is None, f"exited with {mux.returncode}"),
    ]
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
