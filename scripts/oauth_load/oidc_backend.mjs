// oidc_backend.mjs — one process, two listeners, for mcp-mux's OAuth-client tests:
//   * an oidc-provider (panva) authorization server on http://127.0.0.1:$AS_PORT
//   * a protected MCP server (SDK McpServer, stateless Streamable HTTP) on http://127.0.0.1:$MCP_PORT/mcp
//     plus GET /stats (counters) and POST /stats/reset on the same port.
// Env: AS_PORT (4000), MCP_PORT (4001), ACCESS_TTL s (5), REFRESH_TTL s (86400), TEST_SUB ("test-user"),
//      DEFAULT_SCOPE ("mcp:tools", applied to /auth requests without scope; '' disables).
// Prints one JSON line {"ready":true,...} on stdout once both listeners are up.
import express from 'express';
import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';
// Deep imports (the package has no "exports" map): the default in-memory adapter keeps everything in
// an LRU capped at 1000 entries, so after a few hundred other flows an idle grant's refresh token is
// evicted ("refresh token not found") — fatal for load tests. Same adapter, much larger store.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const env = (k, d) => process.env[k] ?? d;
const AS_PORT = Number(env('AS_PORT', 4000));
const MCP_PORT = Number(env('MCP_PORT', 4001));
const ACCESS_TTL = Number(env('ACCESS_TTL', 5));
const REFRESH_TTL = Number(env('REFRESH_TTL', 86400));
const TEST_SUB = env('TEST_SUB', 'test-user');
const DEFAULT_SCOPE = env('DEFAULT_SCOPE', 'mcp:tools'); // '' = stock behaviour (see /auth shim)
const ISSUER = `http://127.0.0.1:${AS_PORT}`; // no trailing slash; oidc-provider uses it verbatim
const MCP_URL = `http://127.0.0.1:${MCP_PORT}/mcp`; // the RFC 8707 resource == JWT `aud`
const PRM_URL = `http://127.0.0.1:${MCP_PORT}/.well-known/oauth-protected-resource/mcp`;
const MCP_SCOPE = 'mcp:tools';
const OIDC_SCOPES = ['openid', 'offline_access'];

const stats = {};
const resetStats = () => Object.assign(stats, {
  client_registrations: 0, authorizations: 0, authorization_code_grants: 0, refresh_token_grants: 0,
  refresh_tokens_rotated: 0, refresh_token_reuse_detected: 0, grants_revoked: 0, revocation_calls: 0,
  token_errors: {}, token_error_details: {}, mcp_401: 0, mcp_ok: 0,
});
resetStats();

const store = new LRU({ maxSize: 10_000_000 });

// Fresh RSA signing key per run (RS256 is oidc-provider's default for id_tokens and JWT ATs).
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'k1', alg: 'RS256', use: 'sig' };

const provider = new Provider(ISSUER, {
  jwks: { keys: [signingJwk] },
  adapter: (name) => new MemoryAdapter(name, store), // factory (not a class): called per model name
  findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  scopes: OIDC_SCOPES,
  responseTypes: ['code'], // OAuth 2.1: no implicit / hybrid
  pkce: { required: () => true }, // S256 is the only method oidc-provider 9 supports anyway
  // Refresh tokens for every client registered with the refresh_token grant type, whether or not
  // it asked for offline_access (the default demands offline_access in the scope).
  issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true, // every refresh consumes the old RT; reusing a consumed one revokes the grant
  expiresWithSession: () => false, // default ties non-offline_access tokens to the browser session
  ttl: {
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ACCESS_TTL,
    RefreshToken: REFRESH_TTL, AuthorizationCode: 60, Interaction: 600, Session: 86400, Grant: 86400, IdToken: 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false }, // no login/consent HTML forms: see the middleware below
    registration: { enabled: true }, // RFC 7591, open (initialAccessToken defaults to false)
    revocation: { enabled: true }, // RFC 7009 at /token/revocation
    resourceIndicators: {
      enabled: true,
      // Use the resource bound at /authorize even if the token request omits `resource`
      // (default: with `openid` in scope and no `resource` at /token you get an opaque userinfo AT).
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== MCP_URL) throw new errors.InvalidTarget(`unknown resource ${resource}`);
        return {
          scope: MCP_SCOPE, audience: MCP_URL, accessTokenTTL: ACCESS_TTL,
          accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});

provider.on('registration_create.success', () => { stats.client_registrations += 1; });
provider.on('authorization.success', () => { stats.authorizations += 1; });
provider.on('grant.success', (ctx) => {
  const gt = ctx.oidc.params.grant_type;
  if (gt === 'authorization_code') stats.authorization_code_grants += 1;
  if (gt === 'refresh_token') stats.refresh_token_grants += 1;
});
// Clients only ever see error_description "grant request is invalid"; the reason is in error_detail.
provider.on('grant.error', (_ctx, err) => {
  const bump = (o, k) => { o[k] = (o[k] ?? 0) + 1; };
  bump(stats.token_errors, err.error);
  bump(stats.token_error_details, err.error_detail ?? err.error_description);
  if (err.error_detail === 'refresh token already used') stats.refresh_token_reuse_detected += 1;
});
provider.on('refresh_token.consumed', () => { stats.refresh_tokens_rotated += 1; });
provider.on('grant.revoked', () => { stats.grants_revoked += 1; }); // reuse detection or /token/revocation
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));

// Auto-login TEST_SUB and auto-consent to everything asked, without any form, and without needing a
// cookie jar: the interaction is looked up by the uid in its URL, and /auth/:uid (the resume step)
// gets its `_interaction_resume` cookie injected if the user agent did not send it. Cookies are
// unsigned because no cookies.keys are configured. Test-only: whoever knows the uid can resume it.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/token/revocation') stats.revocation_calls += 1;
  // An authorization request without `scope` ends in access_denied ("no scope was granted") in
  // oidc-provider; RFC 6749 §3.3 lets an AS apply a default instead, which is what we do.
  if (ctx.method === 'GET' && ctx.path === '/auth' && DEFAULT_SCOPE && !ctx.query.scope) {
    ctx.query = { ...ctx.query, scope: DEFAULT_SCOPE };
  }
  const resume = /^\/auth\/([\w-]+)$/.exec(ctx.path);
  if (resume && !ctx.cookies.get('_interaction_resume')) {
    const h = ctx.req.headers.cookie;
    ctx.req.headers.cookie = `${h ? `${h}; ` : ''}_interaction_resume=${resume[1]}`;
  }
  const m = /^\/interaction\/([\w-]+)$/.exec(ctx.path);
  if (!m) return next();
  const interaction = await provider.Interaction.find(m[1]);
  if (!interaction) { ctx.status = 400; ctx.body = 'unknown or expired interaction'; return undefined; }
  const { params } = interaction;
  const accountId = interaction.session?.accountId ?? TEST_SUB;
  const grant = (interaction.grantId && await provider.Grant.find(interaction.grantId))
    || new provider.Grant({ accountId, clientId: params.client_id });
  // Grant every requested scope in one go (login + consent in a single round trip): OIDC scopes
  // to the grant itself, all requested scopes to each requested resource (the resource server's
  // own scope list filters what ends up in the access token).
  const scopes = (params.scope ?? '').split(' ').filter(Boolean);
  grant.addOIDCScope(scopes.filter((s) => OIDC_SCOPES.includes(s)).join(' '));
  for (const r of [params.resource ?? []].flat()) grant.addResourceScope(r, scopes.join(' '));
  interaction.result = { login: { accountId }, consent: { grantId: await grant.save() } };
  await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
  ctx.status = 303;
  ctx.redirect(interaction.returnTo); // -> /auth/:uid -> 303 to redirect_uri?code&state&iss
  return undefined;
});

// ---------------------------------------------------------------- protected MCP server
const JWKS = jose.createRemoteJWKSet(new URL(`${ISSUER}/jwks`)); // fetched over HTTP, then cached

function challenge(res, error, description) {
  stats.mcp_401 += 1;
  let h = `Bearer resource_metadata="${PRM_URL}"`; // RFC 6750 §3: no error code when no token sent
  if (error) h += `, error="${error}", error_description="${description.replace(/["\\]/g, "'")}"`;
  res.set('WWW-Authenticate', h).status(401)
    .json({ error: error ?? 'unauthorized', error_description: description ?? 'bearer token required' });
}

async function bearer(req, res, next) {
  const m = /^Bearer +(\S+)$/i.exec(req.get('authorization') ?? '');
  if (!m) return challenge(res);
  try {
    const { payload } = await jose.jwtVerify(m[1], JWKS, {
      issuer: ISSUER, audience: MCP_URL, typ: 'at+jwt', algorithms: ['RS256'],
      requiredClaims: ['exp', 'sub', 'jti'], clockTolerance: 0,
    });
    // StreamableHTTPServerTransport forwards req.auth to tool handlers as extra.authInfo.
    req.auth = {
      token: m[1], clientId: payload.client_id, expiresAt: payload.exp,
      scopes: (payload.scope ?? '').split(' ').filter(Boolean), extra: { sub: payload.sub, jti: payload.jti },
    };
    return next();
  } catch (e) {
    return challenge(res, 'invalid_token', e.code === 'ERR_JWT_EXPIRED' ? 'token expired' : `${e.code ?? 'ERR'}: ${e.message}`);
  }
}

function buildMcpServer() {
  const server = new McpServer({ name: 'oidc-test-backend', version: '1.0.0' });
  server.registerTool('echo', {
    description: 'Returns its message argument', inputSchema: { message: z.string() },
  }, async ({ message }) => ({ content: [{ type: 'text', text: message }] }));
  server.registerTool('whoami', { description: 'Identity of the bearer token used for this call' }, async (extra) => {
    const a = extra.authInfo ?? {};
    const who = { sub: a.extra?.sub, jti: a.extra?.jti, client_id: a.clientId, scope: a.scopes?.join(' '), exp: a.expiresAt };
    return { content: [{ type: 'text', text: JSON.stringify(who) }], structuredContent: who };
  });
  return server;
}

const app = express();
app.use(express.json());
const prm = {
  resource: MCP_URL, authorization_servers: [ISSUER], scopes_supported: [MCP_SCOPE],
  bearer_methods_supported: ['header'], resource_name: 'mcp-mux oidc test backend',
};
app.get('/.well-known/oauth-protected-resource/mcp', (_req, res) => res.json(prm));
app.get('/.well-known/oauth-protected-resource', (_req, res) => res.json(prm)); // root fallback
app.get('/stats', (_req, res) => res.json(stats));
app.post('/stats/reset', (_req, res) => { resetStats(); res.json(stats); });

// Stateless: a fresh server+transport per POST, no Mcp-Session-Id, so any number of concurrent
// clients/requests work without session affinity. JSON responses (not SSE) keep curl simple.
app.post('/mcp', bearer, async (req, res) => {
  res.on('finish', () => { if (res.statusCode < 300) stats.mcp_ok += 1; });
  const server = buildMcpServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => { transport.close(); server.close(); });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (e) {
    console.error('mcp error', e);
    if (!res.headersSent) res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null });
  }
});
// No standalone SSE stream / sessions in stateless mode: 405 is what the spec allows.
app.all('/mcp', bearer, (_req, res) => res.set('Allow', 'POST').status(405).json({ error: 'method not allowed' }));

await new Promise((ok) => { provider.listen(AS_PORT, '127.0.0.1', ok); });
await new Promise((ok) => { app.listen(MCP_PORT, '127.0.0.1', ok); });
console.log(JSON.stringify({ ready: true, issuer: ISSUER, mcp: MCP_URL, resource_metadata: PRM_URL, access_ttl: ACCESS_TTL }));
