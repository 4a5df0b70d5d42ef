-- wrk script for scripts/bench/bench.py: POSTs the JSON-RPC message in
-- WRK_BODY, on the MCP session in WRK_SESSION when one is given, with the
-- headers in WRK_HEADERS ("Name: value" lines), and prints one line of
-- numbers: RESULT p50 p90 p99 (µs) requests duration (µs) errors. Each
-- request gets an id of its own where the body says "__ID__", as a client's
-- requests do.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
local session = os.getenv("WRK_SESSION")
if session and session ~= "" then
  wrk.headers["Mcp-Session-Id"] = session
  wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
end
for line in (os.getenv("WRK_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

local body = os.getenv("WRK_BODY")
local at = body:find('"__ID__"', 1, true)
local head, tail = body, nil
if at then head, tail = body:sub(1, at - 1), body:sub(at + 8) end

local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("prefix", '"t' .. threads .. "-")
end

local sent = 0
request = function()
  if not tail then return wrk.format(nil, nil, nil, head) end
  sent = sent + 1
  return wrk.format(nil, nil, nil, head .. prefix .. sent .. '"' .. tail)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout))
end
