-- Shared by every queue script: each gets the definitions it uses prepended at load time (see
-- scripts.py), so every top-level statement here is a `local` definition. KEYS[1] is the queue base
-- "<prefix>:{<queue>}"; all other keys are derived from it and share its hash tag, so each script
-- stays inside one cluster slot. Suffixes mirror neanelu/queue/redis_keys.py.
local base = KEYS[1]
local K_READY = base .. ':ready'
local K_ACTIVE = base .. ':active'
local K_DELAYED = base .. ':delayed'
local K_BLOCKED = base .. ':blocked'
local K_PAUSED = base .. ':paused'
local K_GCONC = base .. ':gconc'
local K_GSIZE = base .. ':gsize'
local K_DEAD = base .. ':dead'
local K_FAILED = base .. ':failed'
local K_STATS = base .. ':stats'
local K_EVENTS = base .. ':events'

-- Lua 5.1 turns numbers into strings with 14 significant digits; scores need all of them.
local function num(x)
  return string.format('%.0f', x)
end

-- Time comes from Redis so workers with skewed clocks agree on lease deadlines; the offset lets
-- tests move time forward without sleeping (always 0 in production).
local function now_ms(offset)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(offset)
end

local function jkey(id)
  return base .. ':job:' .. id
end

local function gkey(g, kind)
  return base .. ':g:' .. g .. ':' .. kind
end

local function group_cap(g, default_cap)
  local c = redis.call('HGET', K_GCONC, g)
  if c then
    return tonumber(c)
  end
  return default_cap
end

-- A group sits in the ready line exactly when it could start a job now. The line is ordered by
-- how many jobs the group is running, then by a round-robin ticket: a shop with nothing running
-- goes ahead of one that fills every slot, so a quiet shop's job takes the very next free slot,
-- and shops with equal load take turns. A group keeps its ticket (its place among equals) while it
-- waits; it draws a new one, at the back, only when it re-enters the line.
local TICKET = 1099511627776 -- 2^40
local function maybe_ready(g, default_cap, current, has_work, no_rules)
  -- `current`: the group's score in the line when the caller already looked (false: not in it).
  -- `has_work`: the caller knows the group has jobs waiting. `no_rules`: the caller knows no
  -- group is paused, blocked or has a cap of its own (see no_group_rules).
  if current == nil then
    current = redis.call('ZSCORE', K_READY, g)
  end
  local eligible = (has_work or redis.call('ZCARD', gkey(g, 'wait')) > 0)
    and (no_rules or (redis.call('SISMEMBER', K_PAUSED, g) == 0
      and not redis.call('ZSCORE', K_BLOCKED, g)))
  local active = 0
  if eligible then
    active = redis.call('ZCARD', gkey(g, 'active'))
    local cap = default_cap
    if not no_rules then
      cap = group_cap(g, default_cap)
    end
    eligible = active < cap
  end
  if not eligible then
    if current then
      redis.call('ZREM', K_READY, g)
    end
    return
  end
  local ticket
  if current then
    ticket = math.fmod(tonumber(current), TICKET)
  else
    ticket = redis.call('INCR', base .. ':rr')
  end
  redis.call('ZADD', K_READY, num(math.min(active, 4000) * TICKET + ticket), g)
end

-- True when no group is paused, blocked or has a cap of its own. Redis drops a set, sorted set
-- or hash when it empties, so one EXISTS over the three keys answers for all of them and spares
-- the three look-ups per group that can then only say no (the usual case).
local function no_group_rules()
  return redis.call('EXISTS', K_PAUSED, K_BLOCKED, K_GCONC) == 0
end

-- After a job joined its group's queue (enqueue): a group already in line stays eligible with the
-- same score (its running count did not change), so only a group not yet in line needs the check.
local function ready_after_enqueue(g, default_cap)
  if not redis.call('ZSCORE', K_READY, g) then
    maybe_ready(g, default_cap, false, true, no_group_rules())
  end
end

-- After one of the group's leases ended and nothing else changed (an ack): a group in line stays
-- eligible (one fewer running is still under its cap) and moves up by its running count; one out
-- of line may have been at its cap and needs the whole check.
local function ready_after_release(g, default_cap)
  local current = redis.call('ZSCORE', K_READY, g)
  if not current then
    maybe_ready(g, default_cap, false)
    return
  end
  local active = redis.call('ZCARD', gkey(g, 'active'))
  local ticket = math.fmod(tonumber(current), TICKET)
  redis.call('ZADD', K_READY, num(math.min(active, 4000) * TICKET + ticket), g)
end

-- The event stream: one entry per job for what someone may act on (waiting, delayed, deferred,
-- retry, stalled, dead, failed, revived): e=<kind> id=<job> g=<group>.
local function event(maxlen, kind, id, g)
  if tonumber(maxlen) > 0 then
    redis.call('XADD', K_EVENTS, 'MAXLEN', '~', maxlen, '*', 'e', kind, 'id', id, 'g', g)
  end
end

-- Starts and completions, nearly all of the stream's volume, are one entry per script call and
-- kind instead: e=active|completed n=<count> ids=<JSON list> gs=<JSON list, the groups in the
-- same order>. `events_add` collects them, `events_flush` writes them.
local batched = {}
local function events_add(kind, id, g)
  local b = batched[kind]
  if not b then
    b = {ids = {}, gs = {}}
    batched[kind] = b
  end
  b.ids[#b.ids + 1] = id
  b.gs[#b.gs + 1] = g
end

local function events_flush(maxlen)
  if tonumber(maxlen) <= 0 then
    return
  end
  for _, kind in ipairs({'completed', 'active'}) do
    local b = batched[kind]
    if b then
      redis.call('XADD', K_EVENTS, 'MAXLEN', '~', maxlen, '*', 'e', kind, 'n', #b.ids,
        'ids', cjson.encode(b.ids), 'gs', cjson.encode(b.gs))
      batched[kind] = nil
    end
  end
end

local function release(id, g)
  redis.call('ZREM', K_ACTIVE, id)
  redis.call('ZREM', gkey(g, 'active'), id)
end

local function leave_group(g)
  if redis.call('HINCRBY', K_GSIZE, g, -1) <= 0 then
    redis.call('HDEL', K_GSIZE, g)
  end
end

local function count_completed(results)
  local n = 0
  for _, r in ipairs(results) do
    n = n + r
  end
  if n > 0 then
    redis.call('HINCRBY', K_STATS, 'completed', n)
  end
end

-- Back into its group at its original score: a retried or stalled job keeps its place in line.
local function to_wait(id, g)
  local score = redis.call('HGET', jkey(id), 'score')
  redis.call('ZADD', gkey(g, 'wait'), score, id)
  redis.call('HSET', jkey(id), 'state', 'waiting')
end

-- One ack: 1, or 0 when the token no longer holds the lease (a late ack from a stalled worker).
-- Shared by complete (acks alone) and reserve (a worker's acks ride on its next reserve); the
-- caller adds the acks up into the completed total, once per call.
local function complete_one(now, id, token, default_cap, keep)
  local job = jkey(id)
  local f = redis.call('HMGET', job, 'state', 'tok', 'g')
  if f[1] ~= 'active' or f[2] ~= token then
    return 0
  end
  local g = f[3]
  release(id, g)
  leave_group(g)
  redis.call('DEL', job)
  if keep > 0 then
    redis.call('HSET', job, 'state', 'completed', 'g', g, 'ended', num(now))
    redis.call('PEXPIRE', job, keep)
  end
  ready_after_release(g, default_cap)
  events_add('completed', id, g)
  return 1
end

local function to_terminal(id, g, now, which, maxlen)
  local k = K_DEAD
  local field = 'dead'
  if which == 'failed' then
    k = K_FAILED
    field = 'failed'
  end
  redis.call('HSET', jkey(id), 'state', field, 'ended', num(now))
  redis.call('ZADD', k, num(now), id)
  redis.call('HINCRBY', K_STATS, field, 1)
  leave_group(g)
  event(maxlen, field, id, g)
end

-- Moves due delayed jobs, unblocks due groups and reclaims expired leases. Bounded per call so one
-- reserve never stalls Redis; every reserve repeats it, so a backlog drains over a few calls.
-- Returns the ids of the jobs it dead-lettered (stalls exhausted), for the worker's dead hook.
local function housekeeping(now, default_cap, max_stalls, maxlen)
  local dead = {}
  local due = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', num(now), 'LIMIT', 0, 100)
  for _, id in ipairs(due) do
    redis.call('ZREM', K_DELAYED, id)
    local g = redis.call('HGET', jkey(id), 'g')
    if g then
      to_wait(id, g)
      maybe_ready(g, default_cap)
    end
  end
  local unblocked = redis.call('ZRANGEBYSCORE', K_BLOCKED, '-inf', num(now), 'LIMIT', 0, 100)
  for _, g in ipairs(unblocked) do
    redis.call('ZREM', K_BLOCKED, g)
    maybe_ready(g, default_cap)
  end
  local expired = redis.call('ZRANGEBYSCORE', K_ACTIVE, '-inf', num(now), 'LIMIT', 0, 100)
  for _, id in ipairs(expired) do
    local g = redis.call('HGET', jkey(id), 'g')
    redis.call('ZREM', K_ACTIVE, id)
    if g then
      release(id, g)
      -- The stalled run never reported, so it does not count as an attempt; stalls have their own
      -- limit, after which the job goes to the dead-letter set rather than killing more workers.
      redis.call('HINCRBY', jkey(id), 'att', -1)
      redis.call('HDEL', jkey(id), 'tok')
      local stalls = redis.call('HINCRBY', jkey(id), 'st', 1)
      if stalls > tonumber(max_stalls) then
        redis.call('HSET', jkey(id), 'err', 'stalled ' .. stalls .. ' times: the worker running it'
          .. ' stopped renewing its lease each time (killed, hung or cut off)')
        to_terminal(id, g, now, 'dead', maxlen)
        dead[#dead + 1] = id
      else
        to_wait(id, g)
        event(maxlen, 'stalled', id, g)
      end
      maybe_ready(g, default_cap)
    end
  end
  return dead
end

-- Milliseconds until the next timed event (a delayed job, an unblock, a lease end), or -1.
local function next_wake(now)
  local best = -1
  for _, k in ipairs({K_DELAYED, K_BLOCKED, K_ACTIVE}) do
    local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
    if first[2] then
      local d = math.max(0, tonumber(first[2]) - now)
      if best < 0 or d < best then
        best = d
      end
    end
  end
  return best
end
