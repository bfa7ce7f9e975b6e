-- ARGV: offset, lease_ms, then id, token pairs. Returns one 1/0 per pair: 0 means the lease is
-- gone (expired and reclaimed, or taken by another worker) and the worker must stop that job.
local now = now_ms(ARGV[1])
local deadline = num(now + tonumber(ARGV[2]))
local out = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local f = redis.call('HMGET', jkey(id), 'state', 'tok', 'g')
  if f[1] == 'active' and f[2] == ARGV[i + 1] then
    redis.call('ZADD', K_ACTIVE, deadline, id)
    redis.call('ZADD', gkey(f[3], 'active'), deadline, id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
