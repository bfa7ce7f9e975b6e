-- ARGV: offset, id, token, delay_ms, block_group (0/1), default_cap, events_maxlen
-- Gives the job back without using an attempt. With block_group the whole group waits (the shop's
-- Shopify bucket is empty: no other job of the shop may start) and this job keeps its place at the
-- head of its group; otherwise only this job waits. Returns 1, or 0 for a stale token.
local now = now_ms(ARGV[1])
local id = ARGV[2]
local job = jkey(id)
local f = redis.call('HMGET', job, 'state', 'tok', 'g')
if f[1] ~= 'active' or f[2] ~= ARGV[3] then
  return 0
end
local g = f[3]
local delay = tonumber(ARGV[4])
release(id, g)
redis.call('HINCRBY', job, 'att', -1)
redis.call('HDEL', job, 'tok')
if ARGV[5] == '1' and delay > 0 then
  local until_ms = now + delay
  local current = redis.call('ZSCORE', K_BLOCKED, g)
  if not current or tonumber(current) < until_ms then
    redis.call('ZADD', K_BLOCKED, num(until_ms), g)
  end
  to_wait(id, g)
elseif delay > 0 then
  redis.call('HSET', job, 'state', 'delayed')
  redis.call('ZADD', K_DELAYED, num(now + delay), id)
else
  to_wait(id, g)
end
maybe_ready(g, tonumber(ARGV[6]))
event(ARGV[7], 'deferred', id, g)
return 1
