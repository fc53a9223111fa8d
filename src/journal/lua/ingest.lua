-- Atomically records a received message, unless it is a retransmission.
-- KEYS[1] dedup key ("" when the message has no identity, e.g. a rejected one)
-- KEYS[2] message hash, KEYS[3] raw bytes, KEYS[4] event list, KEYS[5] time index (zset)
-- KEYS[6..] secondary index sets (control id, document id, patient ids)
-- ARGV[1] journal id, ARGV[2] received-at (ms), ARGV[3] dedup ttl (ms, 0 = none),
-- ARGV[4] raw bytes, ARGV[5] first event (JSON), ARGV[6..] hash field/value pairs
-- Returns {id, "new"} or {existing id, "duplicate"} for a retransmission.
local id = ARGV[1]
if KEYS[1] ~= "" then
  local existing = redis.call("GET", KEYS[1])
  if existing then
    return { existing, "duplicate" }
  end
  if tonumber(ARGV[3]) > 0 then
    redis.call("SET", KEYS[1], id, "PX", ARGV[3])
  else
    redis.call("SET", KEYS[1], id)
  end
end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call("HSET", KEYS[2], unpack(fields))
redis.call("SET", KEYS[3], ARGV[4])
redis.call("RPUSH", KEYS[4], ARGV[5])
redis.call("ZADD", KEYS[5], ARGV[2], id)
for i = 6, #KEYS do redis.call("SADD", KEYS[i], id) end
return { id, "new" }
