#!/usr/bin/env node
// Every MCP feature through mcp-remote, the stdio bridge desktop hosts put in
// front of a session URL, with the URL on a balancer that sends each request
// to the next mcp-mux node. Started by scripts/cluster.sh.
//
// It plays a desktop host that can sample, elicit and list roots: spawns
// `mcp-remote <url> [BRIDGE-ARG...]` and speaks newline-delimited JSON-RPC
// (revision 2025-11-25) on its stdin/stdout. Checks: tools/list and calls to
// both backends, progress, sampling, elicitation, roots, logging/setLevel,
// resources/subscribe with the reference server's updates, and
// resources/list_changed after a tool registers a resource. With
// `--bridge-arg --protocol --bridge-arg auto` the bridge speaks revision
// 2026-07-28 to mcp-mux: the backend's requests come back as input_required
// results the bridge answers with a retry carrying `requestState`, and
// subscriptions ride on a subscriptions/listen stream. At that revision a
// backend's log messages reach a client only on answer streams, and the
// reference server sends its own outside any request: the log check is then
// limited to setLevel being answered.
//
//   node remote_host.mjs URL [--label NAME] [--node-modules DIR]
//        [--demo-fingerprint HEX] [--bridge-arg ARG]...
//
// Prints one `ok - ...` / `not ok - ...` line per check; exit code 1 if any
// failed. Every request is bounded (STEP_TIMEOUT_MS), so a feature that fails
// across nodes fails fast.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { randomBytes } from "node:crypto";

const STEP_TIMEOUT_MS = 15_000;
const NOTIFICATION_WAIT_MS = 5_000;
const OVERALL_TIMEOUT_MS = 170_000;
const MODEL_ANSWER = "sampled by the cluster host";
const ELICITED_NAME = "Cluster Host";
const ROOT_URI = "file:///cluster/host-root";
const PROGRESS_STEPS = 3;

const args = { label: "mcp-remote", nodeModules: "", demoFingerprint: "", bridgeArgs: [] };
{
  const rest = [];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--label") args.label = argv[++i];
    else if (a === "--node-modules") args.nodeModules = argv[++i];
    else if (a === "--demo-fingerprint") args.demoFingerprint = argv[++i];
    else if (a === "--bridge-arg") args.bridgeArgs.push(argv[++i]);
    else rest.push(a);
  }
  if (rest.length !== 1) {
    console.error("usage: remote_host.mjs URL [--label NAME] [--node-modules DIR] [--demo-fingerprint HEX] [--bridge-arg ARG]...");
    process.exit(2);
  }
  args.url = rest[0];
}
const modern = args.bridgeArgs.includes("auto");

function findMcpRemote(nodeModules) {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [nodeModules, join(here, "..", "..", ".e2e", "node", "node_modules")].filter(Boolean);
  for (const dir of candidates) {
    const proxy = join(dir, "mcp-remote", "dist", "proxy.js");
    if (existsSync(proxy)) return proxy;
  }
  throw new Error(`mcp-remote not found in ${candidates.join(", ")}`);
}

let failures = 0;
function check(name, passed, reason = "") {
  if (passed) console.log(`ok - ${args.label}: ${name}`);
  else {
    failures++;
    console.log(`not ok - ${args.label}: ${name}: ${reason}`);
  }
  return passed;
}
const short = (v, n = 300) => {
  const s = (typeof v === "string" ? v : JSON.stringify(v) ?? String(v)).replace(/\s+/g, " ");
  return s.length > n ? `${s.slice(0, n)}...` : s;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const scratch = mkdtempSync(join(tmpdir(), "mcp-remote-cluster-"));
const child = spawn(process.execPath, [findMcpRemote(args.nodeModules), args.url, ...args.bridgeArgs], {
  stdio: ["pipe", "pipe", "pipe"],
  env: { ...process.env, MCP_REMOTE_CONFIG_DIR: scratch },
});
let stderr = "";
child.stderr.on("data", (d) => {
  stderr += d;
  if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
});
let exited = null;
const pending = new Map();
child.on("exit", (code, signal) => {
  exited = { code, signal };
  for (const { reject } of pending.values()) reject(new Error(`mcp-remote exited (code ${code}, signal ${signal})`));
  pending.clear();
});

// What the server sent outside answers, and what it asked of the host.
const notifications = [];
const asked = [];
const answers = {
  "sampling/createMessage": () => ({
    role: "assistant",
    content: { type: "text", text: MODEL_ANSWER },
    model: "cluster-model",
    stopReason: "endTurn",
  }),
  "elicitation/create": () => ({ action: "accept", content: { name: ELICITED_NAME, check: true } }),
  "roots/list": () => ({ roots: [{ uri: ROOT_URI, name: "cluster host root" }] }),
  ping: () => ({}),
};
createInterface({ input: child.stdout }).on("line", (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  if (msg.id !== undefined && pending.has(msg.id) && (msg.result !== undefined || msg.error !== undefined)) {
    const { resolve } = pending.get(msg.id);
    pending.delete(msg.id);
    resolve(msg);
  } else if (msg.method && msg.id !== undefined) {
    asked.push(msg.method);
    const answer = answers[msg.method];
    send({ jsonrpc: "2.0", id: msg.id, ...(answer ? { result: answer() } : { error: { code: -32601, message: `${msg.method} is not supported by this host` } }) });
  } else if (msg.method) {
    notifications.push(msg);
  }
});

function send(msg) {
  child.stdin.write(`${JSON.stringify(msg)}\n`);
}
let nextId = 1;
function request(method, params) {
  if (exited) return Promise.reject(new Error(`mcp-remote already exited (code ${exited.code})`));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`${method}: no answer within ${STEP_TIMEOUT_MS / 1000} s`));
    }, STEP_TIMEOUT_MS);
    pending.set(id, {
      resolve: (m) => (clearTimeout(timer), resolve(m)),
      reject: (e) => (clearTimeout(timer), reject(e)),
    });
    send({ jsonrpc: "2.0", id, method, params });
  });
}
const textOf = (result) => (result?.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(" ");
async function callTool(name, toolArgs, meta) {
  const msg = await request("tools/call", { name, arguments: toolArgs, ...(meta ? { _meta: meta } : {}) });
  if (msg.error) return { error: msg.error, text: "", isError: true };
  return { result: msg.result, text: textOf(msg.result), isError: msg.result?.isError === true };
}
async function waitFor(predicate, ms = NOTIFICATION_WAIT_MS) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await sleep(50);
  }
  return predicate();
}
// One bounded check: BODY returns [passed, reason]; a throw is a failure.
async function step(name, body) {
  try {
    const [passed, reason] = await body();
    return check(name, passed, reason);
  } catch (err) {
    return check(name, false, err.message);
  }
}
const methodsSince = (n) => notifications.slice(n).map((m) => m.method);

async function main() {
  const init = await request("initialize", {
    protocolVersion: "2025-11-25",
    capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
    clientInfo: { name: "mcp-mux-cluster-host", version: "1.0.0" },
  });
  if (!check(`initialize (protocol ${init.result?.protocolVersion})`, init.result?.protocolVersion !== undefined, short(init.error ?? init))) return;
  send({ jsonrpc: "2.0", method: "notifications/initialized" });

  let names = [];
  await step("tools/list has both backends' tools", async () => {
    const listed = await request("tools/list", {});
    names = (listed.result?.tools ?? []).map((t) => t.name);
    // At 2026-07-28 the shared MCP session of stateless clients tells
    // backends of sampling and elicitation only: no roots tool there.
    const wanted = ["everything__echo", "everything__trigger-sampling-request", "everything__trigger-elicitation-request", "demo__add", "demo__whoami"];
    if (!modern) wanted.push("everything__get-roots-list");
    const missing = wanted.filter((w) => !names.includes(w));
    return [missing.length === 0, `missing ${short(missing)} among ${names.length} tools ${short(listed.error ?? "")}`];
  });
  await step("tools/call everything__echo", async () => {
    const r = await callTool("everything__echo", { message: "hello cluster" });
    return [!r.isError && r.text.includes("hello cluster"), short(r.error ?? r.result)];
  });
  await step("tools/call demo__add adds 20 + 22", async () => {
    const r = await callTool("demo__add", { a: 20, b: 22 });
    const value = r.result?.structuredContent?.result ?? Number.parseFloat(r.text);
    return [!r.isError && Number(value) === 42, short(r.error ?? r.result)];
  });
  await step("tools/call demo__whoami sees this session's token", async () => {
    const r = await callTool("demo__whoami", {});
    let who = r.result?.structuredContent;
    if (!who) {
      try {
        who = JSON.parse(r.text);
      } catch {
        who = {};
      }
    }
    return [!r.isError && who?.authenticated === true && (!args.demoFingerprint || who.token_sha256_prefix === args.demoFingerprint), short(r.error ?? who)];
  });
  await step(`progress: ${PROGRESS_STEPS} notifications/progress, then the result`, async () => {
    const token = `progress-${randomBytes(4).toString("hex")}`;
    const r = await callTool("everything__trigger-long-running-operation", { duration: 1, steps: PROGRESS_STEPS }, { progressToken: token });
    const seen = notifications.filter((m) => m.method === "notifications/progress" && m.params?.progressToken === token).map((m) => m.params.progress);
    return [!r.isError && r.text.includes("completed") && seen.length === PROGRESS_STEPS, `${seen.length} progress notifications ${short(seen)}, result ${short(r.error ?? r.text, 120)}`];
  });
  await step("sampling: the backend's request answered by the host's model", async () => {
    const r = await callTool("everything__trigger-sampling-request", { prompt: "say something", maxTokens: 20 });
    return [!r.isError && r.text.includes(MODEL_ANSWER), short(r.error ?? r.text)];
  });
  await step("elicitation: the backend's form answered by the host", async () => {
    const r = await callTool("everything__trigger-elicitation-request", {});
    return [!r.isError && r.text.includes(ELICITED_NAME), short(r.error ?? r.text)];
  });
  if (modern && !names.includes("everything__get-roots-list")) console.log(`# ${args.label}: roots not checked: everything__get-roots-list is not listed at 2026-07-28`);
  else await step("roots: the backend lists the host's roots", async () => {
    const r = await callTool("everything__get-roots-list", {});
    return [!r.isError && r.text.includes(ROOT_URI), short(r.error ?? r.text)];
  });

  const quietUri = "everything+demo://resource/dynamic/text/1";
  const heardUri = "everything+demo://resource/dynamic/text/2";
  const logged = (uri, from = 0) =>
    notifications.slice(from).some((m) => m.method === "notifications/message" && String(m.params?.data).includes(uri.split("+")[1]) && String(m.params?.data).includes("Subscribe"));
  await step(modern ? "logging/setLevel answered (at 2026-07-28 carried as the requests' log level)" : "logging/setLevel: the backend's messages at or above the level arrive, below it not", async () => {
    const from = notifications.length;
    const low = await request("logging/setLevel", { level: "error" });
    if (low.error) return [false, `setLevel error: ${short(low.error)}`];
    const first = await request("resources/subscribe", { uri: quietUri });
    if (first.error) return [false, `resources/subscribe: ${short(first.error)}`];
    if (modern) {
      const high = await request("logging/setLevel", { level: "info" });
      return [!high.error, short(high.error)];
    }
    await sleep(1500);
    if (logged(quietUri, from)) return [false, "an info message arrived at level error"];
    const high = await request("logging/setLevel", { level: "info" });
    if (high.error) return [false, `setLevel info: ${short(high.error)}`];
    const second = await request("resources/subscribe", { uri: heardUri });
    if (second.error) return [false, `resources/subscribe: ${short(second.error)}`];
    const heard = await waitFor(() => logged(heardUri, from));
    const logs = notifications.slice(from).filter((m) => m.method === "notifications/message").map((m) => `${m.params?.level}: ${m.params?.data}`);
    return [heard, `no info message about the subscription at level info within ${NOTIFICATION_WAIT_MS / 1000} s; got ${short(logs.length ? logs : "none")}`];
  });
  await step("resources/subscribe: the backend's notifications/resources/updated arrive", async () => {
    if (modern) {
      const sub = await request("resources/subscribe", { uri: heardUri });
      if (sub.error) return [false, `resources/subscribe: ${short(sub.error)}`];
    }
    const from = notifications.length;
    const on = await callTool("everything__toggle-subscriber-updates", {});
    if (on.isError) return [false, short(on.error ?? on.text)];
    const updated = await waitFor(() => notifications.slice(from).some((m) => m.method === "notifications/resources/updated" && m.params?.uri === heardUri));
    await callTool("everything__toggle-subscriber-updates", {});
    const unsubscribed = await Promise.all([quietUri, heardUri].map((uri) => request("resources/unsubscribe", { uri })));
    const refused = unsubscribed.filter((u) => u.error).map((u) => u.error);
    if (!updated) return [false, `no notifications/resources/updated for ${heardUri} within ${NOTIFICATION_WAIT_MS / 1000} s; got ${short(methodsSince(from).length ? methodsSince(from) : "nothing")}`];
    return [refused.length === 0, `resources/unsubscribe: ${short(refused)}`];
  });
  await step("list_changed: a resource a tool registers is announced and listed", async () => {
    const from = notifications.length;
    const name = `cluster-${randomBytes(4).toString("hex")}.txt`;
    const data = `data:text/plain;base64,${Buffer.from("made through a balancer").toString("base64")}`;
    const made = await callTool("everything__gzip-file-as-resource", { name, data });
    if (made.isError) return [false, short(made.error ?? made.text)];
    if (!(await waitFor(() => methodsSince(from).includes("notifications/resources/list_changed")))) {
      return [false, `no notifications/resources/list_changed within ${NOTIFICATION_WAIT_MS / 1000} s; got ${short(methodsSince(from).length ? methodsSince(from) : "nothing")}`];
    }
    const wanted = `everything+demo://resource/session/${name}`;
    const listed = await request("resources/list", {});
    const uris = (listed.result?.resources ?? []).map((r) => r.uri);
    if (!uris.includes(wanted)) return [false, `resources/list lacks ${wanted}: ${short(listed.error ?? uris.filter((u) => u.includes("session")))}`];
    const read = await request("resources/read", { uri: wanted });
    return [(read.result?.contents ?? []).length > 0, `resources/read ${wanted}: ${short(read.error ?? read.result)}`];
  });
  console.log(`# ${args.label}: the host was asked ${asked.length ? asked.join(", ") : "nothing"}`);
}

async function shutdown() {
  child.stdin.end();
  if (exited) return;
  await new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve();
    }, 5_000);
    child.once("exit", () => (clearTimeout(timer), resolve()));
    child.kill("SIGTERM");
  });
}

const overall = setTimeout(() => {
  check("session ran to the end", false, `overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s`);
  child.kill("SIGKILL");
  process.exit(1);
}, OVERALL_TIMEOUT_MS);
try {
  await main();
} catch (err) {
  check("session ran to the end", false, err.message);
}
await shutdown();
clearTimeout(overall);
rmSync(scratch, { recursive: true, force: true });
if (failures) {
  const tail = stderr.trim().split("\n").slice(-30).join("\n");
  console.error(`--- ${args.label}: last lines of mcp-remote's stderr ---\n${tail}`);
}
process.exit(failures ? 1 : 0);
