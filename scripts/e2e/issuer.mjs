#!/usr/bin/env node
// Two real OAuth authorization servers for the host sign-in checks of
// scripts/e2e.sh (scripts/e2e/host_tokens.sh), made with oauth2-mock-server
// (pinned in package.json): the one the gateway trusts and another one it
// does not. Each serves OpenID discovery at /.well-known/openid-configuration
// (not RFC 8414's /.well-known/oauth-authorization-server: that path is 404),
// whose `issuer` is http://localhost:PORT (the package spells loopback
// addresses `localhost`, with no trailing slash), a JWKS at /jwks with one
// RS256 key at start, and (the trusted one) RFC 7662 introspection at
// /introspect, which this file answers itself.
//
//   node issuer.mjs --port P --untrusted-port Q --control-port C [--node-modules DIR]
//        [--introspection-client ID:SECRET]
//
// Prints one line of JSON once all three listen: {"issuer", "untrusted_issuer",
// "kid", "untrusted_kid"}. The control port (127.0.0.1 only) mints tokens and
// changes keys, for the checks to ask with curl:
//
//   GET  /info     -> that JSON, plus "kids" (the trusted issuer's published
//                     key ids) and "public_pem" (its first key, SPKI PEM)
//   POST /mint     {"issuer": "trusted"|"untrusted", "kid": "...",
//                   "claims": {...}, "exp_in": S, "nbf_in": S, "iat_in": S,
//                   "header": {...}, "alg": "RS256"|"none"|"HS256-public-pem",
//                   "size": BYTES}
//                  -> the token, as text. Claims start as {iss, iat, exp: +1 h,
//                  nbf: -10 s}; "claims" overrides them (null removes one);
//                  *_in set a time claim relative to now. "kid" signs with that
//                  published key (default: the issuer's first one); "header" overrides header fields after
//                  signing's choice (so {"kid": "made-up"} names a key nobody
//                  publishes, yet the signature is a real key's). "alg": "none"
//                  is {"alg":"none"} with an empty signature; "HS256-public-pem"
//                  is HMAC-SHA256 keyed with the issuer's published RSA key as
//                  PEM (the key-confusion attack). "size" pads a claim until the
//                  token is that many bytes.
//   POST /rotate   {"kid": "..."} -> {"kid"}: a new RS256 key, published at
//                  once in the trusted issuer's JWKS.
//   POST /opaque   {"token": "...", "response": {...}} -> 204: the trusted
//                  issuer's introspection answers `response` for that token
//                  (and {"active": false} for every token it was not told of).
//   GET  /introspections -> [{token, authorized}]: what the gateway asked.
//
// With --introspection-client, an introspection request without that
// client's HTTP Basic credentials gets 401 invalid_client, as RFC 7662 asks.

import { createHmac, createPublicKey, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

function parseArgs(argv) {
  const args = { nodeModules: "" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") args.port = Number(argv[++i]);
    else if (a === "--untrusted-port") args.untrustedPort = Number(argv[++i]);
    else if (a === "--control-port") args.controlPort = Number(argv[++i]);
    else if (a === "--node-modules") args.nodeModules = argv[++i];
    else if (a === "--introspection-client") args.introspectionClient = argv[++i];
    else {
      console.error(`issuer.mjs: unknown argument ${a}`);
      process.exit(2);
    }
  }
  if (!args.port || !args.untrustedPort || !args.controlPort) {
    console.error("usage: issuer.mjs --port P --untrusted-port Q --control-port C [--node-modules DIR] [--introspection-client ID:SECRET]");
    process.exit(2);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const modules = args.nodeModules || process.env.E2E_NODE_MODULES || ".e2e/node/node_modules";
const { OAuth2Issuer, OAuth2Service } = await import(
  pathToFileURL(join(modules, "oauth2-mock-server", "dist", "index.mjs")).href
);

const b64url = (data) => Buffer.from(data).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

// An OAuth2Issuer and its OAuth2Service, served the way the package's
// OAuth2Server serves them, except that a POST to /introspect is answered
// here: the package's route reads no form body, and RFC 7662 posts one.
async function startIssuer(port, kid, introspect) {
  const issuer = new OAuth2Issuer();
  await issuer.keys.generate("RS256", { kid });
  const service = new OAuth2Service(issuer);
  const handler = service.requestHandler;
  const server = createServer((req, res) => {
    if (introspect && req.method === "POST" && req.url.split("?")[0] === "/introspect") {
      introspect(req, res).catch((error) => {
        res.writeHead(500);
        res.end(String(error));
      });
      return;
    }
    handler(req, res);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  // What OAuth2Server.start sets for a loopback address: `localhost`, no
  // trailing slash.
  issuer.url = `http://localhost:${port}`;
  return { issuer, server, kid };
}

const trusted = await startIssuer(args.port, `trusted-${randomUUID().slice(0, 8)}`, introspect);
const untrusted = await startIssuer(args.untrustedPort, `untrusted-${randomUUID().slice(0, 8)}`);
// The key made at start. Not the key store's first: it reorders its keys
// as it takes turns among them.
const firstKid = (server) => server.kid;

// RFC 7662 for opaque tokens: only those the checks registered are active.
const opaque = new Map();
const introspections = [];
async function introspect(req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const token = new URLSearchParams(Buffer.concat(chunks).toString("utf8")).get("token");
  let authorized = true;
  if (args.introspectionClient) {
    const expected = `Basic ${Buffer.from(args.introspectionClient).toString("base64")}`;
    authorized = req.headers.authorization === expected;
  }
  introspections.push({ token, authorized });
  const [status, body] = authorized
    ? [200, opaque.get(token) ?? { active: false }]
    : [401, { error: "invalid_client" }];
  res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store" });
  res.end(JSON.stringify(body));
}

// A time claim: null removes it, a number is taken as it is.
function applyClaims(payload, body) {
  const t = now();
  for (const [name, field] of [["exp", "exp_in"], ["nbf", "nbf_in"], ["iat", "iat_in"]]) {
    if (typeof body[field] === "number") payload[name] = t + body[field];
  }
  for (const [name, value] of Object.entries(body.claims ?? {})) {
    if (value === null) delete payload[name];
    else payload[name] = value;
  }
}

function publicPem(server, kid) {
  const wanted = kid ?? firstKid(server);
  const jwk = server.issuer.keys.toJSON().find((key) => key.kid === wanted);
  return createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "pem" });
}

// Pads the `pad` claim until the token is `size` bytes (base64url grows by
// 4 characters per 3 bytes, so it is done in two steps).
async function padded(build, size) {
  let token = await build(0);
  if (!size || token.length >= size) return token;
  let pad = Math.floor(((size - token.length) * 3) / 4);
  token = await build(pad);
  while (token.length < size) token = await build(++pad);
  while (token.length > size && pad > 0) token = await build(--pad);
  return token;
}

async function mint(body) {
  const server = body.issuer === "untrusted" ? untrusted : trusted;
  const alg = body.alg ?? "RS256";
  const build = async (pad) => {
    if (alg === "RS256") {
      // The first key unless told: the package would take turns among them.
      return server.issuer.buildToken({
        kid: body.kid ?? firstKid(server),
        scopesOrTransform: (header, payload) => {
          applyClaims(payload, body);
          if (pad) payload.pad = "x".repeat(pad);
          Object.assign(header, body.header ?? {});
        },
      });
    }
    // Built by hand: the package signs with its keys' own algorithms only.
    const t = now();
    const payload = { iss: server.issuer.url, iat: t, exp: t + 3600, nbf: t - 10 };
    applyClaims(payload, body);
    if (pad) payload.pad = "x".repeat(pad);
    if (alg === "none") {
      const header = { alg: "none", ...(body.header ?? {}) };
      return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.`;
    }
    if (alg === "HS256-public-pem") {
      const kid = body.kid ?? firstKid(server);
      const header = { alg: "HS256", typ: "JWT", kid, ...(body.header ?? {}) };
      const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
      const signature = createHmac("sha256", publicPem(server, kid)).update(input).digest("base64url");
      return `${input}.${signature}`;
    }
    throw new Error(`unknown alg ${alg}`);
  };
  return padded(build, body.size);
}

function info() {
  return {
    issuer: trusted.issuer.url,
    untrusted_issuer: untrusted.issuer.url,
    kid: firstKid(trusted),
    untrusted_kid: firstKid(untrusted),
  };
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : {};
}

const control = createServer(async (req, res) => {
  const send = (status, body, type = "application/json") => {
    res.writeHead(status, { "Content-Type": type });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  };
  try {
    if (req.method === "GET" && req.url === "/info") {
      return send(200, {
        ...info(),
        kids: trusted.issuer.keys.toJSON().map((key) => key.kid),
        public_pem: publicPem(trusted),
      });
    }
    if (req.method === "POST" && req.url === "/mint") {
      return send(200, await mint(await readJson(req)), "text/plain");
    }
    if (req.method === "POST" && req.url === "/rotate") {
      const body = await readJson(req);
      const key = await trusted.issuer.keys.generate("RS256", { kid: body.kid ?? `rotated-${randomUUID().slice(0, 8)}` });
      return send(200, { kid: key.kid });
    }
    if (req.method === "POST" && req.url === "/opaque") {
      const body = await readJson(req);
      opaque.set(body.token, body.response);
      res.writeHead(204);
      return res.end();
    }
    if (req.method === "GET" && req.url === "/introspections") {
      return send(200, introspections);
    }
    send(404, { error: "no such control route" });
  } catch (error) {
    send(400, { error: String(error && error.message ? error.message : error) });
  }
});
await new Promise((resolve, reject) => {
  control.once("error", reject);
  control.listen(args.controlPort, "127.0.0.1", resolve);
});

console.log(JSON.stringify(info()));

const shutdown = async () => {
  control.close();
  trusted.server.close();
  untrusted.server.close();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
