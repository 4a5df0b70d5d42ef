#!/usr/bin/env python3
"""Measures what mcp-mux adds to an MCP call, beside nginx as the floor, and
prints the numbers; asserts nothing.

Started by scripts/bench.sh, which builds the release binaries and installs
wrk, nginx and valgrind. One run on one machine starts:
  - the fast backend (scripts/bench/backend.mjs, Node): plain JSON answers,
    no session; more of it for catalogues of 10, 1,000 and 10,000 tools, one
    whose `initialize` takes 100 ms, one whose tool asks for an
    `Mcp-Param-*` header, and one that is an OAuth issuer of JWTs;
  - the OAuth backend of scripts/oauth_load (--oauth-backend), when given;
  - nginx proxying to the fast backend over kept-alive connections, with one
    worker and with one per core (the floor: one loopback hop, no MCP work;
    the cheaper of the two is the floor a ratio is taken against);
  - mcp-mux with its defaults, and beside it gateways with an OAuth issuer,
    with the access log off, with traces on, sharing a PostgreSQL store, and
    under callgrind;
  - wrk, the load generator, with scripts/bench/call.lua (ids unique).
Every point runs --repeat times (2 by default); a cell shows the mean and
the spread (max − min over the mean) of those runs. The last table holds
each measure against its target.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
ACCEPT = "application/json, text/event-stream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port: int, process: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICK


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Processes:
    def __init__(self, work: Path):
        self.work = work
        self.children: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], port: int, extra_env: dict | None = None, timeout: float = 30) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "ab")
        # Each runs with its defaults: mcp-mux logs every request at info.
        env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        env.update(extra_env or {})
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.children.append(process)
        wait_until_up(port, process, name, timeout)
        return process

    def stop_all(self) -> None:
        for process in self.children:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def post(port: int, path: str, message: dict, session: str | None = None, timeout: float = 60, extra: dict | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"content-type": "application/json", "accept": ACCEPT, **(extra or {})}
    if session:
        headers["mcp-session-id"] = session
        headers["mcp-protocol-version"] = "2025-11-25"
    connection.request("POST", path, json.dumps(message), headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def jsonrpc(body: bytes) -> dict:
    text = body.decode()
    if text.startswith("event:") or text.startswith("data:") or text.startswith("id:"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
        return json.loads(data[-1])
    return json.loads(text)


STATELESS = "2026-07-28"


class Gateway:
    def __init__(self, port: int, process: subprocess.Popen, admin_token: str | None = None):
        self.port, self.process, self.admin_token = port, process, admin_token

    def create(self, body: dict) -> dict:
        extra = {"authorization": f"Bearer {self.admin_token}"} if self.admin_token else None
        status, _, answer = post(self.port, "/create-session", body, extra=extra)
        if status != 201:
            raise RuntimeError(f"create-session answered {status}: {answer[:200]!r}")
        return json.loads(answer)

    def create_session(self, servers: list[str]) -> str:
        return self.create({"servers": servers})["session_id"]

    def initialize(self, session_id: str, extra: dict | None = None) -> str:
        path = f"/session/{session_id}/mcp"
        message = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
        }
        status, headers, body = post(self.port, path, message, extra=extra)
        if status != 200 or "mcp-session-id" not in headers:
            raise RuntimeError(f"initialize answered {status}: {body[:200]!r}")
        mcp_session = headers["mcp-session-id"]
        post(self.port, path, {"jsonrpc": "2.0", "method": "notifications/initialized"}, mcp_session, extra=extra)
        return mcp_session


class Target:
    """Where `tools/call` goes: a port, a path, a tool name, an MCP session
    (or a stateless 2026-07-28 call), extra headers, and the processes whose
    CPU is counted."""

    def __init__(self, name: str, port: int, path: str, tool: str, session: str | None = None, pids: list[int] | None = None,
                 headers: dict | None = None, stateless: bool = False):
        self.name, self.port, self.path, self.tool, self.session, self.pids = name, port, path, tool, session, pids or []
        self.headers, self.stateless = dict(headers or {}), stateless
        if stateless:
            self.headers.update({"mcp-protocol-version": STATELESS, "mcp-method": "tools/call", "mcp-name": tool})

    def message(self, id) -> dict:
        params = {"name": self.tool, "arguments": {"message": "hello"}}
        if self.stateless:
            params["_meta"] = {"io.modelcontextprotocol/protocolVersion": STATELESS, "io.modelcontextprotocol/clientCapabilities": {}}
        return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}

    def body(self) -> str:
        """The message, its id left for call.lua to fill in per request."""
        return json.dumps(self.message("__ID__"))

    def check(self) -> None:
        status, _, body = post(self.port, self.path, self.message(1), self.session, extra=self.headers)
        answer = jsonrpc(body)
        text = (answer.get("result") or {}).get("content", [{}])[0].get("text")
        if status != 200 or text != "hello":
            raise RuntimeError(f"{self.name}: tools/call answered {status}: {body[:300]!r}")


class Run:
    """One wrk run's numbers."""

    def __init__(self, p50: float, p90: float, p99: float, rate: float, errors: int, cpu_per_call: float | None):
        self.p50, self.p90, self.p99, self.rate, self.errors, self.cpu_per_call = p50, p90, p99, rate, errors, cpu_per_call


def wrk(target: Target, connections: int, duration: float, body: str | None = None, path: str | None = None) -> Run:
    threads = min(connections, 2)
    env = {
        **os.environ,
        "WRK_BODY": body or target.body(),
        "WRK_SESSION": target.session or "",
        "WRK_HEADERS": "\n".join(f"{name}: {value}" for name, value in target.headers.items()),
    }
    url = f"http://127.0.0.1:{target.port}{path or target.path}"
    before = cpu_seconds(target.pids) if target.pids else None
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s", "-s", str(HERE / "call.lua"), url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = cpu_seconds(target.pids) if target.pids else None
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    p50, p90, p99, requests, duration_us, errors = (int(x) for x in line.split()[1:])
    cpu = (after - before) / requests * 1e6 if before is not None and requests else None
    return Run(p50, p90, p99, requests / (duration_us / 1e6), errors, cpu)


def repeated(times: int, measure) -> list:
    return [measure() for _ in range(times)]


def mean(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else float("nan")


def cell(values: list[float], digits: int = 0, unit: str = "") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    average = statistics.fmean(values)
    spread = (max(values) - min(values)) / abs(average) * 100 if average else 0
    return f"{average:,.{digits}f}{unit} ±{spread:.0f}%"


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def nginx_config(work: Path, port: int, name: str, upstreams: list[int], workers: str = "auto") -> Path:
    config = work / f"{name}.conf"
    servers = " ".join(f"server 127.0.0.1:{upstream};" for upstream in upstreams)
    config.write_text(
        f"""worker_processes {workers};
pid {work}/{name}.pid;
error_log {work}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    upstream backend {{ {servers} keepalive 128; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""
    )
    return config


def nginx_pids(master: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [master, *map(int, children)]


# Callgrind: instructions the gateway executes per call, all its threads
# counted (valgrind runs them one at a time). Steady on a shared machine,
# unlike timings.
CALLGRIND_CALLS = 400


def callgrind_totals(pid: int, work: Path) -> int:
    """Dumps the counters of the gateway under callgrind and returns the
    instructions since they were last zeroed."""
    before = set(work.glob(f"callgrind.{pid}*"))
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for dump in set(work.glob(f"callgrind.{pid}*")) - before:
            text = dump.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith(("totals:", "summary:")):
                    return int(line.split()[1])
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no dump")


def instructions_per_call(target: Target, work: Path, calls: int = CALLGRIND_CALLS) -> float:
    """Instructions per `tools/call`, one call after another on one kept-alive
    connection, ids unique."""
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=120)
    headers = {"content-type": "application/json", "accept": ACCEPT, **target.headers}
    if target.session:
        headers["mcp-session-id"] = target.session
        headers["mcp-protocol-version"] = "2025-11-25"

    def call(n: int) -> None:
        connection.request("POST", target.path, json.dumps(target.message(f"c{n}")), headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{target.name}: tools/call answered {response.status}: {body[:200]!r}")

    for n in range(50):
        call(n)
    pid = target.pids[0]
    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
    for n in range(calls):
        call(1000 + n)
    total = callgrind_totals(pid, work)
    connection.close()
    return total / calls


SECTIONS = ("calls", "growth", "features", "initialize", "memory", "create-session", "nodes", "callgrind")
ENCRYPTION_KEY = {"MCP_MUX_ENCRYPTION_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mux", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--duration", type=float, default=3, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per point")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/test", help="a PostgreSQL server for create-session and nodes; databases of their own are made there")
    parser.add_argument("--oauth-backend", help="scripts/oauth_load/oidc_backend.mjs, installed (scripts/oauth_load/install.sh), for the OAuth backend's row")
    parser.add_argument("--stack-floor", help="the directory of scripts/bench/stack_floor's binaries, built in release mode: the chosen stack with no MCP work, beside nginx")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run this section alone (repeatable); all by default")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    processes = Processes(work)
    try:
        return Bench(args, work, processes).run()
    finally:
        processes.stop_all()


class Bench:
    def __init__(self, args, work: Path, processes: Processes):
        self.args, self.work, self.processes = args, work, processes
        self.d, self.n = args.duration, args.repeat
        self.ports: dict[str, int] = {}
        self.summary: list[list[str]] = []
        self.node_gateways: list[Gateway] | None = None

    def port(self, name: str) -> int:
        if name not in self.ports:
            self.ports[name] = free_port()
        return self.ports[name]

    def start_backends(self) -> None:
        backend = ["node", str(HERE / "backend.mjs")]
        start = self.processes.start
        start("backend", [*backend, "--port", str(self.port("fast"))], self.port("fast"))
        for size in (10, 1000, 10000):
            start(f"backend-{size}", [*backend, "--port", str(self.port(f"cat{size}")), "--tools", str(size)], self.port(f"cat{size}"))
        start("backend-slow", [*backend, "--port", str(self.port("slow")), "--initialize-delay-ms", "100"], self.port("slow"))
        start("backend-param", [*backend, "--port", str(self.port("param")), "--param-header", "1"], self.port("param"))
        start("issuer", [*backend, "--port", str(self.port("issuer")), "--issuer", "1"], self.port("issuer"))
        self.oauth_backend = None
        if self.args.oauth_backend:
            as_port, mcp_port = self.port("oidc-as"), self.port("oidc-mcp")
            process = start(
                "oauth-backend", ["node", self.args.oauth_backend], mcp_port,
                {"AS_PORT": str(as_port), "MCP_PORT": str(mcp_port), "ACCESS_TTL": "3600"},
            )
            wait_until_up(as_port, process, "the OAuth backend's authorization server")
            self.oauth_backend = f"http://127.0.0.1:{mcp_port}/mcp"

        fast = f"http://127.0.0.1:{self.port('fast')}"
        servers = {f"fast{i}": {"url": f"{fast}/s{i}"} for i in range(1, 17)}
        servers.update({f"cat{size}": {"url": f"http://127.0.0.1:{self.port(f'cat{size}')}/mcp"} for size in (10, 1000, 10000)})
        servers.update({f"slow{i}": {"url": f"http://127.0.0.1:{self.port('slow')}/s{i}"} for i in range(1, 17)})
        servers["param"] = {"url": f"http://127.0.0.1:{self.port('param')}/mcp"}
        if self.oauth_backend:
            servers["files"] = {"url": self.oauth_backend, "auth": "{ type: oauth }"}
        self.registry = self.work / "registry.yaml"
        self.registry.write_text(
            'tool_separator: "__"\nservers:\n'
            + "".join(f"  {name}:\n" + "".join(f"    {key}: {value}\n" for key, value in server.items()) for name, server in servers.items())
        )

    def mux_argv(self, name: str, port: int, extra: list[str]) -> list[str]:
        return [self.args.mux, "serve", "--bind", f"127.0.0.1:{port}", "--registry", str(self.registry), "--data-dir", str(self.work / name), *extra]

    def start_mux(self, name: str, extra: list[str] | None = None, env: dict | None = None, wrapper: list[str] | None = None) -> Gateway:
        port = self.port(name)
        process = self.processes.start(
            name, [*(wrapper or []), *self.mux_argv(name, port, extra or [])], port, {**ENCRYPTION_KEY, **(env or {})}, 300 if wrapper else 30
        )
        return Gateway(port, process)

    def start_nginx(self, name: str, upstreams: list[int], workers: str = "auto") -> subprocess.Popen:
        port = self.port(name)
        config = nginx_config(self.work, port, name, upstreams, workers)
        return self.processes.start(name, ["nginx", "-p", str(self.work), "-c", str(config), "-g", "daemon off;"], port)

    def run(self) -> int:
        self.start_backends()
        self.mux = self.start_mux("mcp-mux")
        self.one = self.mux.create_session(["fast1"])
        self.one_mcp = self.mux.initialize(self.one)
        print(f"# machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}, {platform.processor() or platform.machine()}")
        print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}; wrk {self.d:g} s per run, {self.n} runs per point, unique request ids; cells: mean ±spread (max−min over mean)")
        print()
        only = set(self.args.only or SECTIONS)
        for section in SECTIONS:
            if section in only:
                getattr(self, section.replace("-", "_"))()
        if self.summary:
            print("## against the targets")
            print()
            table(["measure", "mcp-mux", "target", "met"], self.summary)
        return 0

    def target_on(self, gateway: Gateway, name: str, servers: list[str], tool: str) -> Target:
        session = gateway.create_session(servers)
        target = Target(name, gateway.port, f"/session/{session}/mcp", tool, gateway.initialize(session), [gateway.process.pid])
        target.check()
        return target

    def calls(self) -> None:
        """tools/call straight to the backend, through nginx with one worker
        and with one per core, and through mcp-mux."""
        fast = self.port("fast")
        nginx_one = self.start_nginx("nginx-1", [fast], "1")
        nginx_auto = self.start_nginx("nginx-auto", [fast], "auto")
        floors = [
            Target("nginx, 1 worker", self.port("nginx-1"), "/mcp", "echo", pids=nginx_pids(nginx_one.pid)),
            Target("nginx, auto", self.port("nginx-auto"), "/mcp", "echo", pids=nginx_pids(nginx_auto.pid)),
        ]
        mux = Target("mcp-mux", self.mux.port, f"/session/{self.one}/mcp", "fast1__echo", self.one_mcp, [self.mux.process.pid])
        targets = [Target("backend direct", fast, "/mcp", "echo"), *floors, *self.stack_floors(fast), mux]
        for target in targets:
            target.check()
        print("## tools/call, one session over one backend")
        print()
        print("The floor at each concurrency is the nginx with the lower CPU per call; the ratios are against it."
              " The stack's rows, when built, forward each body to the backend with nothing else done.")
        print()
        rows = []
        for connections in (1, 16, 32, 64):
            runs = {t.name: repeated(self.n, lambda t=t: wrk(t, connections, self.d)) for t in targets}
            direct = mean(r.p50 for r in runs["backend direct"])
            floor = min(floors, key=lambda f: mean(r.cpu_per_call for r in runs[f.name]))
            floor_runs = runs[floor.name]
            for target in targets:
                these = runs[target.name]
                added = [r.p50 - direct for r in these] if target.name != "backend direct" else [None]
                rate_ratio = mean(r.rate for r in these) / mean(r.rate for r in floor_runs)
                cpu = [r.cpu_per_call for r in these]
                cpu_ratio = mean(cpu) / mean(r.cpu_per_call for r in floor_runs) if target.pids else None
                rows.append(
                    [
                        str(connections),
                        target.name + (" (floor)" if target is floor else ""),
                        cell([r.p50 for r in these], unit=" µs"),
                        cell([r.p99 for r in these], unit=" µs"),
                        cell([r.rate for r in these]),
                        cell(added, unit=" µs"),
                        f"{rate_ratio:.2f}×",
                        cell(cpu, 1, " µs"),
                        f"{cpu_ratio:.2f}×" if cpu_ratio is not None else "",
                        str(sum(r.errors for r in these)),
                    ]
                )
            if connections == 1:
                added_c1 = mean(r.p50 for r in runs["mcp-mux"]) - direct
                floor_added = mean(r.p50 for r in floor_runs) - direct
                self.summary.append(["added p50 at c1, over the backend direct", f"{added_c1:+,.0f} µs (nginx: {floor_added:+,.0f} µs)", "≤ +50 µs", yes(added_c1 <= 50)])
            if connections == 32:
                cpu_ratio = mean(r.cpu_per_call for r in runs["mcp-mux"]) / mean(r.cpu_per_call for r in floor_runs)
                rate_ratio = mean(r.rate for r in runs["mcp-mux"]) / mean(r.rate for r in floor_runs)
                both = ", ".join(f"{f.name} {mean(r.cpu_per_call for r in runs[f.name]):.1f} µs" for f in floors)
                self.summary.append(["CPU per call at c32 ÷ the floor's", f"{cpu_ratio:.2f}× ({mean(r.cpu_per_call for r in runs['mcp-mux']):.1f} µs; {both})", "≤ 2×", yes(cpu_ratio <= 2)])
                self.summary.append(["calls/s at c32 ÷ the floor's", f"{rate_ratio:.2f}× ({mean(r.rate for r in runs['mcp-mux']):,.0f} against {mean(r.rate for r in floor_runs):,.0f})", "≥ 0.8×", yes(rate_ratio >= 0.8)])
        table(["c", "target", "p50", "p99", "calls/s", "added p50", "calls/s ÷ floor", "CPU/call", "CPU ÷ floor", "errors"], rows)

    def stack_floors(self, backend: int, wrapper: list[str] | None = None, suffix: str = "") -> list[Target]:
        """The chosen stack with no MCP work (scripts/bench/stack_floor): what
        the HTTP server and client alone cost, beside nginx."""
        if not self.args.stack_floor:
            return []
        targets = []
        for binary, name in (("actix_floor", "actix-web and hyper-util, nothing else"), ("hyper_floor", "hyper alone, 1 thread, nothing else")):
            port = self.port(binary + suffix)
            process = self.processes.start(
                binary + suffix, [*(wrapper or []), str(Path(self.args.stack_floor) / binary), f"127.0.0.1:{port}", f"http://127.0.0.1:{backend}/mcp"],
                port, timeout=300 if wrapper else 30,
            )
            targets.append(Target(name, port, "/mcp", "echo", pids=[process.pid]))
        return targets

    def growth(self) -> None:
        """CPU per call as a session grows in backends and tools, and beside
        many live MCP sessions; tools/list from the kept list."""
        print("## how the cost grows (mcp-mux; tools/call at c1 and c16, tools/list at c1)")
        print()
        list_body = json.dumps({"jsonrpc": "2.0", "id": "__ID__", "method": "tools/list"})
        rows = []
        cpu: dict[str, float] = {}
        for label, chosen, tool in (
            ("1 backend", ["fast1"], "fast1__echo"),
            ("4 backends", [f"fast{i}" for i in range(1, 5)], "fast1__echo"),
            ("16 backends", [f"fast{i}" for i in range(1, 17)], "fast1__echo"),
            ("10 tools", ["cat10"], "cat10__echo"),
            ("1,000 tools", ["cat1000"], "cat1000__echo"),
            ("10,000 tools", ["cat10000"], "cat10000__echo"),
        ):
            target = self.target_on(self.mux, label, chosen, tool)
            c1 = repeated(self.n, lambda: wrk(target, 1, self.d))
            c16 = repeated(self.n, lambda: wrk(target, 16, self.d))
            # The first tools/list fills the kept list; the measured ones are served from it.
            wrk(target, 1, 1, body=list_body)
            listing = repeated(self.n, lambda: wrk(target, 1, self.d, body=list_body))
            cpu[label] = mean(r.cpu_per_call for r in c16)
            rows.append([label, cell([r.p50 for r in c1], unit=" µs"), cell([r.rate for r in c16]), cell([r.cpu_per_call for r in c16], 1, " µs"), cell([r.p50 for r in listing], unit=" µs")])
            if label == "10,000 tools":
                listed = mean(r.p50 for r in listing) / 1000
                self.summary.append(["tools/list over 10,000 tools, from the kept list (p50, c1)", f"{listed:.2f} ms", "< 5 ms", yes(listed < 5)])
        one = Target("one session", self.mux.port, f"/session/{self.one}/mcp", "fast1__echo", self.one_mcp, [self.mux.process.pid])
        alone = repeated(self.n, lambda: wrk(one, 16, self.d))
        live = open_live_mcp_sessions(self.mux, ["fast1", "fast2"])
        c1 = repeated(self.n, lambda: wrk(one, 1, self.d))
        busy = repeated(self.n, lambda: wrk(one, 16, self.d))
        cpu["1 live MCP session"] = mean(r.cpu_per_call for r in alone)
        cpu[f"{live + 1:,} live MCP sessions"] = mean(r.cpu_per_call for r in busy)
        rows.append([f"beside {live:,} other live MCP sessions", cell([r.p50 for r in c1], unit=" µs"), cell([r.rate for r in busy]), cell([r.cpu_per_call for r in busy], 1, " µs"), ""])
        table(["session", "tools/call p50 (c1)", "tools/call calls/s (c16)", "CPU/call (c16)", "tools/list p50 (c1)"], rows)
        for what, labels in (
            ("1 to 16 backends", ["1 backend", "4 backends", "16 backends"]),
            ("10 to 10,000 tools", ["10 tools", "1,000 tools", "10,000 tools"]),
            (f"1 to {live + 1:,} live MCP sessions", ["1 live MCP session", f"{live + 1:,} live MCP sessions"]),
        ):
            values = [cpu[label] for label in labels]
            varies = (max(values) - min(values)) / min(values) * 100
            print(f"CPU per call (c16), {what}: {', '.join(f'{v:.1f}' for v in values)} µs, varies {varies:.0f} %")
            self.summary.append([f"CPU per call from {what}", f"varies {varies:.0f} %", "≤ 10 %", yes(varies <= 10)])
        print()

    def feature_targets(self, gateway: Gateway) -> list[Target]:
        """The plain call, then a call using each feature on the hot path, on
        one gateway started with an OAuth issuer and an admin token."""
        pid = [gateway.process.pid]
        plain = self.target_on(gateway, "plain call", ["fast1"], "fast1__echo")
        targets = [plain]

        issuer = f"http://127.0.0.1:{self.port('issuer')}"
        created = gateway.create({"servers": ["fast1"], "access": "oauth", "owner": {"issuer": issuer, "subject": "bench"}})
        token = json.loads(urllib.request.urlopen(f"{issuer}/mint?aud={urllib.parse.quote(created['mcp_url'])}&sub=bench").read())["access_token"]
        signed_in = {"authorization": f"Bearer {token}"}
        path = f"/session/{created['session_id']}/mcp"
        targets.append(Target("signed-in user's session (JWT, key cache warm)", gateway.port, path, "fast1__echo",
                              gateway.initialize(created["session_id"], signed_in), pid, signed_in))

        if self.oauth_backend:
            created = gateway.create({"servers": ["files"]})
            # Signing in: the authorization server approves at once and sends
            # the browser back to mcp-mux, which redeems the code.
            urllib.request.urlopen(created["authorization"]["files"]["url"]).read()
            session = created["session_id"]
            targets.append(Target("OAuth backend, fresh access token", gateway.port, f"/session/{session}/mcp", "files__echo", gateway.initialize(session), pid))

        rules = {
            "deny": [f"tool_{n}*" for n in range(900, 950)],
            "rename": {f"tool_{n}": f"renamed_{n}" for n in range(1, 26)},
            "description": {f"tool_{n}": f"Tool {n}, described again." for n in range(26, 51)},
        }
        session = gateway.create({"servers": ["cat1000"], "tools": {"cat1000": rules}})["session_id"]
        targets.append(Target("100 rules over 1,000 tools", gateway.port, f"/session/{session}/mcp", "cat1000__echo", gateway.initialize(session), pid))

        session = gateway.create_session(["fast1"])
        targets.append(Target("stateless (2026-07-28) call", gateway.port, f"/session/{session}/mcp", "fast1__echo", pids=pid, stateless=True))
        session = gateway.create_session(["param"])
        targets.append(Target("stateless call, Mcp-Param-* checked", gateway.port, f"/session/{session}/mcp", "param__echo", pids=pid,
                              headers={"mcp-param-message": "hello"}, stateless=True))
        for target in targets:
            target.check()
        return targets

    def gateway_with_features(self, name: str, env: dict | None = None, extra: list[str] | None = None, wrapper: list[str] | None = None) -> Gateway:
        gateway = self.start_mux(
            name, ["--oauth-issuer", f"http://127.0.0.1:{self.port('issuer')}", *(extra or [])],
            {"MCP_MUX_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}, wrapper,
        )
        gateway.admin_token = ADMIN_TOKEN
        return gateway

    def tracing_env(self) -> dict:
        # Spans go to the fast backend, which drops them; one trace in ten kept.
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.port('fast')}",
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        }

    def features(self) -> None:
        """What each feature on the hot path adds to a call."""
        gateway = self.gateway_with_features("mux-features")
        targets = self.feature_targets(gateway)
        quiet = self.start_mux("mux-quiet", ["--access-log", "false"])
        traced = self.start_mux("mux-traced", env=self.tracing_env())
        targets.append(self.target_on(quiet, "access log off (--access-log false)", ["fast1"], "fast1__echo"))
        targets.append(self.target_on(traced, "access log at info, tracing on (1 in 10 sampled)", ["fast1"], "fast1__echo"))
        nodes = self.start_nodes()
        if nodes:
            local, passed = self.node_targets(nodes)
            targets += [local, passed]
        print("## features on the hot path (mcp-mux; plain call: access log at info, tracing off)")
        print()
        rows = []
        measured = {}
        for target in targets:
            c1 = repeated(self.n, lambda: wrk(target, 1, self.d))
            c16 = repeated(self.n, lambda: wrk(target, 16, self.d))
            measured[target.name] = (c1, c16)
        plain_c1, plain_c16 = measured["plain call"]
        for target in targets:
            c1, c16 = measured[target.name]
            base_c1, base_c16 = (plain_c1, plain_c16)
            if nodes and target.name == passed.name:
                base_c1, base_c16 = measured[local.name]
            added = mean(r.cpu_per_call for r in c16) - mean(r.cpu_per_call for r in base_c16)
            rows.append([
                target.name,
                cell([r.p50 for r in c1], unit=" µs"),
                cell([r.cpu_per_call for r in c1], 1, " µs"),
                cell([r.cpu_per_call for r in c16], 1, " µs"),
                "—" if target.name == "plain call" else f"{added:+.1f} µs",
                str(sum(r.errors for r in c1 + c16)),
            ])
        if not self.oauth_backend:
            rows.append(["OAuth backend", "skipped: no --oauth-backend", "", "", "", ""])
        if not nodes:
            rows.append(["cross-node call", "skipped: no PostgreSQL at --database-url", "", "", "", ""])
        table(["call", "p50 (c1)", "CPU/call (c1)", "CPU/call (c16)", "CPU added (c16)", "errors"], rows)
        print("CPU added is against the plain call, and for the call passed between nodes against the same call on the node that holds it (CPU of both nodes).")
        print()

    def initialize(self) -> None:
        # initialize fan-out over backends that each take 100 ms: the median
        # initialize through mcp-mux against the median of the slow backend's
        # own, each on a new connection as a client opens one.
        print("## initialize over backends that each take 100 ms")
        print()
        message = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
        }

        def timed(port: int, path: str) -> float:
            started = time.perf_counter()
            status, _, body = post(port, path, message)
            if status != 200:
                raise RuntimeError(f"initialize answered {status}: {body[:200]!r}")
            return (time.perf_counter() - started) * 1000

        attempts = 10
        rows = []
        for count in (1, 4, 16):
            session = self.mux.create_session([f"slow{i}" for i in range(1, count + 1)])
            added = []
            for _ in range(self.n):
                slowest = statistics.median(timed(self.port("slow"), "/s1") for _ in range(attempts))
                through = statistics.median(timed(self.mux.port, f"/session/{session}/mcp") for _ in range(attempts))
                added.append(through - slowest)
            rows.append([str(count), cell(added, 1, " ms")])
            if count == 16:
                self.summary.append(["initialize over 16 backends of 100 ms, over the slowest", f"+{mean(added):.1f} ms", "≤ +5 ms", yes(mean(added) <= 5)])
        table(["backends", f"added over the slowest (median of {attempts}, per run)"], rows)

    def memory(self) -> None:
        # Memory, on a gateway of its own: stored sessions, then live MCP
        # sessions over two backends.
        fresh = self.start_mux("mux-memory")
        fresh.create_session(["fast1"])
        before = resident_bytes(fresh.process.pid)
        stored = 5000
        for _ in range(stored):
            fresh.create_session(["fast1"])
        per_stored = (resident_bytes(fresh.process.pid) - before) / stored
        before = resident_bytes(fresh.process.pid)
        live = open_live_mcp_sessions(fresh, ["fast1", "fast2"])
        per_live = (resident_bytes(fresh.process.pid) - before) / live
        print("## memory (resident, mcp-mux)")
        print()
        table(["what", "per item"], [[f"stored session ({stored:,})", f"{per_stored:,.0f} B"], [f"live MCP session over two backends ({live:,})", f"{per_live / 1024:,.1f} KiB"]])

    def create_session(self) -> None:
        # create-session with 8 clients, on SQLite and on PostgreSQL.
        print("## create-session, 8 clients")
        print()
        rows = []
        create_body = json.dumps({"servers": ["fast1"]})
        stores = [("SQLite", "mux-sqlite", [])]
        postgres = postgres_database(self.args.database_url) if shutil.which("psql") else None
        if postgres:
            stores.append(("PostgreSQL", "mux-pg", ["--database-url", postgres]))
        for label, name, extra in stores:
            gateway = self.start_mux(name, ["--max-sessions", "10000000", *extra])
            target = Target(label, gateway.port, "/create-session", "", pids=[gateway.process.pid])
            runs = repeated(self.n, lambda: wrk(target, 8, self.d, body=create_body))
            rows.append([label, cell([r.rate for r in runs]), cell([r.p50 for r in runs], unit=" µs"), cell([r.cpu_per_call for r in runs], 1, " µs"), str(sum(r.errors for r in runs))])
        if len(stores) == 1:
            rows.append(["PostgreSQL", "skipped: no server at --database-url", "", "", ""])
        table(["store", "sessions/s", "p50", "CPU/session", "errors"], rows)

    def start_nodes(self) -> list[Gateway] | None:
        """Three nodes on one fresh PostgreSQL database, started once."""
        if self.node_gateways is None:
            postgres = postgres_database(self.args.database_url, "mcp_mux_bench_nodes") if shutil.which("psql") else None
            if not postgres:
                return None
            self.node_gateways = [self.start_mux(f"node{index + 1}", ["--database-url", postgres]) for index in range(3)]
            time.sleep(3)  # every node has heard the others' heartbeat
        return self.node_gateways

    def node_targets(self, nodes: list[Gateway]) -> tuple[Target, Target]:
        """A call on node 1, which holds its MCP session, and the same call
        sent to node 2, which passes it on."""
        session = nodes[0].create_session(["fast1"])
        held = nodes[0].initialize(session)
        path = f"/session/{session}/mcp"
        both = [nodes[0].process.pid, nodes[1].process.pid]
        local = Target("call on the node holding its MCP session", nodes[0].port, path, "fast1__echo", held, both)
        passed = Target("cross-node call (node 2 passes it to node 1)", nodes[1].port, path, "fast1__echo", held, both)
        local.check()
        passed.check()
        return local, passed

    def nodes(self) -> None:
        # Nodes on one PostgreSQL store: what passing a call to the node
        # that holds its MCP session adds, and calls/s through a round-robin
        # nginx over 1, 2 and 3 nodes (one MCP session, held by node 1).
        print("## nodes sharing one PostgreSQL store")
        print()
        nodes = self.start_nodes()
        if not nodes:
            print("skipped: no PostgreSQL server at --database-url")
            print()
            return
        local, passed = self.node_targets(nodes)
        rows = []
        here = repeated(self.n, lambda: wrk(local, 1, self.d))
        there = repeated(self.n, lambda: wrk(passed, 1, self.d))
        for target, runs in ((local, here), (passed, there)):
            rows.append([target.name, cell([r.p50 for r in runs], unit=" µs"), cell([r.p99 for r in runs], unit=" µs"), cell([r.cpu_per_call for r in runs], 1, " µs")])
        added = mean(r.p50 for r in there) - mean(r.p50 for r in here)
        table(["tools/call (c1)", "p50", "p99", "CPU/call (both nodes)"], rows)
        print(f"a call passed to the node that holds its MCP session adds {added:,.0f} µs at p50")
        print()
        rows = []
        for count in (1, 2, 3):
            name = f"nginx-nodes{count}"
            balancer = self.start_nginx(name, [node.port for node in nodes[:count]])
            target = Target(f"{count} node(s)", self.port(name), local.path, "fast1__echo", local.session, [node.process.pid for node in nodes[:count]])
            target.check()
            runs = repeated(self.n, lambda: wrk(target, 16, self.d))
            rows.append([str(count), cell([r.rate for r in runs]), cell([r.p50 for r in runs], unit=" µs"), cell([r.cpu_per_call for r in runs], 1, " µs"), str(sum(r.errors for r in runs))])
            os.killpg(balancer.pid, signal.SIGKILL)
        table(["nodes behind round robin", "calls/s (c16)", "p50", "CPU/call (nodes)", "errors"], rows)

    def callgrind(self) -> None:
        """Instructions per call under callgrind, for the plain call, each
        feature and the stack alone: steady where timings on a shared
        machine are not."""
        print(f"## instructions per tools/call (callgrind, whole gateway process, {CALLGRIND_CALLS} calls one after another)")
        print()
        if not shutil.which("valgrind"):
            print("skipped: no valgrind")
            print()
            return
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.work}/callgrind.%p", "--dump-instr=no", "--vgdb=yes"]
        gateway = self.gateway_with_features("mux-callgrind", wrapper=wrapper)
        targets = self.feature_targets(gateway)
        quiet = self.start_mux("mux-callgrind-quiet", ["--access-log", "false"], wrapper=wrapper)
        traced = self.start_mux("mux-callgrind-traced", env=self.tracing_env(), wrapper=wrapper)
        targets.append(self.target_on(quiet, "access log off (--access-log false)", ["fast1"], "fast1__echo"))
        targets.append(self.target_on(traced, "access log at info, tracing on (1 in 10 sampled)", ["fast1"], "fast1__echo"))
        # The stack alone, for how much of the plain call is the stack's.
        floors = self.stack_floors(self.port("fast"), wrapper, "-callgrind")
        rows = []
        plain = None
        for target in [*targets, *floors]:
            counts = repeated(self.n, lambda: instructions_per_call(target, self.work))
            if plain is None:
                plain = mean(counts)
            added = "—" if target is targets[0] else f"{mean(counts) - plain:+,.0f}"
            rows.append([target.name, cell(counts), added])
        for gateway in (quiet, traced):
            os.killpg(gateway.process.pid, signal.SIGKILL)
        for floor in floors:
            os.killpg(floor.pids[0], signal.SIGKILL)
        table(["call", "instructions per call", "added"], rows)


def yes(met: bool) -> str:
    return "yes" if met else "no"


def open_live_mcp_sessions(gateway: Gateway, servers: list[str]) -> int:
    """Opens 32 sessions of 32 MCP sessions each (a session holds at most
    32); returns how many."""
    for _ in range(32):
        session = gateway.create_session(servers)
        for _ in range(32):
            gateway.initialize(session)
    return 32 * 32


def postgres_database(url: str, name: str = "mcp_mux_bench") -> str | None:
    """A fresh database `name` for the benchmark on the server `url` names."""
    for statement in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        done = subprocess.run(["psql", url, "-q", "-c", statement], capture_output=True, text=True)
        if done.returncode != 0:
            return None
    return url.rsplit("/", 1)[0] + "/" + name


if __name__ == "__main__":
    sys.exit(main())
