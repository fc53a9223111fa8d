-- Atomically records a received message, unless it is a retransmission.
-- KEYS[1] dedup key ("" when the message has no identity, e.g. a rejected one)
-- KEYS[2] message hash, KEYS[3] raw bytes, KEYS[4] event list, KEYS[5] time index (zset)
-- KEYS[6..] secondary index sets (control id, document id, patient ids)
-- ARGV[1] journal id, ARGV[2] received-at (ms), ARGV[3] dedup ttl (ms, 0 = none),
-- ARGV[4] raw bytes, ARGV[5] first event (JSON), ARGV[6] content fingerprint,
-- ARGV[7..] hash field/value pairs
-- Returns {id, "new"} or {existing id, "duplicate"} for a retransmission. The same key with another
-- fingerprint is a sender reusing a control id for a different message: recorded as new, "reused".
local id = ARGV[1]
local state = "new"
if KEYS[1] ~= "" then
  local existing = redis.call("GET", KEYS[1])
  if existing then
    local sep = string.find(existing, " ", 1, true)
    if string.sub(existing, sep + 1) == ARGV[6] then
      return { string.sub(existing, 1, sep - 1), "duplicate" }
    end
    state = "reused"
  end
  local value = id .. " " .. ARGV[6]
  if tonumber(ARGV[3]) > 0 then
    redis.call("SET", KEYS[1], value, "PX", ARGV[3])
  else
    redis.call("SET", KEYS[1], value)
  end
end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call("HSET", KEYS[2], unpack(fields))
redis.call("SET", KEYS[3], ARGV[4])
redis.call("RPUSH", KEYS[4], ARGV[5])
redis.call("ZADD", KEYS[5], ARGV[2], id)
for i = 6, #KEYS do redis.call("SADD", KEYS[i], id) end
return { id, state }
