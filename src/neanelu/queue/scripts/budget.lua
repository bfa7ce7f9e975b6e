-- One shop's Shopify cost budget as a GCRA with variable cost. KEYS[1] is the shop's hash.
-- The bucket is kept as a theoretical arrival time `tat` (ms): used points = (tat - now) * rate,
-- so it drains by itself at the restore rate and no timer or counter can leak.
-- Fields: tat, cap (maximumAvailable), rate (restoreRate, points/s), blocked (ms), probe (ms).
-- Capacity and rate come only from Shopify's own throttleStatus; until the first response, one
-- probe call at a time is let through to learn them.
--
-- ARGV: offset, op, then
--   acquire: cost, share            -> {1, 0} granted, or {0, wait_ms}
--   refund:  points                 -> {1, 0}
--   observe: maximum, available, restore_rate -> {1, 0}
--   block:   ms                     -> {1, blocked_until_ms}
--   state:                          -> {used_points, cap, rate, blocked_ms}
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 + tonumber(ARGV[1])
local op = ARGV[2]
local f = redis.call('HMGET', key, 'tat', 'cap', 'rate', 'blocked', 'probe')
local tat = math.max(tonumber(f[1] or '0'), now)
local cap = tonumber(f[2] or '0')
local rate = tonumber(f[3] or '0') / 1000
local blocked = tonumber(f[4] or '0')
local function str(x)
  return string.format('%.3f', x)
end
local function save(fields)
  redis.call('HSET', key, unpack(fields))
  -- A shop nobody calls forgets its state after a day; the next response teaches it again.
  redis.call('PEXPIRE', key, 86400000)
end

if op == 'acquire' then
  local cost = tonumber(ARGV[3])
  local share = tonumber(ARGV[4])
  if blocked > now then
    return {0, math.ceil(blocked - now)}
  end
  if cap <= 0 or rate <= 0 then
    local probe = tonumber(f[5] or '0')
    if probe > now then
      return {0, math.ceil(math.min(probe - now, 50))}
    end
    save({'probe', str(now + 10000)})
    return {1, 0}
  end
  local used = (tat - now) * rate
  -- A query that costs more than the share may still run, but only into a full bucket.
  local limit = math.max(share * cap, math.min(cost, cap))
  if used + cost > limit then
    return {0, math.ceil((used + cost - limit) / rate)}
  end
  save({'tat', str(tat + cost / rate)})
  return {1, 0}
elseif op == 'refund' then
  if rate > 0 then
    save({'tat', str(math.max(now, tat - tonumber(ARGV[3]) / rate))})
  end
  return {1, 0}
elseif op == 'observe' then
  local maximum = tonumber(ARGV[3])
  local available = tonumber(ARGV[4])
  local restore = tonumber(ARGV[5])
  if maximum <= 0 or restore <= 0 then
    return {0, 0}
  end
  local r = restore / 1000
  local used = (tat - now) * r
  local server_used = math.max(0, maximum - available)
  -- Only ever tighten: our estimate already counts calls in flight that Shopify has not seen yet,
  -- so a fuller bucket in a response is no reason to spend more.
  if server_used > used then
    tat = now + server_used / r
  end
  save({'tat', str(tat), 'cap', str(maximum), 'rate', str(restore), 'probe', '0'})
  return {1, 0}
elseif op == 'block' then
  local until_ms = math.max(blocked, now + tonumber(ARGV[3]))
  -- A refused probe taught nothing: the next call after the block may probe again.
  save({'blocked', str(until_ms), 'probe', '0'})
  return {1, math.floor(until_ms)}
end
local used = 0
if rate > 0 then
  used = (tat - now) * rate
end
return {str(used), str(cap), str(rate * 1000), str(math.max(0, blocked - now))}
