#!/usr/bin/env python3
"""Many clients call tools through one mcp-mux session while its backends and
mcp-mux itself are killed, stalled and restarted; then every call is
accounted for.

Started by scripts/chaos.sh, which installs the peers. Backends: the
reference server (@modelcontextprotocol/server-everything) and
scripts/demo_backend.py, whose `record` tool appends its key to a file: a
call with an effect, so that a call that ran twice shows. Clients speak raw
Streamable HTTP (JSON or SSE answers) with Python's standard library, each on
its own MCP session, which must survive mcp-mux restarts.

Each call ends one way:
  succeeded      the right result
  failed clearly a JSON-RPC error or an HTTP error with a message, or the
                 gateway refused the connection or dropped it (it was killed)
  lost           an answer that is no answer: 200 without the response, a
                 wrong result, an error without a message
  hung           no answer within --call-timeout seconds
and at the end no `record` key may have run twice. Prints `ok - ...` or
`not ok - ...` per property and a table of counts; exits 1 if any failed.

With --failover, a second demo backend (`demo-2`, writing its own record
file) is the registry `fallback` of `demo`, and the chaos is the primary
demo killed for a few seconds at a time under load: then no call may be
lost, no `record` may run twice across both instances, and the fallback
must have answered calls while the primary was down.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Child:
    """A process started in its own session, so that one signal reaches
    everything it spawned (npx, node)."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str], ready_url: str):
        self.name, self.argv, self.log, self.env, self.ready_url = name, argv, log, env, ready_url
        self.process: subprocess.Popen | None = None

    def start(self, wait: float = 60) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=self.env, start_new_session=True
            )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            if http_status(self.ready_url) is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {self.ready_url} within {wait} s")

    def signal(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        if self.process:
            self.process.wait()

    def terminate(self, grace: float = 12) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        if self.process:
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()


def http_status(url: str) -> int | None:
    host, port, path = split(url)
    try:
        connection = http.client.HTTPConnection(host, port, timeout=2)
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None


def split(url: str) -> tuple[str, int, str]:
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port), "/" + path


class Outcome:
    SUCCEEDED = "succeeded"
    FAILED = "failed clearly"
    LOST = "lost"
    HUNG = "hung"


def read_answer(response: http.client.HTTPResponse, request_id: int) -> dict | None:
    """The JSON-RPC response to `request_id` in a JSON or SSE answer, if any."""
    body = response.read()
    kind = response.getheader("content-type", "")
    if "text/event-stream" in kind:
        for block in body.decode("utf-8", "replace").split("\n\n"):
            data = "\n".join(line[5:].strip() for line in block.splitlines() if line.startswith("data:"))
            if not data:
                continue
            message = json.loads(data)
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return message
        return None
    if not body:
        return None
    message = json.loads(body)
    return message if isinstance(message, dict) else None


class Client:
    """One client with its own MCP session on the shared session URL."""

    def __init__(self, base: str, session_url: str, call_timeout: float):
        self.host, self.port, self.path = split(session_url)
        self.call_timeout = call_timeout
        self.mcp_session: str | None = None
        self.next_id = 1

    def post(self, message: dict) -> tuple[int, dict[str, str], bytes | dict | None]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.call_timeout)
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if self.mcp_session:
            headers["mcp-session-id"] = self.mcp_session
            headers["mcp-protocol-version"] = "2025-11-25"
        connection.request("POST", self.path, json.dumps(message), headers)
        response = connection.getresponse()
        answer = read_answer(response, message.get("id")) if "id" in message else response.read()
        result = response.status, {k.lower(): v for k, v in response.getheaders()}, answer
        connection.close()
        return result

    def initialize(self) -> bool:
        self.mcp_session = None
        try:
            status, headers, _ = self.post(
                {
                    "jsonrpc": "2.0",
                    "id": 0,
                    "method": "initialize",
                    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "chaos", "version": "1"}},
                }
            )
            if status != 200 or "mcp-session-id" not in headers:
                return False
            self.mcp_session = headers["mcp-session-id"]
            self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
            return True
        except (OSError, http.client.HTTPException, ValueError):
            return False

    def call(self, tool: str, arguments: dict, expected: str) -> tuple[str, str]:
        """Calls a tool once; returns (outcome, reason)."""
        request_id = self.next_id
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        try:
            status, _, answer = self.post(message)
        except socket.timeout:
            return Outcome.HUNG, f"no answer within {self.call_timeout} s"
        except ConnectionRefusedError:
            return Outcome.FAILED, "gateway down (connection refused)"
        except (ConnectionError, http.client.IncompleteRead, http.client.RemoteDisconnected) as error:
            return Outcome.FAILED, f"gateway connection broke ({type(error).__name__})"
        except (OSError, http.client.HTTPException) as error:
            return Outcome.FAILED, f"gateway connection failed ({type(error).__name__})"
        except ValueError:
            return Outcome.LOST, "an answer that is not JSON"
        if status == 404:
            # The MCP session is gone: a clear answer; the client opens another.
            self.initialize()
            return Outcome.FAILED, "HTTP 404 unknown MCP session"
        if not isinstance(answer, dict):
            return Outcome.LOST, f"HTTP {status} without a JSON-RPC response"
        error = answer.get("error")
        if isinstance(error, dict):
            text = error.get("message")
            if isinstance(text, str) and text:
                return Outcome.FAILED, summarize(f"HTTP {status}: {text}")
            return Outcome.LOST, f"HTTP {status}: an error without a message"
        result = answer.get("result") or {}
        texts = " ".join(c.get("text", "") for c in result.get("content", []) if isinstance(c, dict))
        if result.get("isError"):
            return Outcome.FAILED, summarize(f"tool error: {texts}")
        if expected in texts:
            return Outcome.SUCCEEDED, ""
        return Outcome.LOST, f"wrong result: {texts[:100]!r}"


def summarize(reason: str) -> str:
    """A failure reason without what varies from call to call."""
    for marker in (" paused for ", " within ", " (circuit"):
        if marker in reason:
            reason = reason.split(marker)[0] + marker.rstrip()
    return reason[:140]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mux", required=True)
    parser.add_argument("--node-modules", required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--call-timeout", type=float, default=60)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--failover", action="store_true", help="kill the demo backend under a fallback replica")
    args = parser.parse_args()

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    chaos_random = random.Random(seed)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    records = work / "records.txt"
    records.touch()
    fallback_records = work / "records-fallback.txt"
    fallback_records.touch()
    token = uuid.uuid4().hex
    everything_port, demo_port, mux_port = free_port(), free_port(), free_port()
    fallback_port = free_port()
    base = f"http://127.0.0.1:{mux_port}"
    registry = work / "registry.yaml"
    # Short timeouts, so that a stalled backend shows as a clear error well
    # before a client would call the call hung.
    registry.write_text(
        f"""servers:
  everything:
    url: http://127.0.0.1:{everything_port}/mcp
    timeout_ms: 5000
    circuit_breaker: {{ failure_threshold: 5, open_ms: 2000 }}
  demo:
    url: http://127.0.0.1:{demo_port}/mcp
    auth: {{ type: bearer }}
    timeout_ms: 5000
    circuit_breaker: {{ failure_threshold: 5, open_ms: 2000 }}
"""
    )
    if args.failover:
        # The primary gives up on itself fast, so that calls fail over
        # rather than wait for its restart.
        registry.write_text(
            registry.read_text()
            + f"""    fallback: [demo-2]
    retry: {{ initial_interval_ms: 50, max_interval_ms: 100, max_elapsed_ms: 200 }}
  demo-2:
    url: http://127.0.0.1:{fallback_port}/mcp
    auth: {{ type: bearer }}
    timeout_ms: 5000
"""
        )
    env = dict(os.environ)
    everything = Child(
        "everything",
        [str(Path(args.node_modules) / ".bin" / "mcp-server-everything"), "streamableHttp"],
        work / "everything.log",
        {**env, "PORT": str(everything_port)},
        f"http://127.0.0.1:{everything_port}/mcp",
    )
    demo_script = Path(__file__).resolve().parent.parent / "demo_backend.py"
    demo = Child(
        "demo",
        [args.python, str(demo_script), "--host", "127.0.0.1", "--port", str(demo_port)],
        work / "demo.log",
        {**env, "DEMO_BACKEND_TOKEN": token, "DEMO_RECORD_FILE": str(records)},
        f"http://127.0.0.1:{demo_port}/mcp",
    )
    fallback = Child(
        "demo-2",
        [args.python, str(demo_script), "--host", "127.0.0.1", "--port", str(fallback_port)],
        work / "demo-2.log",
        {**env, "DEMO_BACKEND_TOKEN": token, "DEMO_RECORD_FILE": str(fallback_records)},
        f"http://127.0.0.1:{fallback_port}/mcp",
    )
    mux = Child(
        "mcp-mux",
        # The clients share one session: no rate limit is set by default.
        # A one-second drain: each SIGTERM still drains, and the run keeps
        # its pace of stops and starts.
        [args.mux, "serve", "--bind", f"127.0.0.1:{mux_port}", "--registry", str(registry), "--data-dir", str(work / "data"),
         "--drain-seconds", "1"],
        work / "mcp-mux.log",
        {**env, "RUST_LOG": env.get("RUST_LOG", "info")},
        f"{base}/healthz",
    )
    children = [everything, demo] + ([fallback] if args.failover else []) + [mux]
    try:
        for child in children:
            child.start()
        connection = http.client.HTTPConnection("127.0.0.1", mux_port, timeout=10)
        connection.request(
            "POST",
            "/create-session",
            json.dumps({"servers": ["everything", "demo"], "credentials": {"demo": {"token": token}}}),
            {"content-type": "application/json"},
        )
        created = json.loads(connection.getresponse().read())
        session_url = base + created["mcp_endpoint"]
        record_files = [records, fallback_records]
        return run(args, chaos_random, seed, base, session_url, record_files, everything, demo, mux)
    finally:
        for child in children:
            child.kill()


def run(args, chaos_random, seed, base, session_url, record_files, everything, demo, mux) -> int:
    counts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    recorded_ok: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def worker(index: int) -> None:
        client = Client(base, session_url, args.call_timeout)
        deadline = time.monotonic() + 30
        while not client.initialize():
            if time.monotonic() > deadline:
                with lock:
                    counts["clients that never initialized"] += 1
                return
            time.sleep(0.2)
        calls = 0
        while not stop.is_set():
            calls += 1
            key = f"c{index}-{calls}-{uuid.uuid4().hex[:8]}"
            choice = calls % 3
            if choice == 0:
                outcome, reason = client.call("demo__record", {"key": key}, f"recorded {key}")
            elif choice == 1:
                outcome, reason = client.call("everything__echo", {"message": key}, key)
            else:
                outcome, reason = client.call("demo__echo", {"message": key}, key)
            with lock:
                counts[outcome] += 1
                if reason:
                    reasons[f"{outcome}: {reason}"] += 1
                if outcome == Outcome.SUCCEEDED and choice == 0:
                    recorded_ok.add(key)
            if outcome != Outcome.SUCCEEDED:
                time.sleep(0.05)

    events: collections.Counter[str] = collections.Counter()

    def chaos() -> None:
        actions = ["kill everything", "kill demo", "stall demo", "stall everything", "kill mcp-mux", "stop mcp-mux"]
        if args.failover:
            actions = ["kill demo for a while"]
        while not stop.wait(chaos_random.uniform(2, 5)):
            action = chaos_random.choice(actions)
            events[action] += 1
            if action == "kill demo for a while":
                demo.kill()
                time.sleep(chaos_random.uniform(1, 4))
                demo.start()
            elif action == "kill everything":
                everything.kill()
                time.sleep(chaos_random.uniform(0.2, 2))
                everything.start()
            elif action == "kill demo":
                demo.kill()
                time.sleep(chaos_random.uniform(0.2, 2))
                demo.start()
            elif action.startswith("stall"):
                target = demo if action.endswith("demo") else everything
                target.signal(signal.SIGSTOP)
                time.sleep(chaos_random.uniform(1, 7))
                target.signal(signal.SIGCONT)
            elif action == "kill mcp-mux":
                mux.kill()
                time.sleep(chaos_random.uniform(0.1, 1))
                mux.start()
            else:
                mux.terminate()
                mux.start()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.clients)]
    chaos_thread = threading.Thread(target=chaos, daemon=True)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    chaos_thread.start()
    time.sleep(args.duration)
    stop.set()
    chaos_thread.join(60)
    for thread in threads:
        thread.join(args.call_timeout + 10)
    stuck = sum(thread.is_alive() for thread in threads)
    elapsed = time.monotonic() - started

    # Everything is up again: every client must get through once more.
    recovered = Client(base, session_url, args.call_timeout)
    recovery = "no"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if recovered.mcp_session or recovered.initialize():
            a = recovered.call("everything__echo", {"message": "after"}, "after")
            b = recovered.call("demo__echo", {"message": "after"}, "after")
            if a[0] == b[0] == Outcome.SUCCEEDED:
                recovery = "yes"
                break
        time.sleep(0.5)

    lines = [line for path in record_files for line in path.read_text().splitlines()]
    answered_by_fallback = len(record_files[1].read_text().splitlines())
    ran_twice = sorted(key for key, n in collections.Counter(lines).items() if n > 1)
    never_ran = sorted(recorded_ok - set(lines))
    attempted = sum(counts[o] for o in (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.LOST, Outcome.HUNG))

    print(f"# chaos: {args.clients} clients for {elapsed:.0f} s, seed {seed}")
    print("# events: " + ", ".join(f"{name} x{n}" for name, n in sorted(events.items())))
    print(f"# calls attempted: {attempted}")
    for outcome in (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.LOST, Outcome.HUNG):
        print(f"#   {outcome:<15} {counts[outcome]}")
    print(f"# record calls that ran twice: {len(ran_twice)}")
    if args.failover:
        print(f"# record calls the fallback ran: {answered_by_fallback}")
    for reason, n in reasons.most_common(12):
        print(f"#   {n:>6}  {reason}")

    checks = [
        ("calls were made and most succeeded", attempted > 0 and counts[Outcome.SUCCEEDED] > attempted // 2, f"{counts[Outcome.SUCCEEDED]} of {attempted}"),
        ("no call was lost", counts[Outcome.LOST] == 0, f"{counts[Outcome.LOST]} lost"),
        ("no call hung", counts[Outcome.HUNG] == 0 and stuck == 0, f"{counts[Outcome.HUNG]} hung, {stuck} clients stuck"),
        ("no call with an effect ran twice", not ran_twice, f"ran twice: {ran_twice[:5]}"),
        ("every call reported as done ran", not never_ran, f"never ran: {never_ran[:5]}"),
        ("every client initialized", counts["clients that never initialized"] == 0, f"{counts['clients that never initialized']} did not"),
        ("both backends answer through the session afterwards", recovery == "yes", "no success within 30 s"),
    ]
    if args.failover:
        checks = [(f"failover: {name}", passed, why) for name, passed, why in checks]
        checks.append(
            ("failover: the fallback answered calls while the primary was down", answered_by_fallback > 0, "demo-2 ran no record call")
        )
    failed = 0
    for name, passed, why in checks:
        if passed:
            print(f"ok - chaos: {name}")
        else:
            failed += 1
            print(f"not ok - chaos: {name}: {why}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
