#!/usr/bin/env python3
"""Checks of scripts/cluster.sh that need only Python's standard library.

    cluster.py delete --session ID --node n1=127.0.0.1:P1 --node n2=... --node n3=...
    cluster.py rate --lb URL --session-url URL --limit 50 [--seconds 5] [--threads 8] --node ...
    cluster.py chaos --session-url URL --records FILE [--duration 15] [--clients 8] --node ...

`delete`: MCP sessions opened directly on nodes 2 and 3 (each with a GET
stream), then the session deleted at node 1; both must answer 404, and
their GET streams must end, within 2 s.

`rate`: one MCP session of a session created with a rate limit, hammered
through the balancer (so round robin over the nodes) by several threads
for a few seconds; prints what was offered and admitted, per node too, and
checks that the admitted rate after the first second (the burst, twice the
rate at once, is spent by then) stays near the limit, not N times it.

`chaos`: clients (scripts/chaos/chaos.py's raw Streamable HTTP client, each
on its own MCP session) call the demo backend's `record` tool, which
appends its key to a file, and `echo` through the balancer, while
scripts/cluster.sh SIGKILLs a node and restarts it. Each call ends
succeeded, failed clearly, lost or hung (see chaos.py); then no call may be
lost or hung, no `record` may have run twice, and every `record` reported
done must have run.

Prints `ok - ...` / `not ok - ...` lines and `#` lines with the numbers;
exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "chaos"))
from chaos import Client as ChaosClient  # noqa: E402
from chaos import Outcome  # noqa: E402

PROTOCOL = "2025-11-25"
failures = 0


def check(name: str, passed: bool, reason: str = "") -> bool:
    global failures
    if passed:
        print(f"ok - {name}", flush=True)
    else:
        failures += 1
        print(f"not ok - {name}: {reason}", flush=True)
    return passed


def nodes_of(specs: list[str]) -> dict[str, str]:
    """NAME=HOST:PORT pairs, in order: name -> host:port."""
    nodes = {}
    for spec in specs:
        name, _, address = spec.partition("=")
        nodes[name] = address
    return nodes


def post(address: str, path: str, message: dict, session: str | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    host, _, port = address.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if session:
        headers["mcp-session-id"] = session
        headers["mcp-protocol-version"] = PROTOCOL
    try:
        connection.request("POST", path, json.dumps(message), headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "cluster", "version": "1"}},
}


def initialize(address: str, path: str) -> str | None:
    status, headers, _ = post(address, path, INITIALIZE)
    sid = headers.get("mcp-session-id")
    if status != 200 or not sid:
        return None
    post(address, path, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
    return sid


def tools_list(address: str, path: str, sid: str) -> int:
    try:
        status, _, _ = post(address, path, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, sid, timeout=5)
        return status
    except OSError:
        return 0


# ---------------------------------------------------------------- delete
def delete(args: argparse.Namespace) -> None:
    nodes = nodes_of(args.node)
    names = list(nodes)
    first, others = names[0], names[1:]
    path = f"/session/{args.session}/mcp"
    opened: dict[str, str] = {}
    for name in others:
        sid = initialize(nodes[name], path)
        if sid and tools_list(nodes[name], path, sid) == 200:
            opened[name] = sid
    if not check(f"delete: MCP sessions opened directly on {' and '.join(others)}", len(opened) == len(others),
                 f"opened on {sorted(opened)} only"):
        return

    # Each MCP session's GET stream, read until it ends.
    stream_end: dict[str, float] = {}
    stream_status: dict[str, int] = {}

    def hold_stream(name: str) -> None:
        host, _, port = nodes[name].partition(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request("GET", path, headers={"accept": "text/event-stream", "mcp-session-id": opened[name],
                                                     "mcp-protocol-version": PROTOCOL})
            response = connection.getresponse()
            stream_status[name] = response.status
            while response.read1(4096):
                pass
        except OSError:
            pass
        finally:
            stream_end[name] = time.monotonic()
            connection.close()

    streams = [threading.Thread(target=hold_stream, args=(name,), daemon=True) for name in others]
    for thread in streams:
        thread.start()
    time.sleep(0.5)
    open_streams = [name for name in others if stream_status.get(name) == 200 and name not in stream_end]

    host, _, port = nodes[first].partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    started = time.monotonic()
    connection.request("DELETE", f"/session/{args.session}")
    deleted = connection.getresponse()
    deleted.read()
    check(f"delete: DELETE /session/<id> at {first} answers 200", deleted.status == 200, f"got {deleted.status}")

    gone: dict[str, float] = {}
    last: dict[str, int] = {}
    deadline = started + 5
    while time.monotonic() < deadline and len(gone) < len(opened):
        for name in opened:
            if name not in gone:
                last[name] = tools_list(nodes[name], path, opened[name])
                if last[name] == 404:
                    gone[name] = time.monotonic() - started
        time.sleep(0.05)
    for thread in streams:
        thread.join(max(0.0, deadline - time.monotonic()))
    times = ", ".join(f"{name} {gone[name]:.2f} s" if name in gone else f"{name} never (tools/list still {last.get(name)} after 5 s)"
                      for name in opened)
    print(f"# delete: MCP sessions answered 404 after (counted from sending the DELETE): {times}", flush=True)
    check("delete: the MCP sessions on the other nodes answer 404 within 2 s",
          all(name in gone and gone[name] <= 2 for name in opened), times)
    ends = {name: stream_end[name] - started for name in open_streams if name in stream_end}
    ended = ", ".join(f"{name} {ends[name]:.2f} s" if name in ends else f"{name} still open after 5 s" for name in open_streams)
    print(f"# delete: GET streams ended after: {ended or 'none was open'}", flush=True)
    check("delete: their GET streams end within 2 s",
          len(open_streams) == len(others) and all(name in ends and ends[name] <= 2 for name in open_streams),
          ended or f"no GET stream opened ({stream_status})")


# ---------------------------------------------------------------- rate
def rate(args: argparse.Namespace) -> None:
    nodes = nodes_of(args.node)
    by_address = {address: name for name, address in nodes.items()}
    lb = args.lb.removeprefix("http://")
    path = "/" + args.session_url.removeprefix("http://").partition("/")[2]
    sid = initialize(lb, path)
    if not check("rate: an MCP session opened through the balancer", sid is not None, "initialize failed"):
        return
    # The initialize spent some of the burst: let it refill.
    time.sleep(2.5)
    results: list[tuple[float, int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()
    host, _, port = lb.partition(":")
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-session-id": sid, "mcp-protocol-version": PROTOCOL}
    started = time.monotonic()

    def hammer() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while not stop.is_set():
            try:
                connection.request("POST", path, ping, headers)
                response = connection.getresponse()
                response.read()
                node = by_address.get(response.getheader("x-mux-upstream", ""), "?")
                with lock:
                    results.append((time.monotonic() - started, response.status, node))
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.close()

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    stop.set()
    for thread in threads:
        thread.join(15)
    elapsed = time.monotonic() - started

    admitted = [r for r in results if r[1] == 200]
    refused = [r for r in results if r[1] == 429]
    other = collections.Counter(r[1] for r in results if r[1] not in (200, 429))
    steady = [r for r in admitted if r[0] >= 1.0]
    steady_rate = len(steady) / max(elapsed - 1.0, 0.001)
    overall = len(admitted) / elapsed
    offered = len(results) / elapsed
    per_node = {name: sum(1 for r in admitted if r[2] == name) for name in nodes}
    offered_node = {name: sum(1 for r in results if r[2] == name) for name in nodes}
    print(f"# rate: limit {args.limit}/s, {len(nodes)} nodes; offered {len(results)} requests in {elapsed:.1f} s ({offered:.0f}/s), "
          f"by node {offered_node}", flush=True)
    print(f"# rate: admitted {len(admitted)} ({overall:.1f}/s over the whole run, burst included), "
          f"{len(steady)} after the first second ({steady_rate:.1f}/s); 429: {len(refused)}; other: {dict(other) or 'none'}; "
          f"admitted by node {per_node}", flush=True)
    check(f"rate: requests were offered well above {len(nodes)} times the limit, to every node ({offered:.0f}/s)",
          offered >= 3 * args.limit * len(nodes) / 2 and all(offered_node.values()), f"{offered:.0f}/s, by node {offered_node}")
    check(f"rate: admitted about {args.limit}/s across the nodes, not {len(nodes) * args.limit}/s ({steady_rate:.1f}/s after the burst)",
          args.limit / 2 <= steady_rate <= args.limit * 1.5 and not other,
          f"{steady_rate:.1f}/s admitted after the first second; other statuses {dict(other)}")


# ---------------------------------------------------------------- chaos
def chaos(args: argparse.Namespace) -> None:
    nodes = nodes_of(args.node)
    records = Path(args.records)
    counts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    recorded_ok: set[str] = set()
    attempted_records: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    base = args.session_url.split("/session/")[0]
    before = set(records.read_text().splitlines())

    def worker(index: int) -> None:
        client = ChaosClient(base, args.session_url, args.call_timeout)
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
            key = f"k{index}-{calls}-{uuid.uuid4().hex[:8]}"
            if calls % 4:
                with lock:
                    attempted_records.add(key)
                outcome, reason = client.call("demo__record", {"key": key}, f"recorded {key}")
            else:
                outcome, reason = client.call("everything__echo", {"message": key}, key)
            with lock:
                counts[outcome] += 1
                if reason:
                    reasons[f"{outcome}: {reason}"] += 1
                if outcome == Outcome.SUCCEEDED and calls % 4:
                    recorded_ok.add(key)
            if outcome != Outcome.SUCCEEDED:
                time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(args.duration)
    stop.set()
    for thread in threads:
        thread.join(args.call_timeout + 10)
    stuck = sum(thread.is_alive() for thread in threads)
    elapsed = time.monotonic() - started

    # Afterwards, with every node up, a new client must get through.
    after = ChaosClient(base, args.session_url, args.call_timeout)
    recovered = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not recovered:
        if after.mcp_session or after.initialize():
            recovered = all(after.call(tool, {"message": "after"}, "after")[0] == Outcome.SUCCEEDED
                            for tool in ("demo__echo", "everything__echo", "demo__echo"))
        if not recovered:
            time.sleep(0.5)

    lines = [line for line in records.read_text().splitlines() if line not in before]
    ran = collections.Counter(lines)
    ran_twice = sorted(key for key, n in ran.items() if n > 1)
    never_ran = sorted(recorded_ok - set(ran))
    attempted = sum(counts[o] for o in (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.LOST, Outcome.HUNG))
    print(f"# chaos: {args.clients} clients for {elapsed:.0f} s through the balancer over {len(nodes)} nodes", flush=True)
    print(f"# chaos: calls {attempted}: ok {counts[Outcome.SUCCEEDED]}, clear errors {counts[Outcome.FAILED]}, "
          f"lost {counts[Outcome.LOST]}, run twice {len(ran_twice)}, hung {counts[Outcome.HUNG]}", flush=True)
    print(f"# chaos: record calls attempted {len(attempted_records)}, reported done {len(recorded_ok)}, "
          f"ran {len(ran)} (calls that failed clearly may or may not have run)", flush=True)
    for reason, n in reasons.most_common(8):
        print(f"#   {n:>6}  {reason}", flush=True)
    check("chaos: calls were made and most succeeded", attempted > 0 and counts[Outcome.SUCCEEDED] > attempted // 2,
          f"{counts[Outcome.SUCCEEDED]} of {attempted}")
    check("chaos: no call was lost", counts[Outcome.LOST] == 0, f"{counts[Outcome.LOST]} lost")
    check("chaos: no record call ran twice", not ran_twice, f"{len(ran_twice)} ran twice: {ran_twice[:5]}")
    check("chaos: no call hung", counts[Outcome.HUNG] == 0 and stuck == 0, f"{counts[Outcome.HUNG]} hung, {stuck} clients stuck")
    check("chaos: every record call reported done ran", not never_ran, f"never ran: {never_ran[:5]}")
    check("chaos: every client initialized", counts["clients that never initialized"] == 0,
          f"{counts['clients that never initialized']} did not")
    check("chaos: both backends answer through the balancer afterwards", recovered, "no success within 20 s")


# ---------------------------------------------------------------- path
def path(args: argparse.Namespace) -> None:
    """The requests the balancer logged since line --from, in the order they
    started, each with its Mcp-Method and Mcp-Name headers (2026-07-28
    requests carry them) and the node it reached."""
    by_address = {address: name for name, address in nodes_of(args.node).items()}
    requests = []
    for line in Path(args.log).read_text().splitlines()[args.start:]:
        parts = line.split('"')
        fields = parts[0].split()
        if len(fields) < 5:
            continue
        upstreams = fields[:-4]
        status, method, logged, took = fields[-4:]
        node = "+".join(by_address.get(u.rstrip(","), u.rstrip(",")) for u in upstreams)
        what = " ".join(p for p in (parts[1] if len(parts) > 1 else "", parts[3] if len(parts) > 3 else "") if p and p != "-")
        requests.append((float(logged) - float(took), f"{what or method} -> {node} {status}"))
    print("#   " + ", ".join(text for _, text in sorted(requests)), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("delete")
    d.add_argument("--session", required=True)
    r = sub.add_parser("rate")
    r.add_argument("--lb", required=True)
    r.add_argument("--session-url", required=True)
    r.add_argument("--limit", type=float, required=True)
    r.add_argument("--seconds", type=float, default=5)
    r.add_argument("--threads", type=int, default=8)
    c = sub.add_parser("chaos")
    c.add_argument("--session-url", required=True)
    c.add_argument("--records", required=True)
    c.add_argument("--duration", type=float, default=15)
    c.add_argument("--clients", type=int, default=8)
    c.add_argument("--call-timeout", type=float, default=20)
    w = sub.add_parser("path")
    w.add_argument("--log", required=True)
    w.add_argument("--from", dest="start", type=int, default=0)
    for p in (d, r, c, w):
        p.add_argument("--node", action="append", default=[], help="NAME=HOST:PORT, node 1 first")
    args = parser.parse_args()
    try:
        {"delete": delete, "rate": rate, "chaos": chaos, "path": path}[args.command](args)
    except Exception as exc:  # a crash is a failed check, with the reason on one line
        check(f"{args.command} ran to the end", False, f"{type(exc).__name__}: {exc}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
