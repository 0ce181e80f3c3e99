package redis

import goredis "github.com/redis/go-redis/v9"

// All Lua lives here. Every script reads the server's clock (TIME), so ages
// and queue waits never depend on the instances' clocks, and refreshes the
// TTL of what it writes, once per call. Scripts touch only keys they were
// given in KEYS (see keys.go for the names and for how the per-requirement
// queues reach the scripts).
//
// Common KEYS layout: KEYS[1] meta, KEYS[2] inst, KEYS[3] beat, KEYS[4] seq,
// KEYS[5] qs, KEYS[6] asg, KEYS[7] lease, KEYS[8] res, KEYS[9] ct,
// KEYS[10] refused; then, for scripts that use queues, the queue and
// wake-up key of each requirement key: KEYS[9+2p] and KEYS[10+2p] for the
// p-th one.
// ARGV[1] is always the run's pub/sub channel, ARGV[2] the TTL in
// milliseconds.
//
// The server's work per module is what the engine pays for most, so the
// scripts spend commands per call (a batch), not per assignment, wherever
// the guarantees allow: one HMGET or HSET for all fields of a batch, one
// ZPOPMIN for a batch from one queue, one RPOP with a count for its
// wake-up tokens, one announcement for a batch of results.

const luaCommon = `
-- ttl stays the string the caller sent: a Lua number passed to
-- redis.call is formatted with printf on every call.
local chan, ttl = ARGV[1], ARGV[2]
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
-- queue and wake-up key of the p-th requirement key passed
local function qkey(p) return KEYS[9 + 2 * p] end
local function wkey(p) return KEYS[10 + 2 * p] end
-- redis.call(cmd, key, items...) in chunks (Lua's unpack has a limit)
local function chunked(cmd, key, items, step)
  for i = 1, #items, step do
    redis.call(cmd, key, unpack(items, i, math.min(i + step - 1, #items)))
  end
end
-- decode a JSON record, or nil when it is not a JSON object
local function decode(raw)
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then return v end
  return nil
end
-- not_live's verdict (below) from raw, id's registration record (false
-- when there is none), and beat, its last heartbeat (false when there is
-- none; nil: read it if the lease timeout needs it).
local function judge_live(id, session, now, raw, beat)
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
  if lm <= 0 then return nil end
  if beat == nil then beat = redis.call('HGET', KEYS[3], id) end
  beat = tonumber(beat or '0')
  if now - beat > lm then
    return {'notreg', 'lost', tostring(now - beat) .. 'ms (lease timeout ' .. lm .. 'ms)'}
  end
  return nil
end
-- why instance id (a string) may not act with session: nil when it is
-- registered with that session, accepted and alive (its last heartbeat no
-- older than its lease timeout); else {'refused', reason} or
-- {'notreg', why, detail}. exists: whether the run's meta hash has a
-- state (a registered run always has one).
local function not_live(id, session, now, exists)
  if not exists then return {'notreg', 'gone', ''} end
  return judge_live(id, session, now, redis.call('HGET', KEYS[2], id))
end
-- the requirement keys of the run, when the caller passed a stale list
local function rks_reply()
  local out = {'rks'}
  for _, rk in ipairs(redis.call('SMEMBERS', KEYS[5])) do table.insert(out, rk) end
  return out
end
-- enqueue assignments: ARGV[at] is R, the number of requirement keys
-- passed (their queue and wake-up keys are pairs 1..R of KEYS), ARGV[at+1]
-- to ARGV[at+R] the requirement keys, then groups of four: member
-- ("module#attempt"), requirement index (1..R), priority, and the
-- assignment JSON without its end: it ends with '"enq_ms":', and the
-- script appends the server time and '}' (a concatenation; a pattern
-- replacement cost a scan of every payload). An assignment already
-- queued (same module and attempt) is ignored.
local function enqueue(at, now)
  local R = tonumber(ARGV[at])
  local first = at + R + 1
  local fields, nf = {}, 0
  for i = first, #ARGV, 4 do
    nf = nf + 1
    fields[nf] = ARGV[i]
  end
  if nf == 0 then return end
  local have = {}
  for i = 1, #fields, 1000 do
    local got = redis.call('HMGET', KEYS[6], unpack(fields, i, math.min(i + 999, #fields)))
    for j, v in ipairs(got) do have[i + j - 1] = v end
  end
  local seen, new, nn = {}, {}, 0
  for j = 1, nf do
    local f = fields[j]
    if not have[j] and not seen[f] then
      seen[f] = true
      nn = nn + 1
      new[nn] = j
    end
  end
  if nn == 0 then return end
  local seq = redis.call('INCRBY', KEYS[4], nn) - nn
  -- the server time as a string once, not once per assignment
  local stamp = now .. '}'
  local hset, per = {}, {}
  for n = 1, nn do
    local j = new[n]
    local i = first + (j - 1) * 4
    hset[2 * n - 1] = fields[j]
    hset[2 * n] = ARGV[i + 3] .. stamp
    local r = tonumber(ARGV[i + 1])
    local z = per[r]
    if not z then
      z = {}
      per[r] = z
    end
    z[#z + 1] = -tonumber(ARGV[i + 2]) * 1e9 + seq + n
    z[#z + 1] = fields[j]
  end
  chunked('HSET', KEYS[6], hset, 1000)
  touch(KEYS[4], KEYS[6])
  for r, z in pairs(per) do
    chunked('ZADD', qkey(r), z, 1000)
    local tokens = {}
    for t = 1, #z / 2 do tokens[t] = 'x' end
    chunked('LPUSH', wkey(r), tokens, 1000)
    touch(qkey(r), wkey(r))
    if redis.call('SADD', KEYS[5], ARGV[at + r]) == 1 then
      -- A new queue: claimers waiting elsewhere must learn its keys.
      redis.call('HINCRBY', KEYS[1], 'nq', 1)
      touch(KEYS[1], KEYS[5])
      redis.call('PUBLISH', chan, 'q')
    end
  end
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
redis.call('PUBLISH', chan, 's')
return {'ok', ''}
`)

// heartbeat: ARGV[3] instance, ARGV[4] the session it registered with.
// Returns {status, master_registered, master_age_ms, state, by, reason,
// failed, registered}; status ok | lost (the run's keys are gone) |
// refused (reason) | notreg (unknown or replaced, detail) | corrupt (key,
// field). A lost instance
// (heartbeat older than its lease timeout) that beats again is alive again.
//
// An idle instance pays for its heartbeats, so the script reads what it
// needs in as few commands as it can (one HMGET per hash: the instance's
// and the master's fields together): 7 commands inside the script.
var scriptHeartbeat = goredis.NewScript(luaCommon + `
-- A registered run always has a state; meta without one was made by an
-- enqueue after the keys were lost.
local m = redis.call('HMGET', KEYS[1], 'state', 'by', 'reason', 'failed')
if not m[1] then return {'lost'} end
local now = now_ms()
local regs = redis.call('HMGET', KEYS[2], ARGV[3], '0')
local beats = redis.call('HMGET', KEYS[3], ARGV[3], '0')
local bad = judge_live(ARGV[3], ARGV[4], now, regs[1], beats[1])
if bad and not (bad[1] == 'notreg' and bad[2] == 'lost') then return bad end
redis.call('HSET', KEYS[3], ARGV[3], now)
touch(KEYS[3])
local mb = beats[2]
if ARGV[3] == '0' then mb = now end -- the master's own heartbeat, just written
local reg, age = 0, 0
if regs[2] and mb then
  reg, age = 1, now - tonumber(mb)
end
return {'ok', reg, age, m[1], m[2] or '', m[3] or '', m[4] or '', redis.call('HLEN', KEYS[2])}
`)

// instances: returns {now_ms, inst hash flattened, beat hash flattened}.
var scriptInstances = goredis.NewScript(luaCommon + `
return {now_ms(), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
`)

// leases: returns {now_ms, lease hash flattened}.
var scriptLeases = goredis.NewScript(luaCommon + `
return {now_ms(), redis.call('HGETALL', KEYS[7])}
`)

// enqueue: ARGV from 3 as enqueue() in luaCommon describes.
var scriptEnqueue = goredis.NewScript(luaCommon + `
if state() == 'completed' then return 'ended' end
enqueue(3, now_ms())
return 'ok'
`)

// claim: KEYS after the fixed ones: the queue and wake-up key of every
// requirement key the claimer satisfies, then the claim's control list.
// ARGV[3] instance, ARGV[4] claim request id (idempotent retries),
// ARGV[5] the index of the requirement key whose wake-up token this
// claimer consumed just before (0 if none), ARGV[6] '1' when this Claim
// call has waited before (its control list may hold tokens), ARGV[7] how
// many assignments to take at most, ARGV[8] the session the claimer
// registered with, ARGV[9] how many requirement keys the caller knows of.
// Returns {'ok', now_ms, member, assignment JSON, ...} (a pair per
// assignment; member is "module#attempt"; the k-th lease has token
// "<claim request id>.k", this claimer as holder and session, and now_ms
// as its time) | {'empty'} | {'rks', requirement key...} (the
// caller's list is stale: claim again with these) | {'ended'} |
// {'refused', reason} | {'notreg', why, detail} | {'corrupt', key,
// field}: a claimer that is not registered with its session, was refused
// or is lost takes nothing.
var scriptClaim = goredis.NewScript(luaCommon + luaClaim + `return claim()`)

// luaClaim defines claim(), scriptClaim's work, which reads its arguments
// from ARGV[3] to ARGV[9] and returns the reply.
const luaClaim = `
local function claim()
-- A retried claim gets the same answer: its record holds the time and
-- the members taken; their assignments are still in asg.
local prev = redis.call('HGET', KEYS[9], ARGV[4])
if prev then
  local rec = cjson.decode(prev)
  if #rec < 3 then return rec end
  local got = redis.call('HMGET', KEYS[6], unpack(rec, 3))
  local out = {rec[1], rec[2]}
  for k = 3, #rec do
    table.insert(out, rec[k])
    table.insert(out, got[k - 2])
  end
  return out
end
local ctl = KEYS[#KEYS]
local waited = ARGV[6] == '1'
local meta = redis.call('HMGET', KEYS[1], 'state', 'nq')
if meta[1] and meta[1] ~= 'running' then
  if waited then redis.call('DEL', ctl) end
  return {'ended'}
end
local now = now_ms()
local bad = not_live(ARGV[3], ARGV[8], now, meta[1] ~= false)
if bad then
  if waited then redis.call('DEL', ctl) end
  return bad
end
if tonumber(meta[2] or '0') ~= tonumber(ARGV[9]) then return rks_reply() end
local npairs = (#KEYS - 11) / 2
local max = tonumber(ARGV[7])
local picked, taken = {}, {}
if npairs == 1 then
  -- ZRANGE and ZREMRANGEBYRANK take what ZPOPMIN would (lowest scores,
  -- ties by member), but without the scores, which the server would
  -- format and the script would copy for nothing.
  picked = redis.call('ZRANGE', qkey(1), '0', ARGV[7] - 1)
  if #picked > 0 then redis.call('ZREMRANGEBYRANK', qkey(1), '0', #picked - 1) end
  taken[1] = #picked
elseif npairs > 1 then
  -- the best max of every queue, then the best max of those
  local cands = {}
  for p = 1, npairs do
    local z = redis.call('ZRANGE', qkey(p), 0, max - 1, 'WITHSCORES')
    for i = 1, #z, 2 do table.insert(cands, {z[i], tonumber(z[i + 1]), p}) end
  end
  table.sort(cands, function(a, b) return a[2] < b[2] end)
  local rem = {}
  for i = 1, math.min(max, #cands) do
    local c = cands[i]
    table.insert(picked, c[1])
    rem[c[3]] = rem[c[3]] or {}
    table.insert(rem[c[3]], c[1])
  end
  for p, members in pairs(rem) do
    redis.call('ZREM', qkey(p), unpack(members))
    taken[p] = #members
  end
end
if #picked == 0 then return {'empty'} end
-- Keep one wake-up token per queued assignment: the token this claimer
-- consumed pays for one assignment of its queue; every other assignment
-- taken removes a token of its own queue.
local consumed = tonumber(ARGV[5])
if consumed > 0 and (taken[consumed] or 0) > 0 then
  taken[consumed] = taken[consumed] - 1
  consumed = 0
end
for p, n in pairs(taken) do
  -- as RPOP with a count, without a reply of n tokens
  if n > 0 then redis.call('LTRIM', wkey(p), '0', -1 - n) end
end
if consumed > 0 then redis.call('LPUSH', wkey(consumed), 'x') end
-- The assignments stay in asg (until Complete) so that enqueueing the
-- same module and attempt again is ignored.
local payloads = redis.call('HMGET', KEYS[6], unpack(picked))
-- Module and attempt come from the member ("module#attempt"), so no
-- assignment is decoded here; the lease is written field by field, token
-- first (publish reads it without decoding), and not sent back: the
-- claimer knows every field but the module and attempt (in the member)
-- and the time (now).
--
-- Every string a script makes costs the server a pass over its bytes
-- (Redis's Lua hashes all of them), and turning a number into one a
-- printf: so each lease is one concatenation of strings made once per
-- call, and the indexes below 10 are cut from a constant.
local out, leases, rec = {'ok', now}, {}, {'ok', now}
local head, digits = '{"token":"' .. ARGV[4] .. '.', '123456789'
local tail = ',"holder":' .. ARGV[3] .. ',"session":' .. cjson.encode(ARGV[8]) .. ',"claimed_ms":' .. now .. ',"module":'
for k = 1, #picked do
  local member = picked[k]
  local mod, attempt = string.match(member, '^(.*)#(%d+)$')
  if not mod or not payloads[k] then return {'corrupt', KEYS[6], member} end
  leases[2 * k - 1] = mod
  leases[2 * k] = head .. (k < 10 and string.sub(digits, k, k) or k) .. '","attempt":' .. attempt .. tail .. cjson.encode(mod) .. '}'
  out[2 * k + 1] = member
  out[2 * k + 2] = payloads[k]
  rec[k + 2] = member
end
redis.call('HSET', KEYS[7], unpack(leases))
if waited then redis.call('DEL', ctl) end
redis.call('HSET', KEYS[9], ARGV[4], cjson.encode(rec))
touch(KEYS[7], KEYS[9])
return out
end
`

// reclaim: ARGV[3] module, ARGV[4] token, then from ARGV[5] the next
// attempt to queue as enqueue() in luaCommon describes (R = 0 and no
// group: none). Returns ok | stale.
var scriptReclaim = goredis.NewScript(luaCommon + `
local cur = redis.call('HGET', KEYS[7], ARGV[3])
if not cur or cjson.decode(cur).token ~= ARGV[4] then return 'stale' end
redis.call('HDEL', KEYS[7], ARGV[3])
if #ARGV > 5 then enqueue(5, now_ms()) end
return 'ok'
`)

// publish: ARGV[3] the run's results channel, ARGV[4] its names
// channel, then from ARGV[5], groups of five: module, the lease record's
// beginning that its token makes ('{"token":"<token>"'; one that is no
// lease's beginning for a token that cannot be one), result JSON (which
// holds a nonce of the call's), and the two pieces of the result's
// announcement the caller made (see below): "<length>:<module>" and
// "<length>:" (the result's length, or -1 for a result too large to
// travel). Returns ok or stale for each. A retry of the same call (the
// same result JSON) after its reply was lost gets ok; any other publish
// for a lease that is no longer current is stale. Two announcements
// carry the batch (see keys.results): on the results channel the results
// themselves, "r:<module>\n<result>" for one; for more, "b:" and, per
// result, "<length>:<module><length>:<result>", with length -1 and no
// result for one too large to travel (length-prefixed: cheaper to build
// and read than JSON, in the script and in every subscribed process); on
// the names channel only the names, as "r:<module>" or a batch with every
// length -1. An instance that awaits a result it did not receive reads it
// back.
var scriptPublish = goredis.NewScript(luaCommon + luaPublish + `return publish(3)`)

// luaPublish defines publish(pa), scriptPublish's work with its
// arguments from ARGV[pa] (the results channel) on; it returns the reply.
//
// Every string a script makes costs the server a pass over its bytes
// (Redis's Lua hashes all of them) and every number it turns into one a
// printf, so the caller sends the announcement's length prefixes, and
// the script only strings together what it was sent.
const luaPublish = `
local function publish(pa)
local n = (#ARGV - pa - 1) / 5
if n < 1 then return {} end
local mods = {}
for j = 1, n do mods[j] = ARGV[pa + 2 + (j - 1) * 5] end
local cur = redis.call('HMGET', KEYS[7], unpack(mods))
local out, del, set, parts, names, done = {}, {}, {}, {'b:'}, {'b:'}, {}
local nd, np, nn, one = 0, 1, 1, 0
for j = 1, n do
  local i = pa + 2 + (j - 1) * 5
  local module, head, result = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  -- The claim script writes leases token first: compared without
  -- decoding (or matching a pattern, which costs more than both).
  if done[module] or not cur[j] or string.sub(cur[j], 1, #head) ~= head then
    -- Lua's strings are interned: comparing them costs nothing, and the
    -- same JSON means the same nonce, the same call.
    local stored = done[module] or redis.call('HGET', KEYS[8], module)
    if stored == result then
      out[j] = 'ok'
    else
      out[j] = 'stale'
    end
  else
    done[module] = result
    nd = nd + 1
    del[nd] = module
    set[2 * nd - 1] = module
    set[2 * nd] = result
    -- Small results travel with their announcement, so awaiting
    -- instances need not read them back.
    parts[np + 1] = ARGV[i + 3]
    parts[np + 2] = ARGV[i + 4]
    np = np + 2
    if ARGV[i + 4] ~= '-1:' then
      np = np + 1
      parts[np] = result
    end
    names[nn + 1] = ARGV[i + 3]
    names[nn + 2] = '-1:'
    nn = nn + 2
    one = i
    out[j] = 'ok'
  end
end
if nd > 0 then
  redis.call('HDEL', KEYS[7], unpack(del))
  redis.call('HSET', KEYS[8], unpack(set))
  touch(KEYS[8])
  if nd == 1 then
    if ARGV[one + 4] ~= '-1:' then
      redis.call('PUBLISH', ARGV[pa], 'r:' .. ARGV[one] .. '\n' .. ARGV[one + 2])
    else
      redis.call('PUBLISH', ARGV[pa], 'r:' .. ARGV[one])
    end
    redis.call('PUBLISH', ARGV[pa + 1], 'r:' .. ARGV[one])
  else
    redis.call('PUBLISH', ARGV[pa], table.concat(parts))
    redis.call('PUBLISH', ARGV[pa + 1], table.concat(names))
  end
end
return out
end
`

// publishClaim: the claim's KEYS and its ARGV[3] to ARGV[9] (ARGV[5]
// '0' and ARGV[6] '0': no token consumed, no wait before), then ARGV[10]
// and after as publish's ARGV[3] and after. Publishes (publish) and then,
// when ARGV[7] (the most to take) is not '0', claims (claim): returns
// {publish's reply, claim's reply}, or {publish's reply} when it did not
// claim. claim's {'empty'} reply is the caller's to act on: this script
// never waits.
var scriptPublishClaim = goredis.NewScript(luaCommon + luaPublish + luaClaim + `
local pub = publish(10)
if ARGV[7] == '0' then return {pub} end
return {pub, claim()}
`)

// cancel: ARGV[3] instance, ARGV[4] reason. Waiting claimers are woken by
// their processes, which hear the announcement.
var scriptCancel = goredis.NewScript(luaCommon + `
if state() ~= 'running' then return 'noop' end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'by', ARGV[3], 'reason', ARGV[4])
redis.call('PUBLISH', chan, 's')
return 'ok'
`)

// complete: KEYS after the fixed ones: the queue and wake-up key of every
// requirement key the caller knows of; ARGV[3] failed (0/1), ARGV[4] how
// many requirement keys the caller knows of. Marks the run completed and
// announces it (once), then keeps meta, inst and beat until their TTL (so
// the run id cannot be reused) and deletes the run's working data: queues,
// assignments, leases and results. Returns ok, or {'rks', requirement
// key...} when the caller's list is stale: call again with these (the run
// is marked completed already; the next call deletes).
var scriptComplete = goredis.NewScript(luaCommon + `
if state() ~= 'completed' then
  redis.call('HSET', KEYS[1], 'state', 'completed', 'failed', ARGV[3], 'completed_ms', now_ms())
  touch(KEYS[1], KEYS[2], KEYS[3], KEYS[10])
  -- Announce first: a script that fails later (on a corrupt key) keeps
  -- what it wrote, and the others must learn the run is over all the same.
  redis.call('PUBLISH', chan, 's')
end
if tonumber(redis.call('HGET', KEYS[1], 'nq') or '0') ~= tonumber(ARGV[4]) then return rks_reply() end
for p = 1, (#KEYS - 10) / 2 do redis.call('DEL', qkey(p), wkey(p)) end
redis.call('HDEL', KEYS[1], 'nq')
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

// results: ARGV[3..] modules (a batch of watched ones, see watch.go).
// Returns {state, result JSON or false for each module, in order}.
var scriptResults = goredis.NewScript(luaCommon + `
local out = redis.call('HMGET', KEYS[8], unpack(ARGV, 3))
table.insert(out, 1, state())
return out
`)
