-- wrk script for bench/bids.py's ceiling: a plain GET, counting status classes.
-- Latency is wrk's own histogram. done() writes one line to $BENCH_OUT:
--   ceiling <duration_us> <requests> <2xx> <4xx> <5xx> <p50_us> <p99_us> <connect> <read> <write> <timeout>

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, c4xx, c5xx = 0, 0, 0
end

function response(status, headers, body)
  if status < 400 then
    ok = ok + 1
  elseif status < 500 then
    c4xx = c4xx + 1
  else
    c5xx = c5xx + 1
  end
end

function done(summary, latency, requests)
  local ok_, c4, c5 = 0, 0, 0
  for _, thread in ipairs(threads) do
    ok_ = ok_ + thread:get("ok")
    c4 = c4 + thread:get("c4xx")
    c5 = c5 + thread:get("c5xx")
  end
  local f = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  f:write(string.format("ceiling %d %d %d %d %d %d %d %d %d %d %d\n", summary.duration, summary.requests, ok_, c4, c5,
    latency:percentile(50), latency:percentile(99), summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
  f:close()
end
