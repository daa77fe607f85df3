-- wrk script of bench/run.sh's receiver_load: valid webhook deliveries, each
-- with a new event id, posted over keep-alive connections.
--
--   wrk ... -s deliveries.lua URL -- "Basic <credentials>" ROUND
--
-- Ids are unique across wrk threads (the thread's number) and across the runs
-- against one receiver (ROUND). done() prints the rate, the p99 latency and
-- "non_2xx=N socket_errors=M", so that run.sh can tell that every delivery was accepted.

local auth, round = "", 0
tid = 0            -- set by setup(), per thread
non_2xx = 0        -- read back by done()
local sequence = 0

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function init(args)
  auth, round = args[1], tonumber(args[2]) or 0
end

local created_second, created_text = -1, ""
function request()
  sequence = sequence + 1
  local now = os.time()
  if now ~= created_second then  -- created = now: no "late event" diagnostics
    created_second, created_text = now, os.date("!%Y-%m-%dT%H:%M:%S.000Z", now)
  end
  local id = string.format("%08x-%04x-4000-8000-%012x", tid, round, sequence)
  local body = '{"id":"' .. id .. '","action":"unlocked","created":"' .. created_text ..
    '","keyId":"3f97fafb-1b6a-42d0-85fa-ae2ef338cc45",' ..
    '"lockId":"c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef","lockName":"Reference lock",' ..
    '"appUserId":"+12125552390","userName":""}'
  return wrk.format("POST", "/accessEvents",
                    { ["Content-Type"] = "application/json", ["Authorization"] = auth }, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then non_2xx = non_2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non_2xx") end
  print(string.format("deliveries: requests=%d seconds=%.3f p99_us=%d non_2xx=%d socket_errors=%d",
                      summary.requests, summary.duration / 1e6, latency:percentile(99), bad,
                      summary.errors.connect + summary.errors.read + summary.errors.write +
                        summary.errors.timeout))
end
