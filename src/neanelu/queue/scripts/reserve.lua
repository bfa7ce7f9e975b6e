-- ARGV: offset, count, global_cap, default_cap, lease_ms, max_stalls, events_maxlen
-- Returns {wake_ms, n, then per job: id, group, task, payload, headers, attempt, max_attempts,
-- token, lease_deadline}, then the count of jobs dead-lettered here for stalling and per job: id,
-- group, task, payload, attempts, error. wake_ms is the time to the next timed event when nothing
-- was taken.
local now = now_ms(ARGV[1])
local count = tonumber(ARGV[2])
local global_cap = tonumber(ARGV[3])
local default_cap = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local maxlen = ARGV[7]
local dead = housekeeping(now, default_cap, ARGV[6], maxlen)
local out = {}
local taken = 0
local guard = 0
while taken < count and guard < count * 4 + 16 do
  guard = guard + 1
  if redis.call('ZCARD', K_ACTIVE) >= global_cap then
    break
  end
  local head = redis.call('ZPOPMIN', K_READY)
  if not head[1] then
    break
  end
  local g = head[1]
  -- The ready set is kept exact by every script, but check again: it costs little and a group
  -- that is paused or full must never start a job.
  if redis.call('SISMEMBER', K_PAUSED, g) == 0 and not redis.call('ZSCORE', K_BLOCKED, g)
    and redis.call('ZCARD', gkey(g, 'active')) < group_cap(g, default_cap) then
    local w = redis.call('ZPOPMIN', gkey(g, 'wait'))
    if w[1] then
      local id = w[1]
      local job = jkey(id)
      local token = redis.call('INCR', base .. ':tok')
      local deadline = now + lease
      redis.call('ZADD', K_ACTIVE, num(deadline), id)
      redis.call('ZADD', gkey(g, 'active'), num(deadline), id)
      local att = redis.call('HINCRBY', job, 'att', 1)
      redis.call('HSET', job, 'state', 'active', 'tok', token)
      local f = redis.call('HMGET', job, 'task', 'p', 'h', 'max')
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
      event(maxlen, 'active', id, g)
    end
  end
  -- Back of the line if it still has runnable work: that is the round-robin.
  maybe_ready(g, default_cap)
end
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
return result
