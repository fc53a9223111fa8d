-- Moves a DMP sending's state hash only from the given states, with its other fields in the same step:
-- the cancel / send race is decided in Redis, and no reader sees a state without its fields.
-- KEYS[1] the sending's hash. ARGV: new state, time, number of states to move from, those states,
-- then field / value pairs. Returns the previous state, or false when it was not one of those.
local s = redis.call('HGET', KEYS[1], 'state') or ''
local n = tonumber(ARGV[3])
for i = 4, 3 + n do if ARGV[i] == s then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'at', ARGV[2], unpack(ARGV, 4 + n))
  return s
end end
return false
