-- Places small orders (auto-approved unless COST says otherwise) with a bearer token.
local token = os.getenv("BENCH_TOKEN")
local cost = os.getenv("BENCH_COST") or "25"
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"OrderItems": ["chair"], "Cost": ' .. cost .. '}'

local threads = {}
function setup(thread) table.insert(threads, thread) end

bad = 0
function response(status, headers, body)
  if status ~= 201 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("unexpected " .. status .. ": " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local wrong = 0
  for _, t in ipairs(threads) do wrong = wrong + (t:get("bad") or 0) end
  io.write(string.format("RESULT requests=%d elapsed=%.3f p50_us=%d p99_us=%d errors=%d wrong=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, wrong))
end
