#!/usr/bin/env python3
"""Hostile floods against one mcp-mux, while a bystander session keeps
calling a tool and /healthz is probed every 100 ms.

Started by scripts/resources.sh after flood.py. mcp-mux runs with an admin
token and `--max-backend-connections 32` in front of scripts/demo_backend.py
(the bystander's backend) and of misbehaving backends served here (a small
Streamable HTTP server in this file: real servers do not misbehave on
demand). The floods, one after another:
  - pathological tool rules: deny globs such as `*L*L*L…*Q<n>`, as many as
    create-session takes, over a backend of 10,000 tools, three sessions
    listing at once;
  - a metrics-label flood: a backend that lists new 20,000-character tool
    names at every listing, and 2,020 calls of 20,000-character names;
  - a connection-budget hog: one session over two slow backends, with far
    more calls in flight than the budget;
  - a login burst: wrong admin tokens at the console login and at the
    bearer-token routes, as fast as 16 threads can send them.
Checks, each printed `ok - ...` or `not ok - ...`:
  - every bystander call succeeded;
  - /healthz answered every probe, each within a second;
  - the pathological rules were refused or listed, and the gateway moved on;
  - /metrics stayed small, and no larger after a second label flood (the
    resident memory is printed);
  - the hog's calls were answered or refused, none hung;
  - the login burst was slowed down, and the right token still got in;
  - mcp-mux is still running.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

from report import report

ADMIN_TOKEN = "hostile-admin-" + uuid.uuid4().hex
ACCEPT = "application/json, text/event-stream"
BIG_TOOLS = 10_000
RULE_PATTERNS = 1_300
LONG_NAME = 20_000
CHURN_LISTINGS = 40
CHURN_TOOLS = 50
LONG_CALLS = 2_020
MAX_BACKEND_CONNECTIONS = 32
HOG_CALLS = 96
SLOW_SECS = 2.0
LOGIN_ATTEMPTS = 3_000
BEARER_ATTEMPTS = 1_000
# What /metrics may weigh after the label flood, and how much more it may
# weigh after a second, identical one (counters of other series grow).
METRICS_LIMIT = 1_000_000
METRICS_SLACK = 1_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resident_bytes(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class HostileBackends(http.server.ThreadingHTTPServer):
    """Four MCP backends on one port, by path: /big lists 10,000 tools,
    /churn lists new 20,000-character names each time, /slow-a and /slow-b
    take SLOW_SECS over each call."""

    daemon_threads = True
    churned = 0
    lock = threading.Lock()


class BackendHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def answer(self, status: int, body: dict | None, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.answer(405, None, {"allow": "POST, DELETE"})

    def do_DELETE(self) -> None:
        self.answer(200, None)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        message = json.loads(self.rfile.read(length) or b"{}")
        if "id" not in message:
            self.answer(202, None)
            return
        kind = self.path.strip("/").split("/")[0]
        method = message.get("method")
        if method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": f"hostile-{kind}", "version": "1"},
            }
            headers = {"mcp-session-id": uuid.uuid4().hex}
        elif method == "tools/list":
            result, headers = {"tools": self.tools(kind)}, {}
        elif method == "tools/call":
            if kind.startswith("slow"):
                time.sleep(SLOW_SECS)
            result, headers = {"content": [{"type": "text", "text": "done"}]}, {}
        elif method == "ping":
            result, headers = {}, {}
        else:
            self.answer(200, {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no such method"}})
            return
        self.answer(200, {"jsonrpc": "2.0", "id": message["id"], "result": result}, headers)

    def tools(self, kind: str) -> list[dict]:
        schema = {"type": "object"}
        if kind == "big":
            return [{"name": f"tool_{'L' * 12}_{n}", "inputSchema": schema} for n in range(BIG_TOOLS)]
        if kind == "churn":
            with self.server.lock:
                self.server.churned += 1
                round_ = self.server.churned
            return [
                {"name": f"{round_}_{n}_" + "x" * LONG_NAME, "description": "new every time", "inputSchema": schema}
                for n in range(CHURN_TOOLS)
            ]
        return [{"name": "wait", "inputSchema": schema, "annotations": {"readOnlyHint": True}}]


class Gateway:
    def __init__(self, port: int, pid: int):
        self.port = port
        self.pid = pid

    def request(self, method: str, path: str, body=None, headers: dict | None = None, connection=None, timeout: float = 30):
        own = connection is None
        connection = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        all_headers = {"content-type": "application/json", "authorization": f"Bearer {ADMIN_TOKEN}", **(headers or {})}
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body)
        connection.request(method, path, data, all_headers)
        response = connection.getresponse()
        payload = response.read()
        if own:
            connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload

    def create_session(self, body: dict) -> tuple[int, dict]:
        status, _, data = self.request("POST", "/create-session", body)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, {"raw": data[:200].decode("utf-8", "replace")}

    def mcp(self, session_id: str, message: dict, mcp_session: str | None = None, connection=None, timeout: float = 60):
        headers = {"accept": ACCEPT, "mcp-protocol-version": "2025-11-25"}
        if mcp_session:
            headers["mcp-session-id"] = mcp_session
        return self.request("POST", f"/session/{session_id}/mcp", message, headers, connection, timeout)

    def open_mcp(self, session_id: str, connection=None) -> str:
        status, headers, data = self.mcp(
            session_id,
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}},
            connection=connection,
        )
        if status != 200 or "mcp-session-id" not in headers:
            raise RuntimeError(f"initialize answered {status}: {data[:200]!r}")
        mcp_session = headers["mcp-session-id"]
        self.mcp(session_id, {"jsonrpc": "2.0", "method": "notifications/initialized"}, mcp_session, connection)
        return mcp_session


def message_of(headers: dict, data: bytes) -> dict:
    text = data.decode("utf-8", "replace")
    if "text/event-stream" in headers.get("content-type", ""):
        for block in text.split("\n\n"):
            payload = "\n".join(line[5:].strip() for line in block.splitlines() if line.startswith("data:"))
            if payload:
                message = json.loads(payload)
                if "result" in message or "error" in message:
                    return message
        return {}
    return json.loads(text) if text else {}


class Watch:
    """The bystander's calls and the /healthz probes, in two threads."""

    def __init__(self, gateway: Gateway, demo_token: str):
        self.gateway = gateway
        status, created = gateway.create_session({"servers": ["demo"], "credentials": {"demo": {"token": demo_token}}})
        if status != 201:
            raise RuntimeError(f"the bystander's create-session answered {status}: {created}")
        self.session_id = created["session_id"]
        self.connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
        self.mcp_session = gateway.open_mcp(self.session_id, self.connection)
        self.calls = 0
        self.failures: list[str] = []
        self.probes = 0
        self.probe_failures: list[str] = []
        self.slowest_probe = 0.0
        self.stop = threading.Event()

    def call_once(self) -> str | None:
        self.calls += 1
        n = self.calls
        try:
            status, headers, data = self.gateway.mcp(
                self.session_id,
                {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "demo__add", "arguments": {"a": 1, "b": n}}},
                self.mcp_session,
                self.connection,
            )
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            return f"connection failed: {type(error).__name__}"
        if status != 200:
            return f"HTTP {status}: {data[:160]!r}"
        texts = " ".join(c.get("text", "") for c in (message_of(headers, data).get("result") or {}).get("content", []))
        return None if str(n + 1) in texts else f"unexpected answer: {data[:160]!r}"

    def bystander(self) -> None:
        while not self.stop.wait(0.05):
            if problem := self.call_once():
                self.failures.append(problem)

    def prober(self) -> None:
        while not self.stop.wait(0.1):
            self.probes += 1
            started = time.monotonic()
            try:
                status = self.gateway.request("GET", "/healthz", timeout=5)[0]
                problem = None if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as error:
                problem = type(error).__name__
            took = time.monotonic() - started
            self.slowest_probe = max(self.slowest_probe, took)
            if problem or took > 1.0:
                self.probe_failures.append(f"{problem or 'slow'} in {took:.2f} s")

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.bystander, daemon=True), threading.Thread(target=self.prober, daemon=True)]
        for thread in threads:
            thread.start()
        return threads


def pathological_rules(gateway: Gateway) -> tuple[str, bool]:
    """Creates sessions with the most pathological deny rules the gateway
    takes and lists them, three at once."""
    patterns = ["*L" * 12 + f"*Q{n}" for n in range(RULE_PATTERNS)]
    status, created = gateway.create_session({"servers": ["big"], "tools": {"big": {"deny": patterns}}})
    said = [f"{RULE_PATTERNS} patterns: {status} {created.get('message', '')[:120]}"]
    refused_well = status == 400 and "deny" in created.get("message", "")
    taken = RULE_PATTERNS if status == 201 else 0
    for count in (512, 256, 128, 64, 32, 16):
        if taken:
            break
        status, _ = gateway.create_session({"servers": ["big"], "tools": {"big": {"deny": patterns[:count]}}})
        if status == 201:
            taken = count
    said.append(f"the most taken: {taken}")

    def list_one(_: int) -> str:
        status, created = gateway.create_session({"servers": ["big"], "tools": {"big": {"deny": patterns[:taken]}}})
        if status != 201:
            return f"create {status}"
        started = time.monotonic()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=120)
            mcp_session = gateway.open_mcp(created["session_id"], connection)
            status, headers, data = gateway.mcp(created["session_id"], {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, mcp_session, connection, 120)
            tools = len((message_of(headers, data).get("result") or {}).get("tools", []))
        except (OSError, http.client.HTTPException, RuntimeError) as error:
            return f"failed: {error}"
        return f"{status}, {tools} tools in {time.monotonic() - started:.2f} s"

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        listed = list(pool.map(list_one, range(3)))
    said.append("three lists at once: " + "; ".join(listed))
    listed_well = taken > 0 and all(outcome.startswith("200, ") for outcome in listed)
    return " | ".join(said), (status == 201 or refused_well) and listed_well


def metrics_flood(gateway: Gateway) -> tuple[str, int, bool]:
    """Two identical rounds of listings of ever new long names and calls of
    long names, each round's sessions deleted at its end: /metrics must be
    as small after the second as after the first. The resident memory is
    printed, not judged: the allocator gives memory back when it will."""
    # Every route the rounds take, once first: each route's request
    # counters and latency histogram (a bounded set, the gateway's own
    # routes) then exist before the first size is taken.
    status, created = gateway.create_session({"servers": ["churn"]})
    if status == 201:
        gateway.request("DELETE", f"/session/{created['session_id']}")
    gateway.request("GET", "/metrics")
    sizes, resident = [], [resident_bytes(gateway.pid)]
    texts = []
    for _ in range(2):
        text, size = label_flood_round(gateway)
        texts.append(text)
        sizes.append(size)
        resident.append(resident_bytes(gateway.pid))
    text = (
        f"{texts[0]}; again /metrics {sizes[1]} bytes;"
        f" resident {resident[0] // 1024} -> {resident[1] // 1024} -> {resident[2] // 1024} KiB"
    )
    return text, max(sizes), sizes[1] <= sizes[0] + METRICS_SLACK


def label_flood_round(gateway: Gateway) -> tuple[str, int]:
    """Listings of ever new long names, then calls of long names."""
    sessions = []
    for _ in range(CHURN_LISTINGS):
        status, created = gateway.create_session({"servers": ["churn"]})
        if status != 201:
            continue
        sessions.append(created["session_id"])
        try:
            mcp_session = gateway.open_mcp(created["session_id"])
            gateway.mcp(created["session_id"], {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, mcp_session)
        except (OSError, http.client.HTTPException, RuntimeError):
            pass
    status, created = gateway.create_session({"servers": ["churn", "big"]})
    session_id = created["session_id"]
    sessions.append(session_id)
    mcp_session = gateway.open_mcp(session_id)
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def call(n: int) -> None:
        name = ("churn__" if n % 2 else "big__") + "y" * LONG_NAME + str(n)
        try:
            status = gateway.mcp(session_id, {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": name, "arguments": {}}}, mcp_session)[0]
        except (OSError, http.client.HTTPException):
            status = 0
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(call, range(LONG_CALLS)))
    size = len(gateway.request("GET", "/metrics")[2])
    for ended in sessions:
        gateway.request("DELETE", f"/session/{ended}")
    answers = ", ".join(f"{status} x{n}" for status, n in sorted(statuses.items()))
    return f"{CHURN_LISTINGS} listings of {CHURN_TOOLS} new names, {LONG_CALLS} long calls ({answers}); /metrics {size} bytes", size


def budget_hog(gateway: Gateway) -> tuple[str, bool]:
    """One session over two slow backends sends far more calls than the
    gateway's backend connections."""
    status, created = gateway.create_session({"servers": ["slow-a", "slow-b"]})
    session_id = created["session_id"]
    mcp_session = gateway.open_mcp(session_id)
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def call(n: int) -> None:
        name = "slow-a__wait" if n % 2 else "slow-b__wait"
        try:
            status, headers, data = gateway.mcp(session_id, {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": name, "arguments": {}}}, mcp_session, timeout=60)
            outcome = str(status) if status != 200 else ("200 done" if "done" in data.decode("utf-8", "replace") else "200 error")
        except (OSError, http.client.HTTPException) as error:
            outcome = type(error).__name__
        with lock:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    with concurrent.futures.ThreadPoolExecutor(HOG_CALLS) as pool:
        list(pool.map(call, range(HOG_CALLS)))
    answered = sum(n for outcome, n in outcomes.items() if outcome[:1].isdigit())
    text = ", ".join(f"{outcome} x{n}" for outcome, n in sorted(outcomes.items()))
    return f"{HOG_CALLS} calls at once: {text}", answered == HOG_CALLS


def login_burst(gateway: Gateway) -> tuple[str, bool, str]:
    """Wrong admin tokens as fast as they go; then the right one."""
    origin = f"http://127.0.0.1:{gateway.port}"
    # The login form's own token, as a browser would send it.
    page = gateway.request("GET", "/ui/login", headers={"authorization": ""})[2].decode("utf-8", "replace")
    marker = 'name="form_token" value="'
    form_token = page.split(marker, 1)[1].split('"', 1)[0] if marker in page else ""
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def attempt(n: int) -> None:
        try:
            if n < LOGIN_ATTEMPTS:
                body = urllib.parse.urlencode({"token": f"wrong-{n}", "form_token": form_token}).encode()
                status = gateway.request("POST", "/ui/login", body, {"content-type": "application/x-www-form-urlencoded", "origin": origin, "authorization": ""})[0]
                key = f"login {status}"
            else:
                status = gateway.request("GET", "/sessions", None, {"authorization": f"Bearer wrong-{n}"})[0]
                key = f"bearer {status}"
        except (OSError, http.client.HTTPException) as error:
            key = type(error).__name__
        with lock:
            statuses[key] = statuses.get(key, 0) + 1

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(attempt, range(LOGIN_ATTEMPTS + BEARER_ATTEMPTS)))
    took = time.monotonic() - started
    wrong_401 = statuses.get("login 401", 0) + statuses.get("bearer 401", 0)
    # The operator, from the same address, with the right token.
    back_in = None
    deadline = time.monotonic() + 90
    waited_from = time.monotonic()
    while time.monotonic() < deadline:
        if gateway.request("GET", "/sessions")[0] == 200:
            back_in = time.monotonic() - waited_from
            break
        time.sleep(1)
    text = ", ".join(f"{key} x{n}" for key, n in sorted(statuses.items()))
    operator = f"the right token got in after {back_in:.1f} s" if back_in is not None else "the right token was still refused after 90 s"
    return f"{LOGIN_ATTEMPTS + BEARER_ATTEMPTS} wrong tokens in {took:.1f} s: {text}", wrong_401 < (LOGIN_ATTEMPTS + BEARER_ATTEMPTS) // 10, operator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mux", required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    demo_token = uuid.uuid4().hex
    demo_port, mux_port = free_port(), free_port()
    backends = HostileBackends(("127.0.0.1", 0), BackendHandler)
    threading.Thread(target=backends.serve_forever, daemon=True).start()
    hostile = f"http://127.0.0.1:{backends.server_address[1]}"
    registry = work / "hostile-registry.yaml"
    registry.write_text(
        "servers:\n"
        f"  demo:\n    url: http://127.0.0.1:{demo_port}/mcp\n    auth: {{ type: bearer }}\n"
        f"  big:\n    url: {hostile}/big\n"
        f"  churn:\n    url: {hostile}/churn\n"
        f"  slow-a:\n    url: {hostile}/slow-a\n    timeout_ms: 30000\n"
        f"  slow-b:\n    url: {hostile}/slow-b\n    timeout_ms: 30000\n"
    )
    log = work / "mcp-mux-hostile.log"
    env = dict(os.environ)
    demo_script = Path(__file__).resolve().parent.parent / "demo_backend.py"
    demo = subprocess.Popen(
        [args.python, str(demo_script), "--host", "127.0.0.1", "--port", str(demo_port)],
        stdout=open(work / "demo-hostile.log", "ab"),
        stderr=subprocess.STDOUT,
        env={**env, "DEMO_BACKEND_TOKEN": demo_token},
        start_new_session=True,
    )
    mux = subprocess.Popen(
        [args.mux, "serve", "--bind", f"127.0.0.1:{mux_port}", "--registry", str(registry), "--data-dir", str(work / "data-hostile"),
         "--max-backend-connections", str(MAX_BACKEND_CONNECTIONS)],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        env={**env, "RUST_LOG": env.get("RUST_LOG", "info"), "MCP_MUX_ADMIN_TOKEN": ADMIN_TOKEN},
        start_new_session=True,
    )
    try:
        for port, process, what in ((demo_port, demo, "the demo backend"), (mux_port, mux, "mcp-mux")):
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{what} exited with {process.returncode}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{what} did not listen within 60 s")
                    time.sleep(0.1)
        return run(mux, Gateway(mux_port, mux.pid), demo_token)
    finally:
        backends.shutdown()
        for child in (mux, demo):
            try:
                os.killpg(child.pid, 9)
            except ProcessLookupError:
                pass
            child.wait()


def run(mux: subprocess.Popen, gateway: Gateway, demo_token: str) -> int:
    watch = Watch(gateway, demo_token)
    for _ in range(3):
        if problem := watch.call_once():
            raise RuntimeError(f"the bystander's call failed before the floods: {problem}")
    rss_before = resident_bytes(mux.pid)
    threads = watch.start()

    def phase(flood, *failed):
        """A flood's outcome; one that broke off is a failed outcome that says why."""
        try:
            return flood(gateway)
        except (OSError, http.client.HTTPException, RuntimeError, KeyError, ValueError) as error:
            return (f"broke off: {type(error).__name__}: {error}", *failed)

    rules_text, rules_ok = phase(pathological_rules, False)
    metrics_text, metrics_size, metrics_steady = phase(metrics_flood, METRICS_LIMIT, False)
    hog_text, hog_ok = phase(budget_hog, False)
    login_text, login_slowed, operator = phase(login_burst, False, "the burst broke off")
    rss_after = resident_bytes(mux.pid)
    watch.stop.set()
    for thread in threads:
        thread.join(40)

    print(f"# pathological rules: {rules_text}")
    print(f"# metrics labels: {metrics_text}")
    print(f"# budget hog: {hog_text}")
    print(f"# login burst: {login_text}; {operator}")
    print(f"# resident memory: {rss_before // 1024} KiB before, {rss_after // 1024} KiB after")
    print(f"# bystander: {watch.calls} calls, {len(watch.failures)} failed")
    for problem in sorted(set(watch.failures))[:5]:
        print(f"#   {problem}")
    print(f"# /healthz: {watch.probes} probes, slowest {watch.slowest_probe * 1000:.0f} ms, {len(watch.probe_failures)} failed or over 1 s")

    checks = [
        ("every bystander call during the hostile floods succeeded", watch.calls > 20 and not watch.failures, f"{len(watch.failures)} of {watch.calls} failed: {sorted(set(watch.failures))[:3]}"),
        ("/healthz answered every probe within a second", watch.probes > 20 and not watch.probe_failures, f"{watch.probe_failures[:5]}"),
        ("pathological rules were refused or listed", rules_ok, rules_text),
        ("/metrics stayed small under a label flood", metrics_size < METRICS_LIMIT, f"{metrics_size} bytes"),
        ("a second label flood left /metrics no larger", metrics_steady, metrics_text),
        ("a budget hog's calls were all answered", hog_ok, hog_text),
        ("a login burst was slowed down", login_slowed, login_text),
        ("the operator's right token got in after the burst", operator.startswith("the right token got in"), operator),
        ("mcp-mux is still running", mux.poll() is None, f"exited with {mux.returncode}"),
    ]
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
