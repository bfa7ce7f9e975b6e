-- Dead-letter and failed sets. ARGV: offset, op ('retry' | 'purge'), which ('dead' | 'failed'),
-- default_cap, events_maxlen, then job ids. Returns how many jobs were moved or removed.
local now = now_ms(ARGV[1])
local op = ARGV[2]
local which = ARGV[3]
local k = K_DEAD
if which == 'failed' then
  k = K_FAILED
end
local default_cap = tonumber(ARGV[4])
local n = 0
for i = 6, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', k, id) == 1 then
    n = n + 1
    local job = jkey(id)
    if op == 'purge' then
      redis.call('DEL', job)
    else
      local g = redis.call('HGET', job, 'g')
      -- A second life: fresh attempts and stalls; the totals move it back out of dead/failed so
      -- enqueued = completed + failed + dead still holds once it finishes.
      redis.call('HSET', job, 'att', 0, 'st', 0)
      redis.call('HDEL', job, 'err', 'ended')
      redis.call('HINCRBY', K_STATS, which, -1)
      redis.call('HINCRBY', K_GSIZE, g, 1)
      to_wait(id, g)
      maybe_ready(g, default_cap)
      event(ARGV[5], 'revived', id, g)
    end
  end
end
return n
