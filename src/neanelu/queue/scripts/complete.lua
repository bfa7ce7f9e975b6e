-- ARGV: offset, default_cap, events_maxlen, keep_completed_ms, then id, token pairs.
-- Returns one 1/0 per pair: 0 when the token no longer holds the lease (a late ack from a stalled
-- worker). Each ack stands alone: one stale token does not stop the others.
local now = now_ms(ARGV[1])
local default_cap = tonumber(ARGV[2])
local keep = tonumber(ARGV[4])
local out = {}
for i = 5, #ARGV, 2 do
  out[#out + 1] = complete_one(now, ARGV[i], ARGV[i + 1], default_cap, keep)
end
count_completed(out)
events_flush(ARGV[3])
return out
