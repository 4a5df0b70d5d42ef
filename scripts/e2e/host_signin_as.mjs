#!/usr/bin/env node
// The authorization server that hosts sign in with to a session URL in
// scripts/e2e/host_signin.sh: oidc-provider (npm, pinned in package.json) with
//   - its development login and consent pages (any login name, any password;
//     the login name becomes the subject, `sub`), driven by a scripted browser,
//   - open dynamic client registration (RFC 7591) and PKCE,
//   - resource indicators (RFC 8707): a token is issued for one session URL
//     under GATEWAY, with that URL as its audience and the scope mcp:tools,
//   - opaque access tokens, checked by the gateway through introspection
//     (RFC 7662, by the static client INTROSPECTION_CLIENT_ID with
//     client_secret_basic), except for clients named in JWT_CLIENTS, whose
//     access tokens are RS256 JWTs (RFC 9068) checked against the JWKS,
//   - Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//     SEP-991): a client_id that is an https URL is fetched from that URL. The
//     documents are served here too, from CIMD_DIR on https://localhost:CIMD_PORT/,
//     with the certificate CIMD_CERT/CIMD_KEY (the process must trust it:
//     NODE_EXTRA_CA_CERTS).
//
//   AS_PORT=... GATEWAY=http://127.0.0.1:PORT INTROSPECTION_CLIENT_ID=... INTROSPECTION_SECRET=...
//   [JWT_CLIENTS="name,name"] [CIMD_PORT=... CIMD_DIR=... CIMD_CERT=... CIMD_KEY=...]
//   node host_signin_as.mjs --node-modules DIR
//
// Prints one JSON line {"ready":true,"issuer":...} on stdout when it listens,
// and one line per token issued and per introspection answered on stderr
// (the token's kind, format, client, subject and audience; never the token).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join, normalize } from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const at = argv.indexOf('--node-modules');
const nodeModules = at === -1 ? process.env.E2E_NODE_MODULES : argv[at + 1];
if (!nodeModules) {
  console.error('usage: host_signin_as.mjs --node-modules DIR (or E2E_NODE_MODULES)');
  process.exit(2);
}
// This file is not next to its node_modules, so the import goes by path.
const { default: Provider, errors } = await import(pathToFileURL(join(nodeModules, 'oidc-provider', 'lib', 'index.js')).href);

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`host_signin_as.mjs needs ${name}`);
    process.exit(2);
  }
  return value;
};
const AS_PORT = Number(env('AS_PORT'));
const GATEWAY = env('GATEWAY').replace(/\/$/, '');
const INTROSPECTION_CLIENT_ID = env('INTROSPECTION_CLIENT_ID');
const INTROSPECTION_SECRET = env('INTROSPECTION_SECRET');
const JWT_CLIENTS = new Set(env('JWT_CLIENTS', '').split(',').filter(Boolean));
const ACCESS_TTL = Number(env('ACCESS_TTL', 600));
const CIMD_PORT = process.env.CIMD_PORT ? Number(process.env.CIMD_PORT) : 0;
const ISSUER = `http://127.0.0.1:${AS_PORT}`; // no trailing slash: the issuer, spelled as the gateway is told
const SCOPE = 'mcp:tools';

// The audiences this server issues for: the gateway's base URL (what a
// self-service token names) and its session URLs.
const SESSION_URL = new RegExp(`^${GATEWAY.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/session/[^/?#]+/mcp$`);
const known = (resource) => resource === GATEWAY || resource === `${GATEWAY}/` || SESSION_URL.test(resource);

const signing = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(ISSUER, {
  jwks: { keys: [{ ...signing, kid: `k-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  clients: [
    // The gateway itself, for introspection only: it never asks for a token.
    {
      client_id: INTROSPECTION_CLIENT_ID,
      client_secret: INTROSPECTION_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ],
  // Listed here as well, for registration: a client that registers with the
  // scope the gateway asks for (scope="mcp:tools") is refused otherwise.
  scopes: ['openid', 'offline_access', SCOPE],
  responseTypes: ['code'],
  pkce: { required: () => true },
  ttl: { AccessToken: ACCESS_TTL, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
  features: {
    devInteractions: { enabled: true }, // the login and consent pages the scripted browser fills in
    registration: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A client that names the resource at /authorize only still gets its token for it.
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource, client) => {
        if (!known(resource)) throw new errors.InvalidTarget(`this server issues no token for ${resource}`);
        const jwt = JWT_CLIENTS.has(client?.clientName);
        return {
          scope: SCOPE,
          audience: resource,
          accessTokenTTL: ACCESS_TTL,
          accessTokenFormat: jwt ? 'jwt' : 'opaque',
          ...(jwt ? { jwt: { sign: { alg: 'RS256' } } } : {}),
        };
      },
    },
    clientIdMetadataDocument: { enabled: CIMD_PORT !== 0, ack: 'draft-02' },
  },
  // oidc-provider refuses to fetch from special-use addresses (loopback among
  // them) to stop server-side request forgery. Here every metadata document is
  // on this machine, served below: so fetch without that guard.
  fetch: (url, options) => {
    const { dispatcher: _ssrfGuard, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
});

// One line per token and per introspection, for the test to read.
const said = (what) => console.error(JSON.stringify(what));
// `saved`: an opaque token, kept here to be introspected; `issued`: a JWT, kept nowhere.
for (const [kind, format] of [['access_token.saved', 'opaque'], ['access_token.issued', 'jwt']]) {
  provider.on(kind, (token) => said({ event: 'access token', format, client_id: token.clientId, sub: token.accountId, aud: token.aud, scope: token.scope }));
}
provider.on('grant.error', (_ctx, err) => said({ event: 'grant.error', error: err.error, detail: err.error_detail ?? err.error_description }));
provider.on('authorization.error', (_ctx, err) => said({ event: 'authorization.error', error: err.error, detail: err.error_detail ?? err.error_description }));
provider.on('introspection.error', (_ctx, err) => said({ event: 'introspection.error', error: err.error, detail: err.error_detail ?? err.error_description }));
provider.on('registration_create.success', (_ctx, client) => said({ event: 'registration', client_id: client.clientId, client_name: client.clientName }));
provider.on('server_error', (_ctx, err) => said({ event: 'server_error', error: String(err?.stack ?? err) }));
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token/introspection' && ctx.method === 'POST') {
    const b = ctx.body ?? {};
    said({ event: 'introspection', status: ctx.status, caller: ctx.oidc?.client?.clientId, active: b.active, sub: b.sub, aud: b.aud, client_id: b.client_id });
  }
});

await new Promise((ready) => { provider.listen(AS_PORT, '127.0.0.1', ready); });

let cimd;
if (CIMD_PORT) {
  const dir = normalize(env('CIMD_DIR'));
  const server = createServer({ cert: readFileSync(env('CIMD_CERT')), key: readFileSync(env('CIMD_KEY')) }, (req, res) => {
    const path = normalize(join(dir, decodeURIComponent(new URL(req.url, 'https://localhost').pathname)));
    said({ event: 'client metadata document fetched', path: req.url });
    try {
      if (!path.startsWith(`${dir}/`)) throw new Error('outside');
      const body = readFileSync(path);
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' }).end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    }
  });
  await new Promise((ready) => { server.listen(CIMD_PORT, '127.0.0.1', ready); });
  cimd = `https://localhost:${CIMD_PORT}/`;
}

console.log(JSON.stringify({ ready: true, issuer: ISSUER, gateway: GATEWAY, jwt_clients: [...JWT_CLIENTS], client_metadata_documents: cimd ?? null }));
