// mcp-mux's fixture for the server scenarios of the MCP conformance suite
// (@modelcontextprotocol/conformance). scripts/conformance.sh runs the suite
// against this server directly and again through an mcp-mux session whose
// only backend is this server.
//
// It speaks revision 2025-11-25 and offers the tools, resources and prompts
// the scenarios ask for, over Streamable HTTP at http://$HOST:$PORT/mcp (HOST
// defaults to 127.0.0.1), one McpServer per MCP session. For the 2026-07-28
// scenarios it has what those scenarios call, done the 2025 way: tools and a
// prompt that ask the client mid-call instead of answering with an
// InputRequiredResult, and a tool that marks a parameter with x-mcp-header.
// Requests whose Host or Origin is not a loopback name are refused with 403
// (the dns-rebinding-protection scenario).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { crc32, deflateSync } from 'node:zlib';
import { z } from 'zod';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  LATEST_PROTOCOL_VERSION,
  ListRootsResultSchema,
  McpError,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type ElicitRequest,
  type ServerNotification,
  type ServerRequest
} from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

// ---------------------------------------------------------------- media
// Built here rather than pasted in: a one-pixel PNG and a few samples of
// silent 8 kHz mono 16-bit WAV, both base64.
function onePixelPng(): string {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(1, 0); // width
  header.writeUInt32BE(1, 4); // height
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const pixelRow = Buffer.from([0, 0x2a, 0x7f, 0xd4]); // filter byte, then RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(pixelRow)),
    chunk('IEND', Buffer.alloc(0))
  ]).toString('base64');
}

function silentWav(samples = 8, rate = 8000): string {
  const dataLen = samples * 2;
  const wav = Buffer.alloc(44 + dataLen);
  wav.write('RIFF', 0, 'ascii');
  wav.writeUInt32LE(36 + dataLen, 4);
  wav.write('WAVEfmt ', 8, 'ascii');
  wav.writeUInt32LE(16, 16); // fmt chunk size
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28); // bytes per second
  wav.writeUInt16LE(2, 32); // block align
  wav.writeUInt16LE(16, 34); // bits per sample
  wav.write('data', 36, 'ascii');
  wav.writeUInt32LE(dataLen, 40);
  return wav.toString('base64');
}

const PNG = onePixelPng();
const WAV = silentWav();
const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));
const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });

// Asks the client (on the tool call's own stream) to fill in a form.
async function askUser(extra: Extra, message: string, requestedSchema: ElicitRequest['params']['requestedSchema']) {
  const answer = await extra.sendRequest({ method: 'elicitation/create', params: { message, requestedSchema } }, ElicitResultSchema);
  return `action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`;
}

// ---------------------------------------------------------------- one session's server
function buildServer(): McpServer {
  const mcp = new McpServer(
    { name: 'mcp-mux-conformance-fixture', version: '0.1.0' },
    { capabilities: { logging: {}, resources: { subscribe: true } } }
  );

  // Tools with fixed answers.
  const fixed: Record<string, [string, CallToolResult['content']]> = {
    test_simple_text: ['Answers with one text block', [{ type: 'text', text: 'This is a simple text response for testing.' }]],
    test_image_content: ['Answers with a one-pixel PNG', [{ type: 'image', data: PNG, mimeType: 'image/png' }]],
    test_audio_content: ['Answers with a short silent WAV', [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }]],
    test_embedded_resource: [
      'Answers with an embedded text resource',
      [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }]
    ],
    test_multiple_content_types: [
      'Answers with text, an image and an embedded JSON resource',
      [
        { type: 'text', text: 'Three kinds of content follow.' },
        { type: 'image', data: PNG, mimeType: 'image/png' },
        { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"kind":"mixed","n":3}' } }
      ]
    ]
  };
  for (const [name, [description, content]] of Object.entries(fixed)) {
    mcp.registerTool(name, { description }, async () => ({ content }));
  }

  mcp.registerTool('test_error_handling', { description: 'Always fails with a tool error (isError: true)' }, async () => ({
    isError: true,
    content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }]
  }));

  mcp.registerTool('test_tool_with_logging', { description: 'Sends three info log messages while it runs', inputSchema: {} }, async (_args, extra) => {
    const steps = ['Tool execution started', 'Tool processing data', 'Tool execution completed'];
    for (const [i, data] of steps.entries()) {
      if (i > 0) await pause(50);
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', logger: 'fixture', data } });
    }
    return text('Logged three messages.');
  });

  // For the 2026-07-28 scenarios (server-stateless), which mcp-mux serves
  // to its stateless clients over this legacy fixture.
  mcp.registerTool('test_logging_tool', { description: 'Sends an info log message while it runs', inputSchema: {} }, async (_args, extra) => {
    await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', logger: 'fixture', data: 'logged' } });
    return text('Logged one message.');
  });
  mcp.registerTool('test_missing_capability', { description: 'Needs sampling, which a client may not declare', inputSchema: {} }, async (_args, extra) => {
    await extra.sendRequest(
      { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'Hi' } }], maxTokens: 10 } },
      CreateMessageResultSchema
    );
    return text('Sampled.');
  });
  mcp.registerTool('test_streaming_elicitation', { description: 'Asks the user for a name', inputSchema: {} }, async (_args, extra) => {
    const answer = await askUser(extra, 'Your name?', { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] });
    return text(`User response: ${answer}`);
  });
  mcp.registerTool('test_trigger_tool_change', { description: 'Announces that the tool list changed', inputSchema: {} }, async () => {
    mcp.sendToolListChanged();
    return text('Tool list change announced.');
  });
  mcp.registerTool('test_trigger_prompt_change', { description: 'Announces that the prompt list changed', inputSchema: {} }, async () => {
    mcp.sendPromptListChanged();
    return text('Prompt list change announced.');
  });

  mcp.registerTool('test_tool_with_progress', { description: 'Reports progress 0, 50 and 100 of 100', inputSchema: {} }, async (_args, extra) => {
    const token = extra._meta?.progressToken;
    for (const progress of [0, 50, 100]) {
      if (progress > 0) await pause(50);
      if (token !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
      }
    }
    return text(`Progress reported for token ${String(token)}.`);
  });

  mcp.registerTool(
    'test_sampling',
    { description: 'Asks the client for an LLM completion of `prompt`', inputSchema: { prompt: z.string().describe('Text to send to the model') } },
    async ({ prompt }, extra) => {
      const reply = await extra.sendRequest(
        { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 } },
        CreateMessageResultSchema
      );
      const said = reply.content.type === 'text' ? reply.content.text : `(${reply.content.type})`;
      return text(`LLM response: ${said}`);
    }
  );

  mcp.registerTool(
    'test_elicitation',
    { description: 'Asks the client for a username and an email address', inputSchema: { message: z.string().describe('What to ask') } },
    async ({ message }, extra) => {
      const answer = await askUser(extra, message, {
        type: 'object',
        properties: {
          username: { type: 'string', description: "User's response" },
          email: { type: 'string', description: "User's email address" }
        },
        required: ['username', 'email']
      });
      return text(`User response: ${answer}`);
    }
  );

  mcp.registerTool('test_elicitation_sep1034_defaults', { description: 'Elicits a form whose fields carry defaults (SEP-1034)', inputSchema: {} }, async (_args, extra) => {
    const answer = await askUser(extra, 'Check these fields; each has a default.', {
      type: 'object',
      properties: {
        name: { type: 'string', default: 'John Doe' },
        age: { type: 'integer', default: 30 },
        score: { type: 'number', default: 95.5 },
        status: { type: 'string', enum: ['active', 'inactive', 'pending'], default: 'active' },
        verified: { type: 'boolean', default: true }
      }
    });
    return text(`Elicitation completed: ${answer}`);
  });

  mcp.registerTool('test_elicitation_sep1330_enums', { description: 'Elicits one field of each enum shape (SEP-1330)', inputSchema: {} }, async (_args, extra) => {
    const choices = (prefix: string, titles: string[]) => titles.map((title, i) => ({ const: `${prefix}${i + 1}`, title }));
    const answer = await askUser(extra, 'Pick from each list.', {
      type: 'object',
      properties: {
        untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
        titledSingle: { type: 'string', oneOf: choices('value', ['First Option', 'Second Option', 'Third Option']) },
        legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
        untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
        titledMulti: { type: 'array', items: { anyOf: choices('value', ['First Choice', 'Second Choice', 'Third Choice']) } }
      }
    } as ElicitRequest['params']['requestedSchema']);
    return text(`Elicitation completed: ${answer}`);
  });

  // The 2026-07-28 input-required scenarios (SEP-2322) ask for these tools
  // and prompt, which return an InputRequiredResult on a 2026-07-28 server.
  // A 2025-11-25 server has no such result: each asks its client mid-call,
  // on the call's own stream, as its revision does. mcp-mux turns those
  // requests into InputRequiredResult rounds for its stateless clients.
  // Like a careful server, these ask only for what the client declared.
  const need = (capability: 'sampling' | 'elicitation' | 'roots') => {
    if (!mcp.server.getClientCapabilities()?.[capability]) {
      throw new McpError(ErrorCode.InvalidRequest, `the client did not declare the capability "${capability}"`);
    }
  };
  const sample = (extra: Extra, prompt: string, maxTokens: number) =>
    (need('sampling'), extra).sendRequest(
      { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens } },
      CreateMessageResultSchema
    );
  const sampled = (reply: { content: { type: string; text?: string } }) => (reply.content.type === 'text' ? reply.content.text : `(${reply.content.type})`);
  const listRoots = (extra: Extra) => (need('roots'), extra).sendRequest({ method: 'roots/list' }, ListRootsResultSchema);
  const elicit = (extra: Extra, message: string, field: string, type: 'string' | 'boolean' = 'string') =>
    (need('elicitation'), extra).sendRequest(
      { method: 'elicitation/create', params: { message, requestedSchema: { type: 'object', properties: { [field]: { type } }, required: [field] } } },
      ElicitResultSchema
    );
  const answered = (answer: { action: string; content?: Record<string, unknown> }, field: string) =>
    answer.action === 'accept' ? String(answer.content?.[field]) : `(${answer.action})`;

  mcp.registerTool('test_input_required_result_elicitation', { description: 'Asks the user for a name, then greets them', inputSchema: {} }, async (_args, extra) => {
    const answer = await elicit(extra, 'What is your name?', 'name');
    return text(`Hello, ${answered(answer, 'name')}!`);
  });
  mcp.registerTool('test_input_required_result_sampling', { description: 'Asks the model for the capital of France', inputSchema: {} }, async (_args, extra) =>
    text(`The model says: ${sampled(await sample(extra, 'What is the capital of France?', 100))}`)
  );
  mcp.registerTool('test_input_required_result_list_roots', { description: "Lists the client's roots", inputSchema: {} }, async (_args, extra) => {
    const { roots } = await listRoots(extra);
    return text(`Roots: ${roots.map((root) => root.uri).join(', ') || '(none)'}`);
  });
  mcp.registerTool('test_input_required_result_request_state', { description: 'Asks the user to confirm', inputSchema: {} }, async (_args, extra) => {
    const answer = await elicit(extra, 'Please confirm', 'ok', 'boolean');
    return text(`Confirmed: ${answered(answer, 'ok')}`);
  });
  mcp.registerTool('test_input_required_result_tampered_state', { description: 'Asks the user to confirm', inputSchema: {} }, async (_args, extra) => {
    const answer = await elicit(extra, 'Please confirm', 'ok', 'boolean');
    return text(`Confirmed: ${answered(answer, 'ok')}`);
  });
  mcp.registerTool('test_input_required_result_multiple_inputs', { description: 'Asks for a name, a greeting and the roots at once', inputSchema: {} }, async (_args, extra) => {
    const [name, greeting, roots] = await Promise.all([
      elicit(extra, 'What is your name?', 'name'),
      sample(extra, 'Generate a greeting', 50),
      listRoots(extra)
    ]);
    return text(`${sampled(greeting)} ${answered(name, 'name')}; roots: ${roots.roots.map((root) => root.uri).join(', ')}`);
  });
  mcp.registerTool('test_input_required_result_multi_round', { description: 'Asks for a name, then a favourite colour', inputSchema: {} }, async (_args, extra) => {
    const name = await elicit(extra, 'Step 1: What is your name?', 'name');
    const color = await elicit(extra, 'Step 2: What is your favorite color?', 'color');
    return text(`${answered(name, 'name')} likes ${answered(color, 'color')}.`);
  });
  mcp.registerTool(
    'test_input_required_result_capabilities',
    { description: 'Asks for what the client declared it can give: a form, else a completion, else its roots', inputSchema: {} },
    async (_args, extra) => {
      const declared = mcp.server.getClientCapabilities() ?? {};
      if (declared.elicitation) return text(`Name: ${answered(await elicit(extra, 'What is your name?', 'name'), 'name')}`);
      if (declared.sampling) return text(`The model says: ${sampled(await sample(extra, 'Say hello', 20))}`);
      if (declared.roots) return text(`Roots: ${(await listRoots(extra)).roots.length}`);
      return text('The client declared nothing to ask for.');
    }
  );
  mcp.registerPrompt('test_input_required_result_prompt', { description: 'Asks the user what context the prompt should use' }, async (extra) => {
    const answer = await elicit(extra, 'What context should the prompt use?', 'context');
    return { messages: [{ role: 'user', content: { type: 'text', text: `Use this context: ${answered(answer, 'context')}` } }] };
  });

  // A tool whose `region` argument a 2026-07-28 client mirrors into the
  // header Mcp-Param-Region (SEP-2243); a 2025-11-25 server ignores it.
  mcp.registerTool(
    'test_custom_headers',
    {
      description: 'Runs a query in a region, which 2026-07-28 clients mirror into the Mcp-Param-Region header',
      inputSchema: {
        region: z.string().meta({ 'x-mcp-header': 'Region' }).describe('Where to run'),
        query: z.string().optional().describe('What to run')
      }
    },
    async ({ region }) => text(`Ran in ${region}.`)
  );

  // JSON Schema 2020-12 keywords zod does not write (if/then/else, $anchor,
  // $defs): the tool is registered loosely, and its listed schema replaced.
  mcp.registerTool('json_schema_2020_12_tool', { description: 'Takes a contact, described in JSON Schema 2020-12', inputSchema: z.looseObject({}) }, async () =>
    text('Contact received.')
  );

  // Resources.
  const staticText = 'Plain text served by the conformance fixture.';
  mcp.registerResource('static-text', 'test://static-text', { description: 'A fixed text resource', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: staticText }]
  }));
  mcp.registerResource('static-binary', 'test://static-binary', { description: 'A fixed PNG resource', mimeType: 'image/png' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG }]
  }));
  mcp.registerResource('watched-resource', 'test://watched-resource', { description: 'A resource clients may subscribe to', mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Nothing has changed yet.' }]
  }));
  mcp.registerResource(
    'template',
    new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { description: 'JSON data for any id', mimeType: 'application/json' },
    async (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, source: 'template' }) }] })
  );
  const subscribed = new Set<string>();
  mcp.server.setRequestHandler(SubscribeRequestSchema, async (req) => (subscribed.add(req.params.uri), {}));
  mcp.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => (subscribed.delete(req.params.uri), {}));

  // Prompts.
  const userSays = (content: any) => ({ role: 'user' as const, content });
  mcp.registerPrompt('test_simple_prompt', { description: 'A prompt without arguments' }, async () => ({
    messages: [userSays({ type: 'text', text: 'Say hello to the conformance suite.' })]
  }));
  const suggestions = ['paris', 'park', 'party', 'test', 'testing'];
  mcp.registerPrompt(
    'test_prompt_with_arguments',
    {
      description: 'A prompt that quotes its two arguments',
      argsSchema: {
        arg1: completable(z.string().describe('First argument'), (typed) => suggestions.filter((s) => s.startsWith(typed ?? ''))),
        arg2: z.string().describe('Second argument')
      }
    },
    async ({ arg1, arg2 }) => ({ messages: [userSays({ type: 'text', text: `First: ${arg1}; second: ${arg2}.` })] })
  );
  mcp.registerPrompt(
    'test_prompt_with_embedded_resource',
    { description: 'A prompt that embeds the resource named by resourceUri', argsSchema: { resourceUri: z.string().describe('URI to embed') } },
    async ({ resourceUri }) => ({
      messages: [
        userSays({ type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Text of the embedded resource.' } }),
        userSays({ type: 'text', text: 'Summarise the resource above.' })
      ]
    })
  );
  mcp.registerPrompt('test_prompt_with_image', { description: 'A prompt that carries an image' }, async () => ({
    messages: [userSays({ type: 'image', data: PNG, mimeType: 'image/png' }), userSays({ type: 'text', text: 'Describe this image.' })]
  }));

  const handlers = (mcp.server as unknown as { _requestHandlers: Map<string, (...args: unknown[]) => Promise<{ tools: { name: string; inputSchema: unknown }[] }>> })
    ._requestHandlers;
  const listTools = handlers.get('tools/list')!;
  handlers.set('tools/list', async (...args) => {
    const listed = await listTools(...args);
    for (const tool of listed.tools) if (tool.name === 'json_schema_2020_12_tool') tool.inputSchema = CONTACT_SCHEMA;
    return listed;
  });
  return mcp;
}

// The schema the json-schema-2020-12 scenario looks for, keyword by keyword.
const CONTACT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  $defs: { address: { $anchor: 'addressDef', type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
  properties: {
    name: { type: 'string' },
    address: { $ref: '#/$defs/address' },
    contactMethod: { type: 'string', enum: ['phone', 'email'] },
    phone: { type: 'string' },
    email: { type: 'string' }
  },
  allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
  if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
  then: { required: ['phone'] },
  else: { required: ['email'] },
  additionalProperties: false
};

// ---------------------------------------------------------------- HTTP
const sessions = new Map<string, StreamableHTTPServerTransport>();
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function isLoopback(hostOrUrl: string | undefined, isUrl: boolean): boolean {
  if (hostOrUrl === undefined) return isUrl; // Host is required, Origin is optional
  try {
    return LOOPBACK.has(new URL(isUrl ? hostOrUrl : `http://${hostOrUrl}`).hostname);
  } catch {
    return false;
  }
}

function reply(res: ServerResponse, status: number, message: string, code = -32000) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return JSON.parse(Buffer.concat(parts).toString('utf8') || 'null');
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp') return reply(res, 404, 'Not found');
  if (!isLoopback(req.headers.host, false) || !isLoopback(req.headers.origin, true)) {
    return reply(res, 403, 'Host or Origin is not a loopback address');
  }
  const sessionId = req.headers['mcp-session-id'];
  let body: unknown;
  if (req.method === 'POST') {
    try {
      body = await readJson(req);
    } catch {
      return reply(res, 400, 'Body is not JSON', -32700);
    }
  }
  if (typeof sessionId === 'string') {
    const transport = sessions.get(sessionId);
    if (!transport) return reply(res, 404, 'Unknown or terminated session', -32001);
    return transport.handleRequest(req, res, body);
  }
  const isInitialize = (body as { method?: unknown } | null)?.method === 'initialize';
  if (req.method === 'POST' && !isInitialize) return serveAlone(req, res, body);
  if (req.method !== 'POST') return reply(res, 400, 'No Mcp-Session-Id: open a session with initialize first');

  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (id) => void sessions.set(id, transport)
  });
  transport.onclose = () => {
    if (transport.sessionId) sessions.delete(transport.sessionId);
  };
  await buildServer().connect(transport);
  await transport.handleRequest(req, res, body);
}

// A request without a session, as a 2026-07-28 client sends every request,
// is served by a server of its own (the SDK's stateless mode), as a
// 2025-11-25 server deployed without sessions serves it. The SDK refuses
// revisions it does not know, so the header is read as its latest; what
// such a server cannot do (answer in rounds, check Mcp-Param-* headers, give
// caching hints) shows in the suite's verdicts.
async function serveAlone(req: IncomingMessage, res: ServerResponse, body: unknown) {
  if (req.headers['mcp-protocol-version'] === '2026-07-28') {
    req.headers['mcp-protocol-version'] = LATEST_PROTOCOL_VERSION;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i].toLowerCase() === 'mcp-protocol-version') req.rawHeaders[i + 1] = LATEST_PROTOCOL_VERSION;
    }
  }
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  const server = buildServer();
  res.on('close', () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
}

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('request failed:', err);
    if (!res.headersSent) reply(res, 500, 'Internal error', -32603);
    else res.end();
  });
}).listen(port, host, () => console.log(`conformance fixture on http://${host}:${port}/mcp`));
