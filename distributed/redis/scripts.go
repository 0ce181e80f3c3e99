package redis

import goredis "github.com/redis/go-redis/v9"

// All Lua lives here. Every script reads the server's clock (TIME), so ages
// and queue waits never depend on the instances' clocks, and refreshes the
// TTL of what it writes. Scripts address queue and wake-up keys derived from
// the run's base key; all of them share the run's hash tag.
//
// Common KEYS layout: KEYS[1] meta, KEYS[2] inst, KEYS[3] beat, KEYS[4] seq,
// KEYS[5] qs, KEYS[6] asg, KEYS[7] lease, KEYS[8] res, KEYS[9] ct,
// KEYS[10] refused.
// ARGV[1] is always the base key, ARGV[2] the TTL in milliseconds.

const luaCommon = `
local base, ttl = ARGV[1], tonumber(ARGV[2])
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function touch(...)
  for _, k in ipairs({...}) do redis.call('PEXPIRE', k, ttl) end
end
-- the run's state; a run nobody registered yet counts as running
local function state()
  return redis.call('HGET', KEYS[1], 'state') or 'running'
end
-- wake every waiting claimer (each Claim call registers its own list)
local function wake_all()
  local ids = redis.call('SMEMBERS', base .. 'claimers')
  for _, id in ipairs(ids) do
    local k = base .. 'ctl:' .. id
    redis.call('LPUSH', k, 'x')
    redis.call('LTRIM', k, 0, 7)
    touch(k)
  end
end
-- does an instance with caps (a set) satisfy the requirement key rk
-- ("a,b|c" means a and (b or c))?
local function satisfies(rk, caps)
  if rk == '' then return true end
  for req in string.gmatch(rk, '[^,]+') do
    local ok = false
    for alt in string.gmatch(req, '[^|]+') do
      if caps[alt] then ok = true break end
    end
    if not ok then return false end
  end
  return true
end
-- decode a JSON record, or nil when it is not a JSON object
local function decode(raw)
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then return v end
  return nil
end
-- why instance id (a string) may not act with session: nil when it is
-- registered with that session, accepted and alive (its last heartbeat no
-- older than its lease timeout); else {'refused', reason} or
-- {'notreg', why, detail}.
local function not_live(id, session, now)
  if redis.call('EXISTS', KEYS[1]) == 0 then return {'notreg', 'gone', ''} end
  local raw = redis.call('HGET', KEYS[2], id)
  if not raw then
    local ref = redis.call('HGET', KEYS[10], id)
    if ref then
      local r = decode(ref)
      if not r then return {'corrupt', KEYS[10], id} end
      if r.session == session then return {'refused', tostring(r.reason)} end
    end
    return {'notreg', 'unknown', ''}
  end
  local reg = decode(raw)
  if not reg then return {'corrupt', KEYS[2], id} end
  if reg.session ~= session then return {'notreg', 'replaced', reg.session or ''} end
  local lm = tonumber(reg.lease_ms) or 0
  local beat = tonumber(redis.call('HGET', KEYS[3], id) or '0')
  if lm > 0 and now - beat > lm then
    return {'notreg', 'lost', tostring(now - beat) .. 'ms (lease timeout ' .. lm .. 'ms)'}
  end
  return nil
end
-- enqueue an assignment: ARGV offsets given by the caller
local function enqueue(module, attempt, rk, prio, payload)
  local member = module .. '#' .. attempt
  if redis.call('HSETNX', KEYS[6], member, payload) == 0 then return 0 end
  local seq = redis.call('INCR', KEYS[4])
  redis.call('ZADD', base .. 'q:' .. rk, -prio * 1e9 + seq, member)
  if redis.call('SADD', KEYS[5], rk) == 1 then wake_all() end
  redis.call('LPUSH', base .. 'w:' .. rk, 'x')
  touch(KEYS[4], KEYS[5], KEYS[6], base .. 'q:' .. rk, base .. 'w:' .. rk)
  return 1
end
`

// register: ARGV[3] instance, ARGV[4] fingerprint, ARGV[5] registration
// JSON, ARGV[6] session, ARGV[7] total, ARGV[8] lease timeout in ms.
// Returns {status, detail...}: ok | ended | taken (session, age_ms,
// lease_ms) | mismatch (master's fingerprint) | total (master's total) |
// corrupt (key, field): a registration record is not JSON.
// The master's (instance 0) fingerprint and total are the run's: when it
// registers, workers registered before it with others move to the refused
// hash, with the reason their next heartbeat or claim reports.
var scriptRegister = goredis.NewScript(luaCommon + `
local st = state()
if st == 'completed' then
  return {'ended', redis.call('HGET', KEYS[1], 'completed_ms') or ''}
end
local now = now_ms()
local id, fp, session, total = ARGV[3], ARGV[4], ARGV[6], tonumber(ARGV[7])
local cur = redis.call('HGET', KEYS[2], id)
if cur then
  local c = decode(cur)
  if not c then return {'corrupt', KEYS[2], id} end
  local lm = tonumber(c.lease_ms) or 0
  local age = now - tonumber(redis.call('HGET', KEYS[3], id) or '0')
  if c.session ~= session and (lm <= 0 or age <= lm) then
    return {'taken', c.session or '', age, lm}
  end
end
if id ~= '0' then
  local mraw = redis.call('HGET', KEYS[2], '0')
  if mraw then
    local m = decode(mraw)
    if not m then return {'corrupt', KEYS[2], '0'} end
    if m.fp ~= fp then return {'mismatch', m.fp or ''} end
    if tonumber(m.total) ~= total then return {'total', m.total} end
  end
else
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local wid = all[i]
    if wid ~= '0' then
      local w = decode(all[i+1])
      if not w then return {'corrupt', KEYS[2], wid} end
      local reason
      if w.fp ~= fp then
        reason = 'instance ' .. wid .. ' presents pipeline ' .. tostring(w.fp) .. ' but the run\'s master (instance 0) presents ' .. fp .. '; every instance must run the same program and commit as the master'
      elseif tonumber(w.total) ~= total then
        reason = 'instance ' .. wid .. ' expects ' .. tostring(w.total) .. ' instances (--total) but the run\'s master (instance 0) expects ' .. total .. '; give every instance the same --total'
      end
      if reason then
        redis.call('HDEL', KEYS[2], wid)
        redis.call('HDEL', KEYS[3], wid)
        redis.call('HSET', KEYS[10], wid, cjson.encode({session = w.session or '', reason = reason}))
        touch(KEYS[10])
      end
    end
  end
  redis.call('HSET', KEYS[1], 'fp', fp, 'total', total)
end
if redis.call('HSETNX', KEYS[1], 'state', 'running') == 1 then
  redis.call('HSET', KEYS[1], 'created_ms', now)
end
redis.call('HDEL', KEYS[10], id)
redis.call('HSET', KEYS[2], id, ARGV[5])
redis.call('HSET', KEYS[3], id, now)
touch(KEYS[1], KEYS[2], KEYS[3])
redis.call('PUBLISH', base .. 'events', 's')
return {'ok', ''}
`)

// heartbeat: ARGV[3] instance, ARGV[4] the session it registered with.
// Returns {status, master_registered, master_age_ms, state, by, reason,
// failed, registered}; status ok | lost (the run's keys are gone) |
// refused (reason) | notreg (unknown or replaced, detail) | corrupt (key,
// field). A lost instance
// (heartbeat older than its lease timeout) that beats again is alive again.
var scriptHeartbeat = goredis.NewScript(luaCommon + `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'lost'} end
local now = now_ms()
local bad = not_live(ARGV[3], ARGV[4], now)
if bad and not (bad[1] == 'notreg' and bad[2] == 'lost') then return bad end
redis.call('HSET', KEYS[3], ARGV[3], now)
touch(KEYS[3])
local mb = redis.call('HGET', KEYS[3], '0')
local reg, age = 0, 0
if redis.call('HEXISTS', KEYS[2], '0') == 1 and mb then
  reg, age = 1, now - tonumber(mb)
end
local m = redis.call('HMGET', KEYS[1], 'state', 'by', 'reason', 'failed')
return {'ok', reg, age, m[1] or '', m[2] or '', m[3] or '', m[4] or '', redis.call('HLEN', KEYS[2])}
`)

// instances: returns {now_ms, inst hash flattened, beat hash flattened}.
var scriptInstances = goredis.NewScript(luaCommon + `
return {now_ms(), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
`)

// leases: returns {now_ms, lease hash flattened}.
var scriptLeases = goredis.NewScript(luaCommon + `
return {now_ms(), redis.call('HGETALL', KEYS[7])}
`)

// enqueue: from ARGV[3], groups of five: module, attempt, requirement
// key, priority, assignment JSON (whose "enq_ms":0 gets the server time).
var scriptEnqueue = goredis.NewScript(luaCommon + `
if state() == 'completed' then return 'ended' end
local now = now_ms()
for i = 3, #ARGV, 5 do
  local payload = string.gsub(ARGV[i+4], '"enq_ms":0', '"enq_ms":' .. now, 1)
  enqueue(ARGV[i], ARGV[i+1], ARGV[i+2], tonumber(ARGV[i+3]), payload)
end
return 'ok'
`)

// claim: ARGV[3] instance, ARGV[4] capabilities (comma-separated),
// ARGV[5] claim request id (idempotent retries), ARGV[6] the wake-up key
// whose token this claimer consumed just before ("" if none), ARGV[7] '1'
// when this Claim call has registered as a waiting claimer, ARGV[8] how
// many assignments to take at most, ARGV[9] the session the claimer
// registered with.
// Returns {'ok', assignment JSON, lease JSON, queue_wait_ms, ...} (one
// triple per assignment) | {'empty', wake key...} | {'ended'} |
// {'refused', reason} | {'notreg', why, detail} | {'corrupt', key,
// field}: a claimer that is not
// registered with its session, was refused or is lost takes nothing.
var scriptClaim = goredis.NewScript(luaCommon + `
local prev = redis.call('HGET', KEYS[9], ARGV[5])
if prev then return cjson.decode(prev) end
local function unregister()
  redis.call('SREM', base .. 'claimers', ARGV[5])
  redis.call('DEL', base .. 'ctl:' .. ARGV[5])
end
local registered = ARGV[7] == '1'
if state() ~= 'running' then
  if registered then unregister() end
  return {'ended'}
end
local now = now_ms()
local bad = not_live(ARGV[3], ARGV[9], now)
if bad then
  if registered then unregister() end
  return bad
end
local caps = {}
for c in string.gmatch(ARGV[4], '[^,]+') do caps[c] = true end
local eligible, wake = {}, {}
for _, rk in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  if satisfies(rk, caps) then
    table.insert(eligible, rk)
    table.insert(wake, base .. 'w:' .. rk)
  end
end
local out = {'ok'}
local session = ARGV[9]
local consumed = ARGV[6]
for k = 1, tonumber(ARGV[8]) do
  local best, best_score, best_rk
  for _, rk in ipairs(eligible) do
    local top = redis.call('ZRANGE', base .. 'q:' .. rk, 0, 0, 'WITHSCORES')
    if top[1] and (not best or tonumber(top[2]) < best_score) then
      best, best_score, best_rk = top[1], tonumber(top[2]), rk
    end
  end
  if not best then break end
  redis.call('ZREM', base .. 'q:' .. best_rk, best)
  -- Keep one wake-up token per queued assignment: the token this claimer
  -- consumed pays for one assignment of its queue; every other assignment
  -- taken removes a token of its own queue.
  local own = base .. 'w:' .. best_rk
  if consumed == own then consumed = '' else redis.call('RPOP', own) end
  -- The assignment stays in asg (until Complete) so that enqueueing the
  -- same module and attempt again is ignored.
  local payload = redis.call('HGET', KEYS[6], best)
  local a = cjson.decode(payload)
  local lease = cjson.encode({module = a.module, attempt = a.attempt, holder = tonumber(ARGV[3]), session = session, token = ARGV[5] .. '.' .. k, claimed_ms = now})
  redis.call('HSET', KEYS[7], a.module, lease)
  table.insert(out, payload)
  table.insert(out, lease)
  table.insert(out, now - (tonumber(a.enq_ms) or now))
end
if #out == 1 then
  redis.call('SADD', base .. 'claimers', ARGV[5])
  touch(base .. 'claimers')
  table.insert(wake, 1, 'empty')
  return wake
end
if consumed ~= '' then redis.call('LPUSH', consumed, 'x') end
if registered then unregister() end
redis.call('HSET', KEYS[9], ARGV[5], cjson.encode(out))
touch(KEYS[7], KEYS[9])
return out
`)

// reclaim: ARGV[3] module, ARGV[4] token, ARGV[5] next attempt (0: none),
// ARGV[6] requirement key, ARGV[7] priority, ARGV[8] next assignment JSON.
var scriptReclaim = goredis.NewScript(luaCommon + `
local cur = redis.call('HGET', KEYS[7], ARGV[3])
if not cur or cjson.decode(cur).token ~= ARGV[4] then return 'stale' end
redis.call('HDEL', KEYS[7], ARGV[3])
if tonumber(ARGV[5]) > 0 then
  local payload = string.gsub(ARGV[8], '"enq_ms":0', '"enq_ms":' .. now_ms(), 1)
  enqueue(ARGV[3], ARGV[5], ARGV[6], tonumber(ARGV[7]), payload)
end
return 'ok'
`)

// publish: from ARGV[3], groups of four: module, token, result JSON, the
// call's nonce. Returns ok or stale for each. A retry of the same call
// (same nonce) after its reply was lost gets ok; any other publish for a
// lease that is no longer current is stale.
var scriptPublish = goredis.NewScript(luaCommon + `
local out = {}
for i = 3, #ARGV, 4 do
  local module, token, result, nonce = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local cur = redis.call('HGET', KEYS[7], module)
  if not cur or cjson.decode(cur).token ~= token then
    local stored = redis.call('HGET', KEYS[8], module)
    if stored and cjson.decode(stored).nonce == nonce then
      table.insert(out, 'ok')
    else
      table.insert(out, 'stale')
    end
  else
    redis.call('HDEL', KEYS[7], module)
    redis.call('HSET', KEYS[8], module, result)
    -- Small results travel with their announcement, so awaiting
    -- instances need not read them back.
    if string.len(result) <= 65536 then
      redis.call('PUBLISH', base .. 'events', 'r:' .. module .. '\n' .. result)
    else
      redis.call('PUBLISH', base .. 'events', 'r:' .. module)
    end
    table.insert(out, 'ok')
  end
end
touch(KEYS[8])
return out
`)

// cancel: ARGV[3] instance, ARGV[4] reason.
var scriptCancel = goredis.NewScript(luaCommon + `
if state() ~= 'running' then return 'noop' end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'by', ARGV[3], 'reason', ARGV[4])
redis.call('PUBLISH', base .. 'events', 's') -- first: see complete
wake_all()
return 'ok'
`)

// complete: ARGV[3] failed (0/1). Keeps meta, inst and beat until their
// TTL (so the run id cannot be reused) and deletes the run's working data:
// queues, assignments, leases and results.
var scriptComplete = goredis.NewScript(luaCommon + `
if state() == 'completed' then return 'noop' end
redis.call('HSET', KEYS[1], 'state', 'completed', 'failed', ARGV[3], 'completed_ms', now_ms())
touch(KEYS[1], KEYS[2], KEYS[3], KEYS[10])
-- Announce first: a script that fails later (on a corrupt key) keeps what
-- it wrote, and the others must learn the run is over all the same.
redis.call('PUBLISH', base .. 'events', 's')
wake_all()
for _, rk in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  redis.call('DEL', base .. 'q:' .. rk, base .. 'w:' .. rk)
end
touch(base .. 'claimers')
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
return 'ok'
`)

// result: ARGV[3] module. Returns {state, result JSON or false}.
var scriptResult = goredis.NewScript(luaCommon + `
return {state(), redis.call('HGET', KEYS[8], ARGV[3])}
`)

// state: returns {state, by, reason, failed, registered instances}.
var scriptState = goredis.NewScript(luaCommon + `
local m = redis.call('HMGET', KEYS[1], 'state', 'by', 'reason', 'failed')
return {m[1] or '', m[2] or '', m[3] or '', m[4] or '', redis.call('HLEN', KEYS[2])}
`)
