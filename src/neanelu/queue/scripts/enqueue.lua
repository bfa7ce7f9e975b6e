-- ARGV: offset, id, group, task, payload, headers, priority, max_attempts, delay_ms,
--       max_group_size, default_cap, events_maxlen
-- Returns 1 enqueued, 0 duplicate id (a no-op: enqueue is idempotent), -1 group full.
local now = now_ms(ARGV[1])
local id, g = ARGV[2], ARGV[3]
local job = jkey(id)
if redis.call('EXISTS', job) == 1 then
  return 0
end
local max_size = tonumber(ARGV[10])
if max_size > 0 and tonumber(redis.call('HGET', K_GSIZE, g) or '0') >= max_size then
  return -1
end
local priority = tonumber(ARGV[7])
-- Priority first (higher runs sooner), then arrival order; exact in a double up to 2^53.
local score = (1000 - priority) * 1099511627776 + redis.call('INCR', base .. ':seq')
local delay = tonumber(ARGV[9])
local state = 'waiting'
if delay > 0 then
  state = 'delayed'
end
-- Only what is read later: the id is in the key, the priority in the score, and attempts and
-- stalls start as absent fields (0 to HINCRBY and to every reader). Each field of a new hash
-- costs Redis ~1 us on every enqueue.
redis.call('HSET', job, 'g', g, 'task', ARGV[4], 'p', ARGV[5], 'h', ARGV[6], 'max', ARGV[8],
  'score', num(score), 'ct', num(now), 'state', state)
redis.call('HINCRBY', K_GSIZE, g, 1)
redis.call('HINCRBY', K_STATS, 'enqueued', 1)
if delay > 0 then
  redis.call('ZADD', K_DELAYED, num(now + delay), id)
  event(ARGV[12], 'delayed', id, g)
else
  redis.call('ZADD', gkey(g, 'wait'), num(score), id)
  ready_after_enqueue(g, tonumber(ARGV[11]))
  event(ARGV[12], 'waiting', id, g)
end
return 1
