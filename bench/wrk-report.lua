-- wrk script for bench/run.sh.
--
-- Requests cycle over GET /api/0 .. /api/(BENCH_PATHS-1) (default 100), made
-- once in init so that each request costs wrk a table lookup only. When wrk
-- is done, one line starting with "WRKJSON " carries the results as JSON:
-- counts, errors, and latencies in microseconds.

local reqs = {}
local idx = 0

function init(args)
  local n = tonumber(os.getenv("BENCH_PATHS") or "100")
  for i = 0, n - 1 do
    reqs[#reqs + 1] = wrk.format("GET", "/api/" .. i)
  end
  -- Threads start at different places so that they do not march in step.
  idx = math.random(0, #reqs - 1)
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
