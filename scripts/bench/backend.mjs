// A fast, minimal MCP backend for scripts/bench.sh: Streamable HTTP with
// plain JSON answers and no session, doing no work beyond parsing the
// request, so that what the benchmark measures is the hop in front of it.
//
//   node scripts/bench/backend.mjs --port 4001 [--tools 1000] [--initialize-delay-ms 100]
//                                  [--param-header 1] [--issuer 1]
//
// Tools: `echo` (`message`), which answers its message as text, and
// `--tools` - 1 more (`tool_1` ...) that answer the same, for catalogue
// sizes. `--initialize-delay-ms` makes `initialize` slow, for fan-out.
// `--param-header 1` marks `message` with `x-mcp-header: Message`, so that
// clients mirror it into `Mcp-Param-Message`. Any path serves MCP, so one
// process stands for several registry servers, except three:
//   - `--issuer 1` makes the process an OAuth issuer too (RFC 8414 metadata,
//     its JWKS, and `GET /mint?aud=…&sub=…`, which answers an RS256 JWT for
//     that audience), for sessions that belong to a signed-in user;
//   - POST /v1/traces takes OTLP spans and drops them.
import crypto from "node:crypto";
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
const paramHeader = flag("--param-header", 0) === 1;
const issuer = flag("--issuer", 0) === 1;

const tool = (name) => ({
  name,
  description: "Echoes the message back.",
  inputSchema: {
    type: "object",
    properties: {
      message: { type: "string", description: "What to echo.", ...(paramHeader ? { "x-mcp-header": "Message" } : {}) },
    },
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

// The issuer: one RSA key, whose public half is the JWKS.
const issuerUrl = `http://127.0.0.1:${port}`;
const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: "jwk" }), kid: "bench", alg: "RS256", use: "sig" };
const base64url = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

function mint(audience, subject) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: issuerUrl, aud: audience, sub: subject, scope: "mcp:tools", iat: now, exp: now + 3600 };
  const signed = `${base64url({ alg: "RS256", typ: "JWT", kid: "bench" })}.${base64url(claims)}`;
  return `${signed}.${crypto.sign("sha256", Buffer.from(signed), privateKey).toString("base64url")}`;
}

function serveIssuer(request, response) {
  const url = new URL(request.url, issuerUrl);
  switch (url.pathname) {
    case "/.well-known/oauth-authorization-server":
      return answer(response, 200, {
        issuer: issuerUrl,
        authorization_endpoint: `${issuerUrl}/authorize`,
        token_endpoint: `${issuerUrl}/token`,
        jwks_uri: `${issuerUrl}/jwks`,
        response_types_supported: ["code"],
      });
    case "/jwks":
      return answer(response, 200, { keys: [jwk] });
    case "/mint":
      return answer(response, 200, { access_token: mint(url.searchParams.get("aud"), url.searchParams.get("sub") ?? "bench") });
    default:
      return answer(response, 404, { error: "not found" });
  }
}

const server = http.createServer((request, response) => {
  if (request.method === "GET" && issuer) return serveIssuer(request, response);
  if (request.method !== "POST") return answer(response, 405);
  if (request.url === "/v1/traces") {
    request.resume();
    return request.on("end", () => answer(response, 200));
  }
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
