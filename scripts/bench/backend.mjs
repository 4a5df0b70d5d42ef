// A fast, minimal MCP backend for scripts/bench.sh: Streamable HTTP with
// plain JSON answers and no session, doing no work beyond parsing the
// request, so that what the benchmark measures is the hop in front of it.
//
//   node scripts/bench/backend.mjs --port 4001 [--tools 1000] [--initialize-delay-ms 100]
//
// Tools: `echo` (`message`), which answers its message as text, and
// `--tools` - 1 more (`tool_1` ...) that answer the same, for catalogue
// sizes. `--initialize-delay-ms` makes `initialize` slow, for fan-out. Any
// path serves MCP, so one process stands for several registry servers.
import http from "node:http";

function flag(name, fallback) {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} takes a whole number`);
  return value;
}

const port = flag("--port", 4001);
const toolCount = Math.max(1, flag("--tools", 1));
const initializeDelay = flag("--initialize-delay-ms", 0);

const tool = (name) => ({
  name,
  description: "Echoes the message back.",
  inputSchema: {
    type: "object",
    properties: { message: { type: "string", description: "What to echo." } },
    required: ["message"],
  },
});
const tools = [tool("echo")];
for (let n = 1; n < toolCount; n++) tools.push(tool(`tool_${n}`));

function answer(response, status, message) {
  const body = message === undefined ? "" : JSON.stringify(message);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  response.end(body);
}

function handle(message, response) {
  if (message.id === undefined) return answer(response, 202); // a notification or a response
  const reply = (result) => answer(response, 200, { jsonrpc: "2.0", id: message.id, result });
  switch (message.method) {
    case "initialize":
      return setTimeout(
        () =>
          reply({
            protocolVersion: "2025-11-25",
            capabilities: { tools: {} },
            serverInfo: { name: "bench-backend", version: "1" },
          }),
        initializeDelay,
      );
    case "tools/list":
      return reply({ tools });
    case "tools/call":
      return reply({ content: [{ type: "text", text: String(message.params?.arguments?.message ?? "") }] });
    case "ping":
      return reply({});
    default:
      return answer(response, 200, { jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "method not found" } });
  }
}

const server = http.createServer((request, response) => {
  if (request.method !== "POST") return answer(response, 405);
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    let message;
    try {
      message = JSON.parse(Buffer.concat(chunks));
    } catch {
      return answer(response, 400);
    }
    handle(message, response);
  });
});
server.keepAliveTimeout = 120_000;
server.listen(port, "127.0.0.1");
