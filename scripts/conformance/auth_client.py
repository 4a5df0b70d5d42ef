#!/usr/bin/env python3
"""mcp-mux as the client under test of the MCP conformance suite's client
authorization scenarios (`conformance client --scenario auth/...`).

The suite starts a protected MCP server with its own authorization server,
then runs `<command> <server URL>` through `sh -c` (so the URL is the last
argument; give `--command "exec python3 .../auth_client.py"` so that the
suite's timeout SIGTERM reaches this process, not only the shell) with
  MCP_CONFORMANCE_SCENARIO   e.g. auth/metadata-default
  MCP_CONFORMANCE_CONTEXT    for some scenarios, JSON; auth/pre-registration:
                             {"name": ..., "client_id": ..., "client_secret": ...}
and scores what reaches its servers. This stands in for the user and their
MCP client, with mcp-mux between them and the scenario's server:

  1. writes a registry whose one server, `backend`, is the scenario's URL
     with `auth: { type: oauth }` (and the context's client_id and
     client_secret when it has them), and starts mcp-mux on a free port,
     with its own data directory and SQLite database, its output to a file,
     in its own process group;
  2. POST /create-session {"servers": ["backend"]};
  3. follows the answer's authorization.backend.url hop by hop, as a
     browser would: the gateway answers 302 to the authorization server,
     whose /authorize answers 302 (no login page) to the gateway's
     /oauth/callback, which answers the page saying whether the backend is
     connected;
  4. over the session's MCP endpoint: initialize, tools/list, and a call of
     the backend's `test-tool` (under the name tools/list gives it). A call
     whose answer holds another authorization link, or a list without the
     tool while GET /session/<id> says the backend needs authorization (with
     its link), is followed by that authorization and made again; at most
     MAX_AUTHORIZATIONS authorizations in all (the suite's
     auth/scope-retry-limit fails a client that makes more than 3).

Exits 0 when the tool call succeeded, else 1, and stops mcp-mux either way.

Environment, besides the suite's:
  MCP_MUX_BIN              the mcp-mux binary (default: target/debug/mcp-mux
                           in the repository this file is in)
  MCP_MUX_EXTRA_ARGS       more `mcp-mux serve` arguments (shell words)
  AUTH_CLIENT_PUBLIC_URL   run mcp-mux with this --public-url (an https one
                           makes it use its client metadata document where
                           the authorization server takes them); links on it
                           are opened on the local address instead
  AUTH_CLIENT_DIR          keep the registry, database and mcp-mux.log in
                           this directory (default: a temporary one, removed)
  AUTH_CLIENT_DEADLINE     seconds before giving up (default 25, under the
                           suite's default 30 s timeout, so that this still
                           stops mcp-mux and says why)
"""

import ctypes
import html
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

MAX_AUTHORIZATIONS = 3
MAX_REDIRECTS = 10
SERVER = "backend"
TOOL = "test-tool"
PROTOCOL_VERSION = "2025-11-25"  # this client <-> mcp-mux

START = time.monotonic()
DEADLINE = START + float(os.environ.get("AUTH_CLIENT_DEADLINE", "25"))


def log(*parts):
    print(f"[auth_client +{time.monotonic() - START:5.2f}s]", *parts, file=sys.stderr, flush=True)


def remaining(cap=10.0):
    left = DEADLINE - time.monotonic()
    if left <= 0:
        raise TimeoutError("AUTH_CLIENT_DEADLINE passed")
    return min(cap, left)


# ------------------------------------------------------------------ HTTP


def request(method, url, body=None, headers=None):
    """One HTTP exchange, no redirect followed: (status, headers, bytes)."""
    parts = urllib.parse.urlsplit(url)
    connection = (http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection)(
        parts.hostname, parts.port, timeout=remaining())
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        connection.request(method, target, body=data, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def page_text(body):
    """What an mcp-mux page says: its paragraphs (the reason of a refusal
    is its <p class="error">)."""
    text = body.decode(errors="replace")
    paragraphs = re.findall(r"<p[^>]*>(.*?)</p>", text, re.S)
    if not paragraphs:
        return " ".join(text.split())[:300]
    return " ".join(" ".join(html.unescape(re.sub(r"<[^>]+>", "", p)).split()) for p in paragraphs)


# ------------------------------------------------------------------ mcp-mux


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    # PR_SET_PDEATHSIG: mcp-mux gets SIGTERM should this process die
    # without stopping it (SIGKILL), so that it never outlives the scenario.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Mux:
    def __init__(self, work, backend_url, context):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.public = os.environ.get("AUTH_CLIENT_PUBLIC_URL", "").rstrip("/")
        self.log_path = os.path.join(work, "mcp-mux.log")
        env = dict(os.environ)
        auth = ["      type: oauth"]
        if context.get("client_id"):
            auth.append(f"      client_id: {json.dumps(context['client_id'])}")
            if context.get("client_secret"):
                # Through the environment, as an operator would give it.
                env["CONFORMANCE_CLIENT_SECRET"] = context["client_secret"]
                auth.append('      client_secret: "${CONFORMANCE_CLIENT_SECRET}"')
        registry = os.path.join(work, "registry.yaml")
        with open(registry, "w") as f:
            # The URL as the suite gave it (http://localhost:PORT/mcp): the
            # resource its metadata names is on `localhost` too.
            f.write(
                "servers:\n"
                f"  {SERVER}:\n"
                f"    url: {json.dumps(backend_url)}\n"
                "    description: the conformance scenario's MCP server\n"
                "    auth:\n" + "\n".join(auth) + "\n"
            )
        data = os.path.join(work, "data")
        os.makedirs(data, exist_ok=True)
        binary = os.environ.get("MCP_MUX_BIN") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "debug", "mcp-mux")
        argv = [
            binary, "serve",
            "--bind", f"127.0.0.1:{self.port}",
            "--registry", registry,
            "--database-url", f"sqlite://{data}/mcp-mux.db?mode=rwc",
            "--data-dir", data,
        ]
        if self.public:
            argv += ["--public-url", self.public]
        argv += shlex.split(os.environ.get("MCP_MUX_EXTRA_ARGS", ""))
        env.setdefault("RUST_LOG", "info,mcp_mux=debug")
        log("starting", " ".join(shlex.quote(a) for a in argv))
        # Never on the suite's pipes: the suite waits until its child's
        # stdout and stderr close, which an mcp-mux holding them would stall.
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
            env=env, start_new_session=True, preexec_fn=die_with_parent,
        )

    def local(self, url):
        """A URL mcp-mux gave, on the address it listens on."""
        url = urllib.parse.urljoin(self.base + "/", url)
        if self.public and (url == self.public or url.startswith(self.public + "/")):
            return self.base + url[len(self.public):]
        return url

    def wait_healthy(self, seconds=20):
        until = min(DEADLINE, time.monotonic() + seconds)
        while time.monotonic() < until:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mcp-mux exited with {self.proc.returncode}")
            try:
                if request("GET", self.base + "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("mcp-mux did not answer 200 on /healthz")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.logf.close()

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


# ------------------------------------------------------------------ authorization


class Authorizer:
    """Opens authorization links as the session's user, at most MAX_AUTHORIZATIONS."""

    def __init__(self, mux):
        self.mux = mux
        self.done = 0

    def open(self, link):
        """Follows one link to its last hop; True if that hop is a 2xx."""
        if self.done >= MAX_AUTHORIZATIONS:
            log(f"not opening a link past {MAX_AUTHORIZATIONS} authorizations")
            return False
        self.done += 1
        log(f"authorization {self.done}: opening {link}")
        url = self.mux.local(link)
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, body = request("GET", url)
            shown = urllib.parse.urlsplit(url)
            log(f"  GET {shown.scheme}://{shown.netloc}{shown.path} -> {status}")
            if status in (301, 302, 303, 307, 308) and "location" in headers:
                url = self.mux.local(urllib.parse.urljoin(url, headers["location"]))
                continue
            if 200 <= status < 300:
                log("  page:", page_text(body))
                return True
            log(f"  refused ({status}):", page_text(body))
            return False
        log(f"  more than {MAX_REDIRECTS} redirects")
        return False


def links_in(value):
    """Authorization links an MCP answer names (in a tool error's text, or
    a -32042 error's data)."""
    found = []
    if isinstance(value, dict):
        for v in value.values():
            found += links_in(v)
    elif isinstance(value, list):
        for v in value:
            found += links_in(v)
    elif isinstance(value, str):
        found += [u.rstrip(".,;") for u in re.findall(r"https?://[^\s\"'<>)]+", value)
                  if "/authorize/" in urllib.parse.urlsplit(u).path]
    return list(dict.fromkeys(found))


# ------------------------------------------------------------------ MCP


class Session:
    def __init__(self, url, token=None):
        self.url = url
        self.headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.next_id = 1

    def post(self, message):
        status, headers, body = request("POST", self.url, message, self.headers)
        if "mcp-session-id" in headers:
            self.headers["Mcp-Session-Id"] = headers["mcp-session-id"]
        if "id" not in message:
            return status, None
        if headers.get("content-type", "").startswith("text/event-stream"):
            answer = None
            for event in body.decode(errors="replace").replace("\r\n", "\n").split("\n\n"):
                data = "\n".join(line[5:].lstrip() for line in event.splitlines() if line.startswith("data:"))
                if data:
                    parsed = json.loads(data)
                    if isinstance(parsed, dict) and parsed.get("id") == message["id"]:
                        answer = parsed
            return status, answer
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, {"error": {"message": body[:300].decode(errors="replace")}}

    def call(self, method, params=None):
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        self.next_id += 1
        status, answer = self.post(message)
        log(f"{method} -> HTTP {status}", json.dumps(answer)[:600] if answer else "")
        return answer

    def notify(self, method):
        self.post({"jsonrpc": "2.0", "method": method})


def authorized_call(session, authorizer, method, params=None):
    """A call, made again after each authorization its failure asks for;
    its result, or None."""
    while True:
        answer = session.call(method, params)
        result = (answer or {}).get("result")
        if result is not None and not result.get("isError"):
            return result
        links = links_in(answer or {})
        if not links:
            return None
        if not all(authorizer.open(link) for link in links):
            return None


def backend_state(mux, created):
    """What mcp-mux says of the backend in GET /session/<id> (its state, why,
    and its authorization), logged; {} when it cannot say."""
    try:
        _, _, body = request("GET", f"{mux.base}/session/{created['session_id']}")
        server = next(s for s in json.loads(body).get("servers", []) if s.get("name") == SERVER)
    except Exception as error:  # noqa: BLE001 - only diagnostics
        log(f"GET /session/<id>: {type(error).__name__}: {error}")
        return {}
    log(f"session: {SERVER} is {server.get('state')}: {server.get('reason')};",
        "authorization", json.dumps(server.get("authorization")))
    return server


def find_tool(listed):
    names = [tool.get("name", "") for tool in (listed or {}).get("tools", [])]
    found = next((n for n in names if n == TOOL), None) or next((n for n in names if n.endswith(TOOL)), None)
    if found is None:
        log(f"tools/list has no {TOOL}: {names}")
    return found


def run(mux):
    mux.wait_healthy()
    status, _, body = request("POST", mux.base + "/create-session", {"servers": [SERVER]},
                              {"Content-Type": "application/json"})
    created = json.loads(body) if body else {}
    log(f"create-session -> {status}", json.dumps(created)[:800])
    if status != 201:
        return False
    authorizer = Authorizer(mux)
    link = ((created.get("authorization") or {}).get(SERVER) or {}).get("url")
    if link:
        authorizer.open(link)
    else:
        log(f"create-session named no authorization link for {SERVER}")

    session = Session(mux.local(created["mcp_url"]), created.get("session_token"))
    init = authorized_call(session, authorizer, "initialize", {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "mcp-mux-conformance-auth", "version": "0"},
    })
    if init is None:
        backend_state(mux, created)
        return False
    session.headers["MCP-Protocol-Version"] = init.get("protocolVersion", PROTOCOL_VERSION)
    session.notify("notifications/initialized")
    tool = find_tool(authorized_call(session, authorizer, "tools/list"))
    while tool is None:
        # A backend waiting for authorization lists nothing: the session's
        # page says so, with the link, which its user would open.
        authorization = backend_state(mux, created).get("authorization") or {}
        if authorization.get("status") != "needed" or not authorization.get("url"):
            return False
        if not authorizer.open(authorization["url"]):
            return False
        tool = find_tool(authorized_call(session, authorizer, "tools/list"))
    result = authorized_call(session, authorizer, "tools/call", {"name": tool, "arguments": {}})
    log(f"the call of {tool}", "succeeded" if result is not None else "failed",
        f"after {authorizer.done} authorization(s)")
    backend_state(mux, created)
    return result is not None


def main():
    if len(sys.argv) < 2:
        print("usage: auth_client.py <server URL>", file=sys.stderr)
        return 2
    backend_url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "?")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    log(f"scenario {scenario}, server {backend_url}, context keys {sorted(context)}")

    keep = os.environ.get("AUTH_CLIENT_DIR")
    if keep:
        os.makedirs(keep, exist_ok=True)
    work = keep or tempfile.mkdtemp(prefix="mcp-mux-auth.")

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping")
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    mux = None
    ok = False
    try:
        mux = Mux(work, backend_url, context)
        ok = run(mux)
    except Exception as error:  # noqa: BLE001 - say what failed, then clean up
        log(f"error: {type(error).__name__}: {error}")
    finally:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if mux is not None:
            mux.stop()
            if not ok:
                log("mcp-mux log (end):\n" + mux.log_tail())
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
