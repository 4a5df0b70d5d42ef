#!/usr/bin/env python3
"""Measures what mcp-mux adds to an MCP call, beside nginx as the floor, and
prints the numbers; asserts nothing.

Started by scripts/bench.sh, which builds the release binaries and installs
wrk and nginx. One run on one machine starts:
  - the fast backend (scripts/bench/backend.mjs, Node): plain JSON answers,
    no session;
    more of it for catalogues of 10, 1,000 and 10,000 tools, and one whose
    `initialize` takes 100 ms;
  - nginx proxying to the fast backend over kept-alive connections (the
    floor: one loopback hop, no MCP work);
  - mcp-mux with its defaults;
  - wrk, the load generator, with scripts/bench/call.lua.
Every point runs --repeat times (2 by default); a cell shows the mean and
the spread (max − min over the mean) of those runs.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
ACCEPT = "application/json, text/event-stream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
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

    def start(self, name: str, argv: list[str], port: int, extra_env: dict | None = None) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "ab")
        # Each runs with its defaults: mcp-mux logs every request at info.
        env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        env.update(extra_env or {})
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.children.append(process)
        wait_until_up(port, process, name)
        return process

    def stop_all(self) -> None:
        for process in self.children:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def post(port: int, path: str, message: dict, session: str | None = None, timeout: float = 60) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"content-type": "application/json", "accept": ACCEPT}
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


class Gateway:
    def __init__(self, port: int, process: subprocess.Popen):
        self.port, self.process = port, process

    def create_session(self, servers: list[str]) -> str:
        status, _, body = post(self.port, "/create-session", {"servers": servers})
        if status != 201:
            raise RuntimeError(f"create-session answered {status}: {body[:200]!r}")
        return json.loads(body)["session_id"]

    def initialize(self, session_id: str) -> str:
        path = f"/session/{session_id}/mcp"
        message = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
        }
        status, headers, body = post(self.port, path, message)
        if status != 200 or "mcp-session-id" not in headers:
            raise RuntimeError(f"initialize answered {status}: {body[:200]!r}")
        mcp_session = headers["mcp-session-id"]
        post(self.port, path, {"jsonrpc": "2.0", "method": "notifications/initialized"}, mcp_session)
        return mcp_session


class Target:
    """Where wrk sends `tools/call`: a port, a path, a tool name, a session."""

    def __init__(self, name: str, port: int, path: str, tool: str, session: str | None = None, pids: list[int] | None = None):
        self.name, self.port, self.path, self.tool, self.session, self.pids = name, port, path, tool, session, pids or []

    def body(self) -> str:
        return json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": self.tool, "arguments": {"message": "hello"}}}
        )

    def check(self) -> None:
        status, _, body = post(self.port, self.path, json.loads(self.body()), self.session)
        answer = jsonrpc(body)
        text = (answer.get("result") or {}).get("content", [{}])[0].get("text")
        if status != 200 or text != "hello":
            raise RuntimeError(f"{self.name}: tools/call answered {status}: {body[:200]!r}")


class Run:
    """One wrk run's numbers."""

    def __init__(self, p50: float, p90: float, p99: float, rate: float, errors: int, cpu_per_call: float | None):
        self.p50, self.p90, self.p99, self.rate, self.errors, self.cpu_per_call = p50, p90, p99, rate, errors, cpu_per_call


def wrk(target: Target, connections: int, duration: float, body: str | None = None, path: str | None = None) -> Run:
    threads = min(connections, 2)
    env = {**os.environ, "WRK_BODY": body or target.body(), "WRK_SESSION": target.session or ""}
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


def cell(values: list[float], digits: int = 0, unit: str = "") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    mean = statistics.fmean(values)
    spread = (max(values) - min(values)) / mean * 100 if mean else 0
    return f"{mean:,.{digits}f}{unit} ±{spread:.0f}%"


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def nginx_config(work: Path, port: int, backend_port: int, name: str = "nginx", upstreams: list[int] | None = None) -> Path:
    config = work / f"{name}.conf"
    servers = " ".join(f"server 127.0.0.1:{upstream};" for upstream in (upstreams or [backend_port]))
    config.write_text(
        f"""worker_processes auto;
pid {work}/{name}.pid;
error_log {work}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
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


SECTIONS = ("calls", "growth", "initialize", "memory", "create-session", "nodes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mux", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--duration", type=float, default=3, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per point")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/test", help="a PostgreSQL server for create-session; a database of its own is made there")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run this section alone (repeatable); all by default")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    processes = Processes(work)
    try:
        return bench(args, work, processes)
    finally:
        processes.stop_all()


def bench(args, work: Path, processes: Processes) -> int:
    d, n = args.duration, args.repeat
    ports = {name: free_port() for name in ("fast", "cat10", "cat1000", "cat10000", "slow", "nginx", "mux", "mux-memory", "mux-sqlite", "mux-pg")}
    backend = ["node", str(HERE / "backend.mjs")]
    processes.start("backend", [*backend, "--port", str(ports["fast"])], ports["fast"])
    for size in (10, 1000, 10000):
        processes.start(f"backend-{size}", [*backend, "--port", str(ports[f"cat{size}"]), "--tools", str(size)], ports[f"cat{size}"])
    processes.start("backend-slow", [*backend, "--port", str(ports["slow"]), "--initialize-delay-ms", "100"], ports["slow"])
    nginx = processes.start(
        "nginx", ["nginx", "-p", str(work), "-c", str(nginx_config(work, ports["nginx"], ports["fast"])), "-g", "daemon off;"], ports["nginx"]
    )

    fast = f"http://127.0.0.1:{ports['fast']}"
    servers = {f"fast{i}": f"{fast}/s{i}" for i in range(1, 17)}
    servers.update({f"cat{size}": f"http://127.0.0.1:{ports[f'cat{size}']}/mcp" for size in (10, 1000, 10000)})
    servers.update({f"slow{i}": f"http://127.0.0.1:{ports['slow']}/s{i}" for i in range(1, 17)})
    registry = work / "registry.yaml"
    registry.write_text("servers:\n" + "".join(f"  {name}:\n    url: {url}\n" for name, url in servers.items()))

    def start_mux(name: str, port: int, extra: list[str]) -> Gateway:
        process = processes.start(
            name,
            [args.mux, "serve", "--bind", f"127.0.0.1:{port}", "--registry", str(registry), "--data-dir", str(work / name), *extra],
            port,
        )
        return Gateway(port, process)

    mux = start_mux("mcp-mux", ports["mux"], [])
    one = mux.create_session(["fast1"])
    one_mcp = mux.initialize(one)

    print(f"# machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}, {platform.processor() or platform.machine()}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}; wrk {args.duration:g} s per run, {n} runs per point; cells: mean ±spread (max−min over mean)")
    print()

    only = set(args.only or SECTIONS)

    if "calls" in only:
        # 1. tools/call: straight, through nginx, through mcp-mux.
        targets = [
            Target("backend direct", ports["fast"], "/mcp", "echo"),
            Target("nginx", ports["nginx"], "/mcp", "echo", pids=nginx_pids(nginx.pid)),
            Target("mcp-mux", mux.port, f"/session/{one}/mcp", "fast1__echo", one_mcp, [mux.process.pid]),
        ]
        for target in targets:
            target.check()
        print("## tools/call, one session over one backend")
        print()
        rows = []
        for connections in (1, 16, 32, 64):
            runs = {t.name: repeated(n, lambda t=t: wrk(t, connections, d)) for t in targets}
            direct = statistics.fmean(r.p50 for r in runs["backend direct"])
            floor = runs["nginx"]
            for target in targets:
                these = runs[target.name]
                added = [r.p50 - direct for r in these] if target.name != "backend direct" else [None]
                ratio = statistics.fmean(r.rate for r in these) / statistics.fmean(r.rate for r in floor)
                cpu = [r.cpu_per_call for r in these]
                cpu_ratio = (
                    f"{statistics.fmean(cpu) / statistics.fmean(r.cpu_per_call for r in floor):.1f}×"
                    if target.name == "mcp-mux" and all(c is not None for c in cpu)
                    else ""
                )
                errors = sum(r.errors for r in these)
                rows.append(
                    [
                        str(connections),
                        target.name,
                        cell([r.p50 for r in these], unit=" µs"),
                        cell([r.p90 for r in these], unit=" µs"),
                        cell([r.p99 for r in these], unit=" µs"),
                        cell([r.rate for r in these]),
                        cell(added, unit=" µs"),
                        f"{ratio:.2f}×",
                        cell(cpu, 1, " µs"),
                        cpu_ratio,
                        str(errors),
                    ]
                )
        table(["c", "target", "p50", "p90", "p99", "calls/s", "added p50", "calls/s ÷ nginx", "CPU/call", "CPU ÷ nginx", "errors"], rows)

    if "growth" in only:
        # 2. How the cost grows.
        print("## how the cost grows (mcp-mux; tools/call at c1 and c16, tools/list at c1)")
        print()
        list_body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        rows = []
        for label, chosen, tool in (
            ("1 backend", ["fast1"], "fast1__echo"),
            ("4 backends", [f"fast{i}" for i in range(1, 5)], "fast1__echo"),
            ("16 backends", [f"fast{i}" for i in range(1, 17)], "fast1__echo"),
            ("10 tools", ["cat10"], "cat10__echo"),
            ("1,000 tools", ["cat1000"], "cat1000__echo"),
            ("10,000 tools", ["cat10000"], "cat10000__echo"),
        ):
            session = mux.create_session(chosen)
            target = Target(label, mux.port, f"/session/{session}/mcp", tool, mux.initialize(session), [mux.process.pid])
            target.check()
            c1 = repeated(n, lambda: wrk(target, 1, d))
            c16 = repeated(n, lambda: wrk(target, 16, d))
            listing = repeated(n, lambda: wrk(target, 1, d, body=list_body))
            rows.append(
                [
                    label,
                    cell([r.p50 for r in c1], unit=" µs"),
                    cell([r.rate for r in c16]),
                    cell([r.p50 for r in listing], unit=" µs"),
                ]
            )

        # 1,024 live MCP sessions (32 sessions of 32) beside the measured one.
        live = open_live_mcp_sessions(mux, ["fast1", "fast2"])
        target = Target("busy", mux.port, f"/session/{one}/mcp", "fast1__echo", one_mcp, [mux.process.pid])
        c1 = repeated(n, lambda: wrk(target, 1, d))
        c16 = repeated(n, lambda: wrk(target, 16, d))
        rows.append([f"{live:,} other live MCP sessions", cell([r.p50 for r in c1], unit=" µs"), cell([r.rate for r in c16]), ""])
        table(["session", "tools/call p50 (c1)", "tools/call calls/s (c16)", "tools/list p50 (c1)"], rows)

    if "initialize" in only:
        # 3. initialize fan-out over backends that each take 100 ms: the
        # median initialize through mcp-mux against the median of the slow
        # backend's own, each on a new connection as a client opens one.
        print("## initialize over backends that each take 100 ms")
        print()
        initialize = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
        }

        def timed(port: int, path: str) -> float:
            started = time.perf_counter()
            status, _, body = post(port, path, initialize)
            if status != 200:
                raise RuntimeError(f"initialize answered {status}: {body[:200]!r}")
            return (time.perf_counter() - started) * 1000

        attempts = 10
        rows = []
        for count in (1, 4, 16):
            session = mux.create_session([f"slow{i}" for i in range(1, count + 1)])
            added = []
            for _ in range(n):
                slowest = statistics.median(timed(ports["slow"], "/s1") for _ in range(attempts))
                through = statistics.median(timed(mux.port, f"/session/{session}/mcp") for _ in range(attempts))
                added.append(through - slowest)
            rows.append([str(count), cell(added, 1, " ms")])
        table(["backends", f"added over the slowest (median of {attempts}, per run)"], rows)

    if "memory" in only:
        # 4. Memory, on a gateway of its own: stored sessions, then live MCP
        # sessions over two backends.
        fresh = start_mux("mux-memory", ports["mux-memory"], [])
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

    if "create-session" in only:
        # 5. create-session with 8 clients, on SQLite and on PostgreSQL.
        print("## create-session, 8 clients")
        print()
        rows = []
        create_body = json.dumps({"servers": ["fast1"]})
        stores = [("SQLite", "mux-sqlite", [])]
        postgres = postgres_database(args.database_url) if shutil.which("psql") else None
        if postgres:
            stores.append(("PostgreSQL", "mux-pg", ["--database-url", postgres]))
        for label, name, extra in stores:
            gateway = start_mux(name, ports[name], ["--max-sessions", "10000000", *extra])
            target = Target(label, gateway.port, "/create-session", "", pids=[gateway.process.pid])
            runs = repeated(n, lambda: wrk(target, 8, d, body=create_body))
            rows.append([label, cell([r.rate for r in runs]), cell([r.p50 for r in runs], unit=" µs"), cell([r.cpu_per_call for r in runs], 1, " µs"), str(sum(r.errors for r in runs))])
        if len(stores) == 1:
            rows.append(["PostgreSQL", "skipped: no server at --database-url", "", "", ""])
        table(["store", "sessions/s", "p50", "CPU/session", "errors"], rows)

    if "nodes" in only:
        # 6. Nodes on one PostgreSQL store: what passing a call to the node
        # that holds its MCP session adds, and calls/s through a round-robin
        # nginx over 1, 2 and 3 nodes (one MCP session, held by node 1).
        print("## nodes sharing one PostgreSQL store")
        print()
        postgres = postgres_database(args.database_url, "mcp_mux_bench_nodes") if shutil.which("psql") else None
        if not postgres:
            print("skipped: no PostgreSQL server at --database-url")
            print()
            return 0
        key = {"MCP_MUX_ENCRYPTION_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
        nodes = []
        for index in range(3):
            port = free_port()
            process = processes.start(
                f"node{index + 1}",
                [args.mux, "serve", "--bind", f"127.0.0.1:{port}", "--registry", str(registry),
                 "--data-dir", str(work / f"node{index + 1}"), "--database-url", postgres],
                port,
                key,
            )
            nodes.append(Gateway(port, process))
        time.sleep(3)  # every node has heard the others' heartbeat
        session = nodes[0].create_session(["fast1"])
        held = nodes[0].initialize(session)
        path = f"/session/{session}/mcp"
        local = Target("node 1 (holds it)", nodes[0].port, path, "fast1__echo", held, [nodes[0].process.pid])
        passed = Target("node 2 (passes it on)", nodes[1].port, path, "fast1__echo", held, [nodes[0].process.pid, nodes[1].process.pid])
        local.check()
        passed.check()
        rows = []
        here = repeated(n, lambda: wrk(local, 1, d))
        there = repeated(n, lambda: wrk(passed, 1, d))
        for target, runs in ((local, here), (passed, there)):
            rows.append([target.name, cell([r.p50 for r in runs], unit=" µs"), cell([r.p99 for r in runs], unit=" µs"), cell([r.cpu_per_call for r in runs], 1, " µs")])
        added = statistics.fmean(r.p50 for r in there) - statistics.fmean(r.p50 for r in here)
        table(["tools/call (c1)", "p50", "p99", "CPU/call (both nodes)"], rows)
        print(f"a call passed to the node that holds its MCP session adds {added:,.0f} µs at p50")
        print()
        rows = []
        for count in (1, 2, 3):
            port = free_port()
            name = f"nginx-nodes{count}"
            balancer = processes.start(
                name,
                ["nginx", "-p", str(work), "-c", str(nginx_config(work, port, 0, name, [node.port for node in nodes[:count]])), "-g", "daemon off;"],
                port,
            )
            target = Target(f"{count} node(s)", port, path, "fast1__echo", held, [node.process.pid for node in nodes[:count]])
            target.check()
            runs = repeated(n, lambda: wrk(target, 16, d))
            rows.append([str(count), cell([r.rate for r in runs]), cell([r.p50 for r in runs], unit=" µs"), cell([r.cpu_per_call for r in runs], 1, " µs"), str(sum(r.errors for r in runs))])
            os.killpg(balancer.pid, signal.SIGKILL)
        table(["nodes behind round robin", "calls/s (c16)", "p50", "CPU/call (nodes)", "errors"], rows)
    return 0


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
    for statement in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        done = subprocess.run(["psql", url, "-q", "-c", statement], capture_output=True, text=True)
        if done.returncode != 0:
            return None
    return url.rsplit("/", 1)[0] + "/" + name


if __name__ == "__main__":
    sys.exit(main())
