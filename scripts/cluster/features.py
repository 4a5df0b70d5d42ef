#!/usr/bin/env python3
"""Every MCP feature through a balancer that sends each request to the next
node, with the official Python SDK client (PyPI `mcp` 2.x).

Started by scripts/cluster.sh against a session URL on a round-robin nginx
in front of three mcp-mux nodes. The balancer names the node that answered
each request in an `X-Mux-Upstream` header; every check is followed by a `#`
line listing the requests it took and the node each reached, so that one can
see a backend's request answered through another node than the one that
asked.

    features.py URL --mode legacy|stateless [--node n1=127.0.0.1:PORT]...
                [--demo-fingerprint HEX] [--label NAME]

`legacy` initializes an MCP session (revision 2025-11-25, with the GET
stream the SDK opens) and checks: tools/list, calls to both backends,
progress, sampling, elicitation and roots (requests from the backend,
answered in later POSTs), logging/setLevel (a backend's log messages at or
above the level, none below), resources/subscribe with the reference server's
updates, and resources/list_changed after a tool registers a resource.
`stateless` speaks revision 2026-07-28 (server/discover, no MCP session) and
checks the same calls, progress, sampling, elicitation and roots as
multi-round-trip requests (an input_required result, then a retry carrying
`requestState`) and subscriptions/listen (resource updates, list_changed).

Prints `ok - ...` / `not ok - ...` per check; exits 1 if any failed. Each
step is bounded (STEP_TIMEOUT_S), so a feature that fails across nodes fails
fast instead of hanging the run.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated

# The end-to-end clients' TAP lines (scripts/e2e/tap.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
import tap  # noqa: E402
from tap import check  # noqa: E402

STEP_TIMEOUT_S = 15
OVERALL_TIMEOUT_S = 150
NOTIFICATION_WAIT_S = 5
MODEL_ANSWER = "sampled by the cluster client"
ELICITED_NAME = "Cluster Tester"
ROOT_URI = "file:///cluster/root"
PROGRESS_STEPS = 3

warnings.filterwarnings("ignore")  # the SDK marks the legacy features deprecated


def short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def flatten(exc: BaseException) -> str:
    if hasattr(exc, "exceptions"):
        return "; ".join(flatten(e) for e in exc.exceptions)
    if isinstance(exc, TimeoutError):
        return f"no answer within {STEP_TIMEOUT_S} s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def result_text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", "") == "text")


class Trace:
    """Every HTTP request the client sent, in order, with the node that answered it."""

    def __init__(self, nodes: dict[str, str]):
        self.nodes = nodes
        self.entries: list[dict[str, Any]] = []
        self.by_request: dict[int, dict[str, Any]] = {}

    async def on_request(self, request: httpx2.Request) -> None:
        entry = {"what": describe(request), "node": "?", "status": None}
        self.entries.append(entry)
        self.by_request[id(request)] = entry

    async def on_response(self, response: httpx2.Response) -> None:
        entry = self.by_request.pop(id(response.request), None)
        if entry is not None:
            upstream = response.headers.get("x-mux-upstream", "?")
            entry["node"] = self.nodes.get(upstream, upstream)
            entry["status"] = response.status_code

    def mark(self) -> int:
        return len(self.entries)

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.entries[mark:]

    def path(self, mark: int) -> str:
        return ", ".join(f"{e['what']} -> {e['node']} {e['status'] or '(no answer)'}" for e in self.since(mark)) or "no request"


def describe(request: httpx2.Request) -> str:
    if request.method != "POST":
        return "GET stream" if request.method == "GET" else request.method
    try:
        message = json.loads(request.content)
    except Exception:  # a streamed body: nothing to name
        return "POST"
    if not isinstance(message, dict):
        return "POST"
    if "method" in message:
        params = message.get("params") or {}
        what = message["method"]
        if isinstance(params, dict):
            if params.get("name"):
                what += f" {params['name']}"
            elif params.get("uri"):
                what += f" {params['uri']}"
            elif params.get("level"):
                what += f" {params['level']}"
            if params.get("requestState"):
                what += " (retry with requestState)"
        return what
    return f"answer to {message.get('id')}"


class Inbox:
    """What the server sent outside answers: notifications and log messages."""

    def __init__(self) -> None:
        self.notifications: list[Any] = []
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self.progress: list[float] = []
        self.asked: list[str] = []

    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            return
        root = getattr(message, "root", message)
        self.notifications.append(root)
        if getattr(root, "method", "") == "notifications/message":
            self.logs.append(root.params)

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        if not any(p is params for p in self.logs):
            self.logs.append(params)

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append(progress)

    async def sampling(self, _context: Any, _params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.asked.append("sampling")
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=MODEL_ANSWER),
            model="cluster-model",
            stop_reason="endTurn",
        )

    async def elicitation(self, _context: Any, _params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append("elicitation")
        return types.ElicitResult(action="accept", content={"name": ELICITED_NAME, "check": True})

    async def roots(self, _context: Any) -> types.ListRootsResult:
        self.asked.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri=ROOT_URI, name="cluster root")])

    def methods(self) -> list[str]:
        return [getattr(n, "method", "?") for n in self.notifications]

    def log_texts(self) -> list[str]:
        return [f"{p.level}: {p.data}" for p in self.logs]

    async def wait(self, predicate, seconds: float = NOTIFICATION_WAIT_S) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return True
            await anyio.sleep(0.05)
        return predicate()


class Run:
    def __init__(self, args: argparse.Namespace, trace: Trace):
        self.args, self.trace = args, trace

    async def step(self, name: str, body) -> bool:
        """Runs one bounded check; prints it and the path its requests took."""
        mark = self.trace.mark()
        try:
            with anyio.fail_after(STEP_TIMEOUT_S):
                passed, reason = await body()
        except Exception as exc:  # a failure of the feature, reported as such
            passed, reason = False, short(flatten(exc))
        ok = check(self.args.label, name, passed, reason)
        print(f"#   {self.trace.path(mark)}", flush=True)
        return ok


async def common_checks(run: Run, client: Client, inbox: Inbox, names: list[str]) -> None:
    """Calls, progress, sampling, elicitation and roots: the same at both revisions."""
    label = run.args.label

    async def echo():
        res = await client.call_tool("everything__echo", {"message": "hello cluster"})
        return not res.is_error and "hello cluster" in result_text(res), short(result_text(res))

    async def add():
        res = await client.call_tool("demo__add", {"a": 2, "b": 3})
        value = (res.structured_content or {}).get("result", result_text(res).strip())
        try:
            good = not res.is_error and float(value) == 5.0
        except (TypeError, ValueError):
            good = False
        return good, short(result_text(res))

    async def whoami():
        res = await client.call_tool("demo__whoami", {})
        who = res.structured_content or {}
        good = not res.is_error and who.get("authenticated") is True
        if run.args.demo_fingerprint:
            good = good and who.get("token_sha256_prefix") == run.args.demo_fingerprint
        return good, short(who)

    async def progress():
        inbox.progress.clear()
        res = await client.call_tool(
            "everything__trigger-long-running-operation",
            {"duration": 1, "steps": PROGRESS_STEPS},
            progress_callback=inbox.on_progress,
        )
        good = not res.is_error and "completed" in result_text(res) and len(inbox.progress) == PROGRESS_STEPS
        return good, f"{len(inbox.progress)} progress notifications {inbox.progress}, result {short(result_text(res), 120)}"

    async def sampling():
        res = await client.call_tool("everything__trigger-sampling-request", {"prompt": "say something", "maxTokens": 20})
        return not res.is_error and MODEL_ANSWER in result_text(res), short(result_text(res))

    async def elicitation():
        res = await client.call_tool("everything__trigger-elicitation-request", {})
        return not res.is_error and ELICITED_NAME in result_text(res), short(result_text(res))

    async def roots():
        res = await client.call_tool("everything__get-roots-list", {})
        return not res.is_error and ROOT_URI in result_text(res), short(result_text(res))

    await run.step("tools/call everything__echo", echo)
    await run.step("tools/call demo__add adds 2 + 3", add)
    await run.step("tools/call demo__whoami sees this session's token", whoami)
    await run.step(f"progress: {PROGRESS_STEPS} notifications/progress, then the result", progress)
    for tool, feature, body in (
        ("everything__trigger-sampling-request", "sampling: the backend's request answered by the client's model", sampling),
        ("everything__trigger-elicitation-request", "elicitation: the backend's form answered by the client", elicitation),
        ("everything__get-roots-list", "roots: the backend lists the client's roots", roots),
    ):
        if tool in names:
            await run.step(feature, body)
        else:
            check(label, feature, False, f"{tool} is not listed")


async def legacy(run: Run, client: Client, inbox: Inbox) -> None:
    label = run.args.label
    names: list[str] = []

    async def tools():
        names.extend(t.name for t in (await client.list_tools()).tools)
        wanted = ["everything__echo", "everything__trigger-sampling-request", "everything__trigger-elicitation-request",
                  "everything__get-roots-list", "demo__add", "demo__whoami"]
        missing = [w for w in wanted if w not in names]
        return not missing, f"missing {missing} among {len(names)} tools"

    await run.step("tools/list has both backends' tools", tools)
    await common_checks(run, client, inbox, names)

    quiet_uri = "everything+demo://resource/dynamic/text/1"
    heard_uri = "everything+demo://resource/dynamic/text/2"

    def logged(uri: str) -> bool:
        backend_uri = uri.split("+", 1)[1]
        return any(backend_uri in str(p.data) and "Subscribe" in str(p.data) for p in inbox.logs)

    async def logging():
        # At `error`, the backend's info line about a subscription must not
        # arrive; at `info` it must.
        await client.set_logging_level("error")
        await client.subscribe_resource(quiet_uri)
        await anyio.sleep(1.5)
        if logged(quiet_uri):
            return False, f"an info message arrived at level error: {inbox.log_texts()}"
        await client.set_logging_level("info")
        await client.subscribe_resource(heard_uri)
        if not await inbox.wait(lambda: logged(heard_uri)):
            return False, f"no info message about the subscription at level info within {NOTIFICATION_WAIT_S} s; got {inbox.log_texts() or 'none'}"
        return True, ""

    async def updates():
        before = len(inbox.notifications)

        def updated() -> bool:
            return any(getattr(n, "method", "") == "notifications/resources/updated" and str(n.params.uri) == heard_uri
                       for n in inbox.notifications[before:])

        res = await client.call_tool("everything__toggle-subscriber-updates", {})
        if res.is_error:
            return False, short(result_text(res))
        try:
            if not await inbox.wait(updated):
                return False, f"no notifications/resources/updated for {heard_uri} within {NOTIFICATION_WAIT_S} s; got {inbox.methods()[before:] or 'nothing'}"
        finally:
            await client.call_tool("everything__toggle-subscriber-updates", {})
        for uri in (quiet_uri, heard_uri):
            await client.unsubscribe_resource(uri)
        return True, ""

    async def list_changed():
        before = len(inbox.notifications)
        name = f"cluster-{uuid.uuid4().hex[:8]}.txt"
        data = "data:text/plain;base64," + base64.b64encode(b"made through a balancer").decode()
        res = await client.call_tool("everything__gzip-file-as-resource", {"name": name, "data": data})
        if res.is_error:
            return False, short(result_text(res))

        def announced() -> bool:
            return "notifications/resources/list_changed" in [getattr(n, "method", "") for n in inbox.notifications[before:]]

        if not await inbox.wait(announced):
            return False, f"no notifications/resources/list_changed within {NOTIFICATION_WAIT_S} s; got {inbox.methods()[before:] or 'nothing'}"
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
        wanted = f"everything+demo://resource/session/{name}"
        if wanted not in uris:
            return False, f"resources/list lacks {wanted}: {short([u for u in uris if 'session' in u])}"
        read = await client.read_resource(wanted)
        return bool(read.contents), f"resources/read {wanted} answered no contents"

    await run.step("logging/setLevel: the backend's messages at or above the level arrive, below it not", logging)
    await run.step("resources/subscribe: the backend's notifications/resources/updated arrive", updates)
    await run.step("list_changed: a resource a tool registers is announced and listed", list_changed)


async def stateless(run: Run, client: Client, inbox: Inbox) -> None:
    names: list[str] = []

    async def tools():
        names.extend(t.name for t in (await client.list_tools()).tools)
        wanted = ["everything__echo", "everything__trigger-sampling-request", "demo__add"]
        missing = [w for w in wanted if w not in names]
        return not missing, f"missing {missing} among {len(names)} tools"

    await run.step("tools/list has both backends' tools", tools)
    mark = run.trace.mark()
    await common_checks(run, client, inbox, names)
    retries = [e for e in run.trace.since(mark) if "requestState" in e["what"]]
    check(run.args.label, f"input rounds were retried with requestState ({len(retries)} retries)", len(retries) >= 2,
          "the backend's requests were not turned into input_required results")

    uri = "everything+demo://resource/dynamic/text/3"

    async def listening(filter_: dict[str, Any], body) -> tuple[bool, str]:
        """Runs BODY(events, wait) while a subscriptions/listen stream with
        FILTER_ is open, its events collected into `events`."""
        events: list[Any] = []
        async with client.listen(**filter_) as sub:
            async with anyio.create_task_group() as tg:

                async def collect():
                    async for event in sub:
                        events.append(event)

                tg.start_soon(collect)

                async def wait(predicate) -> bool:
                    deadline = time.monotonic() + NOTIFICATION_WAIT_S
                    while time.monotonic() < deadline and not predicate():
                        await anyio.sleep(0.05)
                    return predicate()

                try:
                    return await body(sub, events, wait)
                finally:
                    tg.cancel_scope.cancel()

    async def updates():
        async def body(sub, events, wait):
            honored = list(sub.honored.resource_subscriptions or [])
            res = await client.call_tool("everything__toggle-subscriber-updates", {})
            if res.is_error:
                return False, short(result_text(res))
            try:
                if not await wait(lambda: any(isinstance(e, ResourceUpdated) and e.uri == uri for e in events)):
                    return False, f"acknowledged {honored}; no update for {uri} within {NOTIFICATION_WAIT_S} s; events {short(events)}"
                return True, ""
            finally:
                await client.call_tool("everything__toggle-subscriber-updates", {})

        return await listening({"resource_subscriptions": [uri]}, body)

    async def list_changed():
        async def body(sub, events, wait):
            name = f"cluster-{uuid.uuid4().hex[:8]}.txt"
            data = "data:text/plain;base64," + base64.b64encode(b"made through a balancer").decode()
            res = await client.call_tool("everything__gzip-file-as-resource", {"name": name, "data": data})
            if res.is_error:
                return False, short(result_text(res))
            if not await wait(lambda: any(isinstance(e, ResourcesListChanged) for e in events)):
                return False, f"no resources list_changed within {NOTIFICATION_WAIT_S} s; events {short(events)}"
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
            wanted = f"everything+demo://resource/session/{name}"
            if wanted not in uris:
                return False, f"list_changed arrived, but resources/list lacks {wanted}: {short([u for u in uris if 'session' in u])}"
            return True, ""

        return await listening({"resources_list_changed": True}, body)

    await run.step("subscriptions/listen: the backend's resource updates arrive", updates)
    await run.step("subscriptions/listen: list_changed after a tool registers a resource, which is then listed", list_changed)


async def main_async(args: argparse.Namespace) -> None:
    nodes = {}
    for spec in args.node:
        name, _, address = spec.partition("=")
        nodes[address] = name
    trace = Trace(nodes)
    inbox = Inbox()
    http = httpx2.AsyncClient(
        timeout=httpx2.Timeout(STEP_TIMEOUT_S, read=None),
        event_hooks={"request": [trace.on_request], "response": [trace.on_response]},
    )
    client = Client(
        streamable_http_client(args.url, http_client=http),
        mode="legacy" if args.mode == "legacy" else "auto",
        read_timeout_seconds=STEP_TIMEOUT_S,
        sampling_callback=inbox.sampling,
        elicitation_callback=inbox.elicitation,
        list_roots_callback=inbox.roots,
        logging_callback=inbox.on_log,
        message_handler=inbox.on_message,
        cache=None,
    )
    run = Run(args, trace)
    mark = trace.mark()
    async with http, client:
        want = "2025-11-25" if args.mode == "legacy" else "2026-07-28"
        check(args.label, f"connect (protocol {client.protocol_version})", client.protocol_version == want, f"expected {want}")
        print(f"#   {trace.path(mark)}", flush=True)
        if args.mode == "legacy":
            await legacy(run, client, inbox)
        else:
            await stateless(run, client, inbox)
    answered = [e for e in trace.entries if e["node"] in nodes.values()]
    spread = {name: sum(1 for e in answered if e["node"] == name) for name in sorted(nodes.values())}
    switches = sum(1 for a, b in zip(answered, answered[1:]) if a["node"] != b["node"])
    print(f"# {args.label}: {len(trace.entries)} HTTP requests, by node {spread}; "
          f"{switches} of {max(len(answered) - 1, 0)} consecutive pairs changed node", flush=True)
    check(args.label, "consecutive requests alternated between the nodes",
          len([n for n in spread.values() if n > 0]) == len(nodes) and switches >= (len(answered) - 1) // 2,
          f"by node {spread}, {switches} changes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--mode", choices=["legacy", "stateless"], required=True)
    parser.add_argument("--node", action="append", default=[], help="NAME=HOST:PORT, as the balancer names it")
    parser.add_argument("--demo-fingerprint", default="")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    args.label = args.label or f"python {args.mode}"
    async def bounded() -> None:
        with anyio.fail_after(OVERALL_TIMEOUT_S):
            await main_async(args)

    try:
        anyio.run(bounded)
    except Exception as exc:
        check(args.label, "session ran to the end", False, short(flatten(exc)))
    return 1 if tap.failures else 0


if __name__ == "__main__":
    sys.exit(main())
