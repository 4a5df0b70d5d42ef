// mcp-mux's fixture for the server scenarios of the MCP conformance suite
// (@modelcontextprotocol/conformance, `--suite active`). scripts/conformance.sh
// runs the suite against this server directly and again through an mcp-mux
// session whose only backend is this server; both runs should agree.
//
// It offers exactly the tools, resources and prompts the scenarios ask for,
// over Streamable HTTP at http://$HOST:$PORT/mcp (HOST defaults to 127.0.0.1),
// one McpServer per MCP session. Requests whose Host or Origin is not a
// loopback name are refused with 403 (the dns-rebinding-protection scenario).
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

  return mcp;
}

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
  if (req.method !== 'POST' || !isInitialize) return reply(res, 400, 'No Mcp-Session-Id, and not an initialize request');

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

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error('request failed:', err);
    if (!res.headersSent) reply(res, 500, 'Internal error', -32603);
    else res.end();
  });
}).listen(port, host, () => console.log(`conformance fixture on http://${host}:${port}/mcp`));
