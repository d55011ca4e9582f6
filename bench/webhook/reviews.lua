-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/webhook: POSTs the AdmissionReviews of the files given after `--`, in turn,
-- to /mutate over wrk's kept-alive connections. With KILT_BENCH_RATE set (requests per second
-- for this wrk thread), requests start on a fixed schedule: a connection that has its response
-- takes the next free slot of the schedule and waits for it (see README.md); without it there is
-- no delay() at all (wrk then never arms a timer).
-- done() prints one JSON line with the counts and the latency percentiles (microseconds).
local requests = {}
local n, i = 0, 0
local rate = tonumber(os.getenv("KILT_BENCH_RATE") or "")

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

if rate then
  -- wrk's Lua has no clock finer than a second: LuaJIT's FFI reads CLOCK_MONOTONIC (1 on Linux)
  local ffi = require("ffi")
  ffi.cdef [[
    struct kilt_timespec { long tv_sec; long tv_nsec; };
    int clock_gettime(int clock, struct kilt_timespec *ts);
  ]]
  local ts = ffi.new("struct kilt_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local period = 1000 / rate
  local next_slot = nil
  -- Called when a connection may send its next request: the milliseconds to wait for the next
  -- free slot. A slot already past is not made up for (no burst after a slow answer): when the
  -- server cannot keep up, the rate reached falls below the schedule's and the run says so.
  function delay()
    local now = now_ms()
    local slot = now
    if next_slot and next_slot > now then
      slot = next_slot
    end
    next_slot = slot + period
    return math.floor(slot - now + 0.5)
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
