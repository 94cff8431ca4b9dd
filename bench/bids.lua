-- wrk driver for bench/bids.py: concurrent bids on one hot lot.
--
--   wrk -t N -c N -d <seconds+grace>s -s bench/bids.lua http://127.0.0.1:PORT/api/v1/lots/ID/bids \
--       -- <tokens_file> <seconds> <step> <jitter> <start_price> [<strategy> <base_us> <tick_us> <interval_us>]
--
-- One wrk thread per connection, so each thread's Lua state is exactly one
-- connection and one request is in flight at a time: per-connection state
-- (which bidder, the last next_min_bid seen, the send time) lives in plain
-- thread globals. Line k of tokens_file holds the token(s) of connection k;
-- with several tokens the connection takes turns between them (used at
-- 1 connection, where a lone bidder could only ever bid once).
--
-- The price: strategy "next" bids the next_min_bid read from the last answer
-- this connection got (201: lot.next_min_bid; 409 bid_too_low:
-- detail.next_min_bid) plus a random 0..jitter steps. Under contention that
-- answer is stale by the time the bid lands, so most bids are 409. Strategy
-- "clock" bids at least start + step per tick_us elapsed on CLOCK_MONOTONIC
-- since base_us (shared by all threads): a bid sent later asks more, so bids
-- land in rising order unless the server reorders them, and most are
-- accepted; it measures how many bids the server can accept.
--
-- interval_us > 0 paces the connection: one bid every interval_us (from a
-- random offset), as a bidder with think time; 0 bids again as soon as the
-- answer is in (closed loop, where latency is bidders / throughput).
--
-- Each thread stops itself (wrk.thread:stop()) once `seconds` have passed
-- since its first request, after the response in flight came back, so no
-- bid is left in flight when wrk exits: every bid the server committed is
-- one this script saw answered. wrk's own -d is only an upper bound.
--
-- Latency is measured here (CLOCK_MONOTONIC through the LuaJIT FFI), per
-- request, from the moment the request is built to the moment its response
-- is parsed; each connection's first request is not timed. done() writes every counter and every latency to $BENCH_OUT.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clk_id, bench_timespec_t *tp);
]]
local ts = ffi.new("bench_timespec_t")
local CLOCK_MONOTONIC = 1

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

-- main state: hand each thread its number, keep the threads for done()
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

-- thread state
function init(args)
  local tokens_file = args[1]
  window_us = tonumber(args[2]) * 1000000
  step = tonumber(args[3])
  jitter = tonumber(args[4])
  next_min = tonumber(args[5])
  start_price = next_min
  strategy = args[6] or "next"
  base_us = tonumber(args[7] or "0")
  tick_us = tonumber(args[8] or "1000")
  interval_us = tonumber(args[9] or "0")
  next_send = 0
  tokens = {}
  local n = 0
  for line in io.lines(tokens_file) do
    n = n + 1
    if n == id then
      for token in line:gmatch("%S+") do
        table.insert(tokens, token)
      end
    end
  end
  if #tokens == 0 then
    error("no token for connection " .. id)
  end
  math.randomseed(id * 7919 + now_us() % 1000003)
  headers = {}
  for i, token in ipairs(tokens) do
    headers[i] = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  end
  turn = 0
  sent, received = 0, 0
  accepted, too_low, leading, conflict_other, client_other, server_5xx = 0, 0, 0, 0, 0, 0
  statuses = {}
  lat = {}      -- every bid response, microseconds
  lat_ok = {}   -- 201s only
  t0, t_first, t_last = 0, 0, 0
  stopped = false
end

function delay()
  if interval_us <= 0 then
    return 0
  end
  local t = now_us()
  if next_send == 0 then
    next_send = t + math.random(0, interval_us)
  else
    next_send = next_send + interval_us
  end
  if next_send <= t then
    return 0
  end
  return math.floor((next_send - t) / 1000)
end

function request()
  local t = now_us()
  if t_first == 0 then
    t_first = t
  end
  turn = turn + 1
  local price = next_min
  if strategy == "clock" then
    local by_clock = start_price + math.floor((t - base_us) / tick_us) * step
    if by_clock > price then
      price = by_clock
    end
  end
  if jitter > 0 then
    price = price + step * math.random(0, jitter)
  end
  sent = sent + 1
  t0 = t
  return wrk.format("POST", nil, headers[(turn - 1) % #headers + 1], string.format('{"price":%d}', price))
end

function response(status, headers_, body)
  local t = now_us()
  local dt = t - t0
  received = received + 1
  -- A connection's first request is left out of the latency: it pays for the
  -- connection, and with --rate a fresh connection that has not sent yet
  -- holds a gthread worker thread (gunicorn waits for its first bytes).
  local timed = received > 1
  if timed then
    lat[#lat + 1] = dt
  end
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 then
    accepted = accepted + 1
    if timed then
      lat_ok[#lat_ok + 1] = dt
    end
  elseif status == 409 then
    if body:find("bid_too_low", 1, true) then
      too_low = too_low + 1
    elseif body:find("already_leading", 1, true) then
      leading = leading + 1
    else
      conflict_other = conflict_other + 1
    end
  elseif status >= 500 then
    server_5xx = server_5xx + 1
  else
    client_other = client_other + 1
  end
  -- 201: lot.next_min_bid; 409 bid_too_low: detail.next_min_bid
  local m = body and body:match('"next_min_bid"%s*:%s*(%d+)')
  if m then
    next_min = tonumber(m)
  end
  t_last = t
  if t - t_first >= window_us and not stopped then
    stopped = true
    wrk.thread:stop()
  end
end

local function field(v)
  return string.format("%d", v or 0)
end

function done(summary, latency, requests)
  local path = os.getenv("BENCH_OUT")
  local f = assert(io.open(path, "w"))
  f:write(string.format("summary %d %d %d %d %d %d %d\n", summary.duration, summary.requests,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
  for _, thread in ipairs(threads) do
    local names = { "id", "sent", "received", "accepted", "too_low", "leading", "conflict_other", "client_other",
      "server_5xx", "t_first", "t_last" }
    local parts = {}
    for _, name in ipairs(names) do
      parts[#parts + 1] = name .. "=" .. field(thread:get(name))
    end
    f:write("thread " .. table.concat(parts, " ") .. "\n")
    local st = thread:get("statuses") or {}
    local sp = {}
    for code, count in pairs(st) do
      sp[#sp + 1] = string.format("%d:%d", code, count)
    end
    f:write("statuses " .. table.concat(sp, " ") .. "\n")
    local l = thread:get("lat") or {}
    f:write("lat " .. table.concat(l, " ") .. "\n")
    local lo = thread:get("lat_ok") or {}
    f:write("lat_ok " .. table.concat(lo, " ") .. "\n")
  end
  f:close()
end
