#!/usr/bin/env python3
"""Load client for scripts/oauth_load.sh: N concurrent clients call
`files__echo` through one session's MCP URL for a while, and one JSON object
with the counts is printed on stdout.

Only the standard library, raw JSON-RPC over HTTP (one kept-alive connection
per client), so that every failure is seen exactly as the gateway answered it
(status and body), with nothing retried behind our back.

Modes:
  session    (default) each client opens its own MCP session with
             `initialize` and sends every call with its Mcp-Session-Id. Behind
             a round-robin balancer consecutive requests land on different
             nodes, so this also exercises MCP sessions reopened from the
             shared store.
  stateless  revision 2026-07-28: every call stands alone (no initialize, no
             Mcp-Session-Id).
"""

import argparse
import collections
import http.client
import json
import threading
import time
import urllib.parse

LEGACY = "2025-11-25"
STATELESS = "2026-07-28"
TIMEOUT = 30  # seconds a single request may take before it counts as failed


class Failure(Exception):
    """A call that did not give back its message; str() is the error shown."""


def short(text, limit=200):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


class Client:
    def __init__(self, url, mode, name):
        self.url = urllib.parse.urlsplit(url)
        self.mode = mode
        self.name = name
        self.session_id = None
        self.conn = None

    def post(self, message, headers=()):
        """POSTs one JSON-RPC message; returns (status, headers, parsed body); a
        notification's 202 has no body (None)."""
        hdrs = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        hdrs.update(headers)
        if self.session_id:
            hdrs["mcp-session-id"] = self.session_id
            hdrs["mcp-protocol-version"] = LEGACY
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=TIMEOUT)
        try:
            self.conn.request("POST", self.url.path, json.dumps(message), hdrs)
            response = self.conn.getresponse()
            raw = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as error:
            # Nothing is retried: a dropped connection is a failed call.
            self.conn.close()
            self.conn = None
            raise Failure(f"connection: {type(error).__name__}: {short(error)}")
        body = None
        if response.status == 202 and not raw:
            return response.status, response.headers, None
        if raw.startswith("{"):
            body = json.loads(raw)
        elif "data:" in raw:  # an SSE answer: the last data line holds the response
            datas = [line[5:].strip() for line in raw.splitlines() if line.startswith("data:")]
            body = json.loads(datas[-1]) if datas else None
        if response.status >= 300 or body is None:
            raise Failure(f"HTTP {response.status}: {short(raw)}")
        return response.status, response.headers, body

    def open(self):
        if self.mode == "stateless":
            return
        _, headers, body = self.post({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": LEGACY, "capabilities": {},
                       "clientInfo": {"name": "oauth-load", "version": "0"}},
        })
        if "result" not in body or not headers.get("mcp-session-id"):
            raise Failure(f"initialize: {short(json.dumps(body))}")
        self.session_id = headers["mcp-session-id"]
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def echo(self, n):
        message = f"{self.name}-{n}"
        params = {"name": "files__echo", "arguments": {"message": message}}
        headers = {}
        if self.mode == "stateless":
            params["_meta"] = {"io.modelcontextprotocol/protocolVersion": STATELESS,
                               "io.modelcontextprotocol/clientCapabilities": {}}
            headers = {"mcp-protocol-version": STATELESS, "mcp-method": "tools/call",
                       "mcp-name": "files__echo"}
        _, _, body = self.post({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}, headers)
        if "error" in body:
            raise Failure(f"JSON-RPC error {body['error'].get('code')}: {short(body['error'].get('message'))}")
        result = body.get("result", {})
        texts = [c.get("text", "") for c in result.get("content", []) if isinstance(c, dict)]
        if result.get("isError") or texts != [message]:
            raise Failure(f"tool answered {short(json.dumps(result))}")

    def close(self):
        if self.session_id and self.conn:
            try:
                self.conn.request("DELETE", self.url.path, headers={
                    "mcp-session-id": self.session_id, "mcp-protocol-version": LEGACY})
                self.conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                pass
        if self.conn:
            self.conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the session's MCP URL (through the balancer)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--mode", choices=("session", "stateless"), default="session")
    args = parser.parse_args()

    lock = threading.Lock()
    counts = collections.Counter()
    errors = collections.Counter()  # distinct error message -> how many calls
    first_error_at = {}  # error message -> seconds into the run it first happened
    latencies = []
    started = time.monotonic()
    deadline = started + args.duration

    def record(error):
        with lock:
            errors[error] += 1
            first_error_at.setdefault(error, round(time.monotonic() - started, 1))

    def run(index):
        client = Client(args.url, args.mode, f"c{index}")
        try:
            client.open()
        except Exception as error:
            with lock:
                counts["opens_failed"] += 1
            record(f"opening the MCP session: {error}")
            return
        n = 0
        while time.monotonic() < deadline:
            n += 1
            t0 = time.monotonic()
            try:
                client.echo(n)
                ok = True
            except Failure as error:
                ok = False
                record(str(error))
            except Exception as error:  # a bug here must not hide as a silent thread death
                ok = False
                record(f"client: {type(error).__name__}: {short(error)}")
            with lock:
                counts["calls"] += 1
                counts["ok" if ok else "failed"] += 1
                latencies.append(time.monotonic() - t0)
        client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    latencies.sort()
    pct = lambda p: round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else None
    print(json.dumps({
        "mode": args.mode, "clients": args.clients, "seconds": round(time.monotonic() - started, 1),
        "calls": counts["calls"], "ok": counts["ok"], "failed": counts["failed"],
        "opens_failed": counts["opens_failed"],
        "errors": [{"message": m, "count": c, "first_at_s": first_error_at[m]} for m, c in errors.most_common()],
        "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
    }))


if __name__ == "__main__":
    main()
