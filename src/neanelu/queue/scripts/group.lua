-- ARGV: offset, op ('pause' | 'resume' | 'concurrency'), group, default_cap, value
-- Pause takes the group out of the round-robin (running jobs finish); resume and a new cap put it
-- back if it has runnable work. A value of 0 for 'concurrency' removes the override.
local g = ARGV[3]
local default_cap = tonumber(ARGV[4])
local op = ARGV[2]
if op == 'pause' then
  redis.call('SADD', K_PAUSED, g)
  redis.call('ZREM', K_READY, g)
elseif op == 'resume' then
  redis.call('SREM', K_PAUSED, g)
elseif op == 'concurrency' then
  if tonumber(ARGV[5]) > 0 then
    redis.call('HSET', K_GCONC, g, ARGV[5])
  else
    redis.call('HDEL', K_GCONC, g)
  end
  -- A lowered cap must also take effect for a group already in line.
  if redis.call('ZCARD', gkey(g, 'active')) >= group_cap(g, default_cap) then
    redis.call('ZREM', K_READY, g)
  end
end
maybe_ready(g, default_cap)
return 1
