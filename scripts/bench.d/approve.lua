-- Approves orders awaiting approval, each once: thread k of n takes every n-th id from
-- BENCH_IDS. The answer comes after the workflow has run on, so its latency is
-- approve -> processed; every answer must say "processed".
local ids_file = os.getenv("BENCH_IDS")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  ids = {}
  local i = 0
  for line in io.lines(ids_file) do
    if i % nthreads == index then table.insert(ids, line) end
    i = i + 1
  end
  next_id = 1
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local id = ids[next_id]
  if id == nil then
    -- Every order of this thread is decided: nothing left to measure.
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  next_id = next_id + 1
  return wrk.format("POST", "/api/orders/" .. id .. "/decision", nil, '{"approved": true}')
end

bad = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"processed"', 1, true) then
    if not string.find(body, '"ok"', 1, true) then
      bad = bad + 1
      if bad <= 3 then io.stderr:write("unexpected " .. status .. ": " .. body .. "\n") end
    end
  end
end

function done(summary, latency, requests)
  local wrong = 0
  for _, t in ipairs(threads) do wrong = wrong + (t:get("bad") or 0) end
  io.write(string.format("RESULT requests=%d elapsed=%.3f p50_us=%d p99_us=%d errors=%d wrong=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, wrong))
end
