-- wrk script for scripts/bench/bench.py: POSTs the JSON-RPC message in
-- WRK_BODY, on the MCP session in WRK_SESSION when one is given, and prints
-- one line of numbers: RESULT p50 p90 p99 (µs) requests duration (µs) errors.
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
local session = os.getenv("WRK_SESSION")
if session and session ~= "" then
  wrk.headers["Mcp-Session-Id"] = session
  wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout))
end
