-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/webhook: POSTs the AdmissionReviews of the files given after `--`, in turn,
-- to /mutate over wrk's kept-alive connections. With KILT_BENCH_DELAY_MS set, each connection
-- waits that long after every response before its next request: the rate is throttled (a closed
-- loop; see README.md); without it there is no delay() at all (wrk then never arms a timer).
-- done() prints one JSON line with the counts and the latency percentiles (microseconds).
local requests = {}
local n, i = 0, 0
local delay_ms = tonumber(os.getenv("KILT_BENCH_DELAY_MS") or "")

function init(args)
  for k = 1, #args do
    local f = assert(io.open(args[k], "rb"))
    local body = f:read("*a")
    f:close()
    n = n + 1
    requests[n] = wrk.format("POST", "/mutate",
      { ["Content-Type"] = "application/json", ["Content-Length"] = tostring(#body) }, body)
  end
  assert(n > 0, "no review files given")
  i = math.random(n) - 1
end

function request()
  i = i % n + 1
  return requests[i]
end

if delay_ms then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, "non2xx": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d, "mean": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
