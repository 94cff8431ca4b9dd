-- wrk driver for bench/coupons.py: a rush of claims on one hot coupon.
--
--   wrk -t N -c N -d <seconds+grace>s -s bench/coupons.lua http://127.0.0.1:PORT/api/v1/coupons/ID/claim \
--       -- <tokens_file> <seconds>
--
-- The approach of bench/bids.lua: one wrk thread per connection, so a
-- thread's Lua state is one connection with one request in flight. Line k of
-- tokens_file holds the tokens of connection k, each a different user: every
-- request claims as the next user (a rush is many people claiming once), and
-- a connection that runs out of users starts over (then 409 limit_reached).
--
-- Each thread stops itself once `seconds` have passed since its first
-- request, after the answer in flight came back, so every claim the server
-- committed is one this script counted: the database check can be exact.
-- Latency is per request on CLOCK_MONOTONIC (LuaJIT FFI); done() writes
-- every counter and latency to $BENCH_OUT.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } coupon_bench_timespec_t;
int clock_gettime(int clk_id, coupon_bench_timespec_t *tp);
]]
local ts = ffi.new("coupon_bench_timespec_t")

local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  window_us = tonumber(args[2]) * 1000000
  tokens = {}
  local n = 0
  for line in io.lines(args[1]) do
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
  turn = 0
  sent, received, claimed, sold_out, limit, not_claimable, other_4xx, server_5xx = 0, 0, 0, 0, 0, 0, 0, 0
  lat, lat_ok = {}, {}
  t0, t_first, t_last = 0, 0, 0
  stopped = false
end

function request()
  local t = now_us()
  if t_first == 0 then
    t_first = t
  end
  turn = turn + 1
  local token = tokens[(turn - 1) % #tokens + 1]
  sent = sent + 1
  t0 = t
  return wrk.format("POST", nil, { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, "")
end

function response(status, headers_, body)
  local t = now_us()
  local dt = t - t0
  received = received + 1
  lat[#lat + 1] = dt
  if status == 201 then
    claimed = claimed + 1
    lat_ok[#lat_ok + 1] = dt
  elseif status == 409 then
    if body:find("coupon_sold_out", 1, true) then
      sold_out = sold_out + 1
    elseif body:find("coupon_limit_reached", 1, true) then
      limit = limit + 1
    elseif body:find("coupon_not_claimable", 1, true) then
      not_claimable = not_claimable + 1
    else
      other_4xx = other_4xx + 1
    end
  elseif status >= 500 then
    server_5xx = server_5xx + 1
  else
    other_4xx = other_4xx + 1
  end
  t_last = t
  if t - t_first >= window_us and not stopped then
    stopped = true
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local f = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  f:write(string.format("errors %d %d %d %d\n", summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout))
  local names = { "sent", "received", "claimed", "sold_out", "limit", "not_claimable", "other_4xx", "server_5xx",
    "t_first", "t_last" }
  for _, thread in ipairs(threads) do
    local parts = {}
    for _, name in ipairs(names) do
      parts[#parts + 1] = name .. "=" .. string.format("%d", thread:get(name) or 0)
    end
    f:write("thread " .. table.concat(parts, " ") .. "\n")
    f:write("lat " .. table.concat(thread:get("lat") or {}, " ") .. "\n")
    f:write("lat_ok " .. table.concat(thread:get("lat_ok") or {}, " ") .. "\n")
  end
  f:close()
end
