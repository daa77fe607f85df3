-- wrk script for receiver_load.sh: a mix of webhook deliveries to
-- unloc-webhook-receiver, each response checked against the status its kind
-- must get. wrk's Lua is LuaJIT (Lua 5.1); every wrk thread has its own state.
--
--   wrk -t N -c N ... -s receiver_load.lua URL -- "Basic <good>" "Basic <wrong>"
--
-- Run with as many connections as threads (-c == -t): wrk tells a script
-- nothing about connections, but with one connection a thread has at most
-- one request in flight, so each response belongs to the last request made.
-- That is what lets a duplicate repeat only ids whose first delivery has
-- already been answered 2xx (no race with the first delivery), and what lets
-- every status be checked against the kind of request it answers.
--
-- done() prints one line "receiver_load: key=value ..." for the shell script.

-- A cycle of 20: 12 new events (60%), 3 duplicates (15%), 5 invalid (25%).
local cycle = {
  "new", "new", "dup", "new", "bad_auth", "new", "new", "malformed", "new", "dup",
  "new", "schema", "new", "new", "content_type", "new", "dup", "new", "wrong_path", "new",
}
local kinds = { "new", "dup", "bad_auth", "malformed", "schema", "content_type", "wrong_path" }
local expected = { new = "2xx", dup = "2xx", bad_auth = 401, malformed = 400, schema = 422,
                   content_type = 415, wrong_path = 404 }

local good_auth, wrong_auth

-- Per thread (wrk's thread states share nothing): read back by done().
tid = 0             -- this thread's number, set by setup()
counts = {}         -- "kind status" -> responses
unexpected = 0      -- responses whose status does not fit their request's kind
first_unexpected = ""
lost = 0            -- requests never answered (wrk reconnected after an error)
orphans = 0         -- responses with no request outstanding
new_ok = 0          -- new events acknowledged 2xx: each must be printed once
pending = nil       -- the kind of the request in flight
local pending_id
local sequence = 0  -- new ids made by this thread
local answered, answered_count = {}, 0  -- ring of the last 64 ids acknowledged as new
local started = false

function init(args)
  good_auth, wrong_auth = args[1], args[2]
end

local created_second, created_text = -1, ""
local function event_body(id)
  local now = os.time()
  if now ~= created_second then  -- created = now: no "late event" diagnostics
    created_second, created_text = now, os.date("!%Y-%m-%dT%H:%M:%S.000Z", now)
  end
  return '{"id":"' .. id .. '","action":"unlocked","created":"' .. created_text ..
    '","keyId":"3f97fafb-1b6a-42d0-85fa-ae2ef338cc45",' ..
    '"lockId":"c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef","lockName":"North gate",' ..
    '"appUserId":"+12125552390","userName":"Load Test"}'
end

local function post(path, content_type, auth, body)
  return wrk.format("POST", path,
                    { ["Content-Type"] = content_type, ["Authorization"] = auth }, body)
end

function request()
  if not started then
    started = true
    -- wrk calls request() once in thread 1 to check the request's syntax and
    -- never sends it: keep it out of the bookkeeping.
    if tid == 1 then return post("/accessEvents", "application/json", good_auth, "{}") end
  end
  if pending then lost = lost + 1 end
  sequence = sequence + 1
  local kind = cycle[(sequence - 1) % #cycle + 1]
  if kind == "dup" and answered_count == 0 then kind = "new" end
  pending, pending_id = kind, nil
  if kind == "new" then
    -- Unique across threads: the thread's number and its counter.
    pending_id = string.format("%08x-0000-4000-8000-%012x", tid, sequence)
    return post("/accessEvents", "application/json", good_auth, event_body(pending_id))
  elseif kind == "dup" then
    local id = answered[(sequence * 7) % math.min(answered_count, 64) + 1]
    return post("/accessEvents", "application/json", good_auth, event_body(id))
  elseif kind == "bad_auth" then
    return post("/accessEvents", "application/json", wrong_auth, event_body(
      string.format("%08x-0000-4000-9000-%012x", tid, sequence)))
  elseif kind == "malformed" then
    return post("/accessEvents", "application/json", good_auth, '{"id":"truncated')
  elseif kind == "schema" then
    return post("/accessEvents", "application/json", good_auth, '{"id":"not-a-uuid"}')
  elseif kind == "content_type" then
    return post("/accessEvents", "text/plain", good_auth, event_body(
      string.format("%08x-0000-4000-a000-%012x", tid, sequence)))
  else  -- wrong_path
    return post("/elsewhere", "application/json", good_auth, event_body(
      string.format("%08x-0000-4000-b000-%012x", tid, sequence)))
  end
end

function response(status, headers, body)
  local kind = pending
  if not kind then
    orphans = orphans + 1
    return
  end
  pending = nil
  local ok = status >= 200 and status < 300
  local key = kind .. " " .. (ok and "2xx" or tostring(status))
  counts[key] = (counts[key] or 0) + 1
  if (expected[kind] == "2xx" and not ok) or (expected[kind] ~= "2xx" and status ~= expected[kind]) then
    unexpected = unexpected + 1
    if first_unexpected == "" then
      first_unexpected = kind .. " got " .. status .. ": " .. string.sub(body, 1, 200)
    end
  elseif kind == "new" then
    new_ok = new_ok + 1
    answered_count = answered_count + 1
    answered[(answered_count - 1) % 64 + 1] = pending_id
  end
end

-- The setup state: one entry per wrk thread, to read the threads' counters in done().
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function done(summary, latency, requests)
  local total = { unexpected = 0, lost = 0, orphans = 0, new_ok = 0, in_flight_new = 0 }
  local by_kind, first = {}, ""
  for _, t in ipairs(threads) do
    for name in pairs(total) do
      if name ~= "in_flight_new" then total[name] = total[name] + t:get(name) end
    end
    -- The request in flight when wrk stopped: a new event may have been printed.
    if t:get("pending") == "new" then total.in_flight_new = total.in_flight_new + 1 end
    for key, n in pairs(t:get("counts")) do by_kind[key] = (by_kind[key] or 0) + n end
    if first == "" then first = t:get("first_unexpected") end
  end
  local e = summary.errors
  local line = string.format(
    "receiver_load: requests=%d seconds=%.2f rps=%.0f p99_ms=%.1f unexpected=%d lost=%d " ..
    "orphans=%d new_ok=%d in_flight_new=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d timeouts=%d",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, total.unexpected, total.lost, total.orphans, total.new_ok,
    total.in_flight_new, e.connect, e.read, e.write, e.timeout)
  for _, kind in ipairs(kinds) do
    local statuses = {}
    for key, n in pairs(by_kind) do
      local k, s = key:match("^(%S+) (%S+)$")
      if k == kind then statuses[#statuses + 1] = s .. ":" .. n end
    end
    table.sort(statuses)
    line = line .. " " .. kind .. "=" .. (#statuses > 0 and table.concat(statuses, ",") or "none")
  end
  print(line)
  if first ~= "" then print("receiver_load: first unexpected: " .. first) end
end
