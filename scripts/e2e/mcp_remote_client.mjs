#!/usr/bin/env node
// End-to-end check through mcp-remote, the stdio bridge that Claude Desktop,
// Cursor and VS Code users put in front of a session URL.
//
// It plays the desktop host: spawns `mcp-remote <url>` and speaks newline-
// delimited JSON-RPC on its stdin/stdout, exactly as a host does. Prints one
// `ok - ...` / `not ok - ...` line per check; exit code 1 if any failed.
//
//   node mcp_remote_client.mjs URL [--backends everything,demo] [--no-prefix]
//        [--header 'Authorization: Bearer ...'] [--demo-fingerprint HEX] [--label NAME]
//        [--node-modules DIR]   (where mcp-remote is installed; default .e2e/node/node_modules)
//        [--hold FILE] [--call TOOL JSON-ARGS TEXT]... [--bridge-arg ARG]...
//
// --hold: after the checks, create FILE.ready and wait (90 s at most) for
// FILE.go, then run the checks again on the same bridge: the caller restarts
// the gateway meanwhile, and the bridge must go on without reconnecting.
//
// --call (repeatable) replaces the built-in checks of each backend: TOOL must
// be listed, and calling it with JSON-ARGS must answer a text holding TEXT.
//
// --bridge-arg (repeatable) is passed to mcp-remote after the URL, in order:
// its callback port first (a bare number), then options such as
// --client-metadata-url URL.
//
// --no-prefix is for pointing it at a backend directly, where tool names carry
// no `<server>__` prefix. --demo-fingerprint: see python_client.py.
//
// mcp-remote writes its own logs to stderr; they are kept and shown only when
// something fails. Unless MCP_REMOTE_CONFIG_DIR is set, the bridge gets a
// scratch one, so that a run never reads or writes the user's ~/.mcp-auth.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const REQUEST_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 240_000;
const HOLD_TIMEOUT_MS = 90_000;

function parseArgs(argv) {
  const args = { backends: "everything,demo", separator: "__", noPrefix: false, headers: [], demoFingerprint: "", label: "mcp-remote", nodeModules: "", calls: [], bridgeArgs: [] };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--backends") args.backends = argv[++i];
    else if (a === "--separator") args.separator = argv[++i];
    else if (a === "--no-prefix") args.noPrefix = true;
    else if (a === "--header") args.headers.push(argv[++i]);
    else if (a === "--demo-fingerprint") args.demoFingerprint = argv[++i];
    else if (a === "--label") args.label = argv[++i];
    else if (a === "--node-modules") args.nodeModules = argv[++i];
    else if (a === "--hold") args.hold = argv[++i];
    else if (a === "--bridge-arg") args.bridgeArgs.push(argv[++i]);
    else if (a === "--call") {
      args.calls.push({ tool: argv[i + 1], arguments: JSON.parse(argv[i + 2]), text: argv[i + 3] });
      i += 3;
    } else rest.push(a);
  }
  if (rest.length !== 1) {
    console.error("usage: mcp_remote_client.mjs URL [--backends a,b] [--no-prefix] [--header H] [--demo-fingerprint HEX] [--label NAME] [--node-modules DIR] [--hold FILE] [--call TOOL JSON TEXT] [--bridge-arg ARG]");
    process.exit(2);
  }
  args.url = rest[0];
  return args;
}

// The bridge lives in the node_modules that e2e.sh installed (.e2e/node), or
// next to this file when someone ran `npm ci` here.
function findMcpRemote(nodeModules) {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [nodeModules, join(here, "..", "..", ".e2e", "node", "node_modules"), join(here, "node_modules")].filter(Boolean);
  for (const dir of candidates) {
    const proxy = join(dir, "mcp-remote", "dist", "proxy.js");
    if (existsSync(proxy)) return proxy;
  }
  throw new Error(`mcp-remote not found in ${candidates.join(", ")}`);
}

const args = parseArgs(process.argv.slice(2));
const backends = args.backends.split(",").filter(Boolean);
const prefix = Object.fromEntries(backends.map((b) => [b, args.noPrefix ? "" : `${b}${args.separator}`]));
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
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > n ? `${s.slice(0, n)}...` : s;
};

// mcp-remote takes each header as one `--header 'Name:value'` argument; its
// README asks for no spaces around the colon.
const bridgeArgs = [findMcpRemote(args.nodeModules), args.url, ...args.bridgeArgs];
for (const h of args.headers) {
  const i = h.indexOf(":");
  bridgeArgs.push("--header", `${h.slice(0, i).trim()}:${h.slice(i + 1).trim()}`);
}

const scratch = process.env.MCP_REMOTE_CONFIG_DIR ? null : mkdtempSync(join(tmpdir(), "mcp-remote-e2e-"));
const env = scratch ? { ...process.env, MCP_REMOTE_CONFIG_DIR: scratch } : process.env;
const child = spawn(process.execPath, bridgeArgs, { stdio: ["pipe", "pipe", "pipe"], env });
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

const lines = createInterface({ input: child.stdout });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return; // not ours: the bridge is meant to print logs on stderr only, but be lenient
  }
  if (msg.id !== undefined && pending.has(msg.id) && (msg.result !== undefined || msg.error !== undefined)) {
    const { resolve } = pending.get(msg.id);
    pending.delete(msg.id);
    resolve(msg);
  } else if (msg.method && msg.id !== undefined) {
    // A request from the server side (roots/list, ping, ...): answer so it never waits on us.
    const reply = msg.method === "ping" ? { result: {} } : msg.method === "roots/list" ? { result: { roots: [] } } : { error: { code: -32601, message: "not supported by this test client" } };
    send({ jsonrpc: "2.0", id: msg.id, ...reply });
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
      reject(new Error(`${method}: no answer within ${REQUEST_TIMEOUT_MS / 1000}s`));
    }, REQUEST_TIMEOUT_MS);
    pending.set(id, {
      resolve: (m) => (clearTimeout(timer), resolve(m)),
      reject: (e) => (clearTimeout(timer), reject(e)),
    });
    send({ jsonrpc: "2.0", id, method, params });
  });
}

const textOf = (result) => (result?.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(" ");

async function callTool(name, toolArgs) {
  const msg = await request("tools/call", { name, arguments: toolArgs });
  if (msg.error) return { error: msg.error };
  return { result: msg.result, text: textOf(msg.result), isError: msg.result?.isError === true };
}

async function main() {
  const init = await request("initialize", {
    protocolVersion: "2025-11-25",
    capabilities: {},
    clientInfo: { name: "mcp-mux-e2e", version: "1.0.0" },
  });
  if (!check(`initialize (protocol ${init.result?.protocolVersion})`, init.result?.protocolVersion !== undefined, short(init.error ?? init))) return;
  send({ jsonrpc: "2.0", method: "notifications/initialized" });
  if (!(await checkTools(""))) return;
  if (args.hold) {
    writeFileSync(`${args.hold}.ready`, "");
    const deadline = Date.now() + HOLD_TIMEOUT_MS;
    while (!existsSync(`${args.hold}.go`)) {
      if (Date.now() > deadline) return check("the caller said go", false, `no ${args.hold}.go within ${HOLD_TIMEOUT_MS / 1000}s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await checkTools(" (same bridge, gateway restarted)");
    check("the bridge never exited", exited === null, JSON.stringify(exited));
  }
}

// The tool checks; `when` is added to each check's name. False when the
// list itself failed, so that nothing more can be checked.
async function checkTools(when) {
  const listed = await request("tools/list", {});
  if (!check(`tools/list answers${when}`, Array.isArray(listed.result?.tools), short(listed.error ?? listed))) return false;
  const names = listed.result.tools.map((t) => t.name);
  const bad = names.filter((n) => !NAME_RE.test(n));
  check(`tools/list names match ${NAME_RE.source} (${names.length} tools)${when}`, bad.length === 0, `bad names: ${short(bad)}`);
  if (!args.noPrefix) {
    const stray = names.filter((n) => !Object.values(prefix).some((p) => n.startsWith(p)));
    check(`every tool carries a backend prefix${when}`, stray.length === 0, `unprefixed: ${short(stray)}`);
  }

  if (args.calls.length > 0) {
    for (const call of args.calls) {
      if (check(`tools/list has ${call.tool}${when}`, names.includes(call.tool), `got ${short(names.sort())}`)) {
        const r = await callTool(call.tool, call.arguments);
        check(`tools/call ${call.tool} answers ${JSON.stringify(call.text)}${when}`, !r.error && !r.isError && r.text.includes(call.text), short(r.error ?? r.result));
      }
    }
    return true;
  }
  if (backends.includes("everything")) {
    const p = prefix.everything;
    if (check(`tools/list has ${p}echo${when}`, names.includes(`${p}echo`), `got ${short(names.sort())}`)) {
      const r = await callTool(`${p}echo`, { message: "hello from mcp-remote" });
      check(`tools/call ${p}echo echoes${when}`, !r.error && !r.isError && r.text.includes("hello from mcp-remote"), short(r.error ?? r.result));
    }
  }
  if (backends.includes("demo")) {
    const p = prefix.demo;
    if (check(`tools/list has ${p}add${when}`, names.includes(`${p}add`), `got ${short(names.sort())}`)) {
      const r = await callTool(`${p}add`, { a: 20, b: 22 });
      const value = r.result?.structuredContent?.result ?? Number.parseFloat(r.text);
      check(`tools/call ${p}add adds 20 + 22${when}`, !r.error && !r.isError && Number(value) === 42, short(r.error ?? r.result));
    }
    if (check(`tools/list has ${p}whoami${when}`, names.includes(`${p}whoami`), `got ${short(names.sort())}`)) {
      const r = await callTool(`${p}whoami`, {});
      let who = r.result?.structuredContent;
      if (!who) {
        try {
          who = JSON.parse(r.text);
        } catch {
          who = {};
        }
      }
      const passed = !r.error && who?.authenticated === true && (!args.demoFingerprint || who.token_sha256_prefix === args.demoFingerprint);
      check(`tools/call ${p}whoami sees this session's token${when}`, passed, short(r.error ?? who));
    }
  }
  return true;
}

// Ending stdin is how a host says goodbye; the bridge should then exit by
// itself. If it does not within a few seconds, it is killed.
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
  check("session ran to the end", false, `overall timeout of ${OVERALL_TIMEOUT_MS / 1000}s`);
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
if (scratch) rmSync(scratch, { recursive: true, force: true });
if (failures) {
  const tail = stderr.trim().split("\n").slice(-30).join("\n");
  console.error(`--- ${args.label}: last lines of mcp-remote's stderr ---\n${tail}`);
}
process.exit(failures ? 1 : 0);
