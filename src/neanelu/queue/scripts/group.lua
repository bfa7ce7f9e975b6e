-- ARGV: offset, op ('pause' | 'resume' | 'concurrency'), group, default_cap, value
-- maybe_ready then takes the group out of the line or puts it back: pause stops new starts (running
-- jobs finish), resume and a new cap let it start again if it has waiting work. A value of 0 for 'concurrency' removes the override.
local g = ARGV[3]
local default_cap = tonumber(ARGV[4])
local op = ARGV[2]
if op == 'pause' then
  redis.call('SADD', K_PAUSED, g)
elseif op == 'resume' then
  redis.call('SREM', K_PAUSED, g)
elseif op == 'concurrency' then
  if tonumber(ARGV[5]) > 0 then
    redis.call('HSET', K_GCONC, g, ARGV[5])
  else
    redis.call('HDEL', K_GCONC, g)
  end
end
maybe_ready(g, default_cap)
return 1
