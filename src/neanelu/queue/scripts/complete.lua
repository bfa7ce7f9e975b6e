-- ARGV: offset, id, token, default_cap, events_maxlen, keep_completed_ms
-- Returns 1, or 0 when the token no longer holds the lease (a late ack from a stalled worker).
local now = now_ms(ARGV[1])
local id = ARGV[2]
local job = jkey(id)
local f = redis.call('HMGET', job, 'state', 'tok', 'g')
if f[1] ~= 'active' or f[2] ~= ARGV[3] then
  return 0
end
local g = f[3]
release(id, g)
leave_group(g)
redis.call('DEL', job)
local keep = tonumber(ARGV[6])
if keep > 0 then
  redis.call('HSET', job, 'state', 'completed', 'g', g, 'ended', num(now))
  redis.call('PEXPIRE', job, keep)
end
redis.call('HINCRBY', K_STATS, 'completed', 1)
maybe_ready(g, tonumber(ARGV[4]))
event(ARGV[5], 'completed', id, g)
return 1
