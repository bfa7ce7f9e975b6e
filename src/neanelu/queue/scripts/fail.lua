-- ARGV: offset, id, token, mode ('retry' | 'fatal'), delay_ms, default_cap, events_maxlen, error
-- Returns 0 stale token, 1 retry scheduled, 2 failed (fatal), 3 dead-lettered (attempts exhausted).
local now = now_ms(ARGV[1])
local id = ARGV[2]
local job = jkey(id)
local f = redis.call('HMGET', job, 'state', 'tok', 'g', 'att', 'max')
if f[1] ~= 'active' or f[2] ~= ARGV[3] then
  return 0
end
local g = f[3]
local default_cap = tonumber(ARGV[6])
local maxlen = ARGV[7]
release(id, g)
redis.call('HSET', job, 'err', ARGV[8])
redis.call('HDEL', job, 'tok')
local result
if ARGV[4] == 'fatal' then
  to_terminal(id, g, now, 'failed', maxlen)
  result = 2
elseif tonumber(f[4]) >= tonumber(f[5]) then
  to_terminal(id, g, now, 'dead', maxlen)
  result = 3
else
  local delay = tonumber(ARGV[5])
  if delay > 0 then
    redis.call('HSET', job, 'state', 'delayed')
    redis.call('ZADD', K_DELAYED, num(now + delay), id)
  else
    to_wait(id, g)
  end
  event(maxlen, 'retry', id, g)
  result = 1
end
maybe_ready(g, default_cap)
return result
