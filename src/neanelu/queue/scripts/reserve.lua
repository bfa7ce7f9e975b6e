-- ARGV: offset, count, global_cap, default_cap, lease_ms, max_stalls, events_maxlen,
--       keep_completed_ms, then id, token pairs of jobs to ack first
-- A worker's acks ride on its next reserve: the slots they free are filled in the same round trip.
-- Returns {wake_ms, n, then per job: id, group, task, payload, headers, attempt, max_attempts,
-- token, lease_deadline}, then the count of jobs dead-lettered here for stalling and per job: id,
-- group, task, payload, attempts, error, then one 1/0 per ack (as complete returns), packed into
-- one string (see the end). wake_ms is the time to the next timed event when nothing was taken.
local now = now_ms(ARGV[1])
local count = tonumber(ARGV[2])
local global_cap = tonumber(ARGV[3])
local default_cap = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local maxlen = ARGV[7]
local keep = tonumber(ARGV[8])
local acked = {}
for i = 9, #ARGV, 2 do
  acked[#acked + 1] = complete_one(now, ARGV[i], ARGV[i + 1], default_cap, keep)
end
count_completed(acked)
events_flush(maxlen)
local dead = housekeeping(now, default_cap, ARGV[6], maxlen)
local out = {}
local taken = 0
local guard = 0
-- Counted once: only this loop adds leases from here on.
local leased = redis.call('ZCARD', K_ACTIVE)
local tok_base = false
-- Asked once: nothing below pauses, blocks or caps a group.
local no_rules = no_group_rules()
while taken < count and guard < count * 4 + 16 do
  guard = guard + 1
  if leased >= global_cap then
    break
  end
  local head = redis.call('ZPOPMIN', K_READY)
  if not head[1] then
    break
  end
  local g = head[1]
  -- The ready set is kept exact by every script, but check again: it costs little and a group
  -- that is paused or full must never start a job.
  local running = redis.call('ZCARD', gkey(g, 'active'))
  local cap = default_cap
  if not no_rules then
    cap = group_cap(g, default_cap)
  end
  local w = {}
  if running < cap and (no_rules or (redis.call('SISMEMBER', K_PAUSED, g) == 0
    and not redis.call('ZSCORE', K_BLOCKED, g))) then
    w = redis.call('ZPOPMIN', gkey(g, 'wait'))
  end
  if w[1] then
    local id = w[1]
    local job = jkey(id)
    if not tok_base then
      tok_base = redis.call('INCR', base .. ':tok')
    end
    -- Unique per reservation: one counter step per call, numbered within it.
    local token = tok_base .. '.' .. taken
    local deadline = now + lease
    redis.call('ZADD', K_ACTIVE, num(deadline), id)
    redis.call('ZADD', gkey(g, 'active'), num(deadline), id)
    local f = redis.call('HMGET', job, 'task', 'p', 'h', 'max', 'att')
    local att = tonumber(f[5] or '0') + 1
    redis.call('HSET', job, 'att', att, 'state', 'active', 'tok', token)
    out[#out + 1] = id
    out[#out + 1] = g
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
    out[#out + 1] = f[3]
    out[#out + 1] = att
    out[#out + 1] = tonumber(f[4])
    out[#out + 1] = token
    out[#out + 1] = num(deadline)
    taken = taken + 1
    leased = leased + 1
    events_add('active', id, g)
    -- Back of the line if it still has runnable work: that is the round-robin. It was just checked
    -- (not paused, not blocked) and popped from the line, so it re-enters with a new ticket.
    if running + 1 < cap and redis.call('ZCARD', gkey(g, 'wait')) > 0 then
      local ticket = redis.call('INCR', base .. ':rr')
      redis.call('ZADD', K_READY, num(math.min(running + 1, 4000) * TICKET + ticket), g)
    end
  else
    maybe_ready(g, default_cap, false, false, no_rules)
  end
end
events_flush(maxlen)
local wake = 0
if taken == 0 then
  wake = next_wake(now)
end
local result = {wake, taken}
for _, v in ipairs(out) do
  result[#result + 1] = v
end
result[#result + 1] = #dead
for _, id in ipairs(dead) do
  local f = redis.call('HMGET', jkey(id), 'g', 'task', 'p', 'att', 'err')
  result[#result + 1] = id
  for i = 1, 5 do
    result[#result + 1] = f[i]
  end
end
for _, r in ipairs(acked) do
  result[#result + 1] = r
end
-- One bulk string of length-prefixed fields ("<bytes>:<field>", a missing field empty) rather
-- than an array: a client reads an array element by element (redis-py in pure Python, the most
-- of what a reserve costs on its side), and this string in one pass.
local packed = {}
for i, v in ipairs(result) do
  local text = ''
  if v then
    text = tostring(v)
  end
  packed[i] = #text .. ':' .. text
end
return table.concat(packed)
