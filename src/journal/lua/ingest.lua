-- Records a batch of received messages atomically, skipping retransmissions.
-- One call per batch: under load the ingest commits many messages with a single fsync'd write.
-- (Key names are built here from the prefix: the journal assumes a single Redis, not a cluster.)
--
-- ARGV[1] key prefix, ARGV[2] received-at (ms), ARGV[3] dedup ttl (ms, 0 = none), ARGV[4] count,
-- then for each message:
--   id, dedup key ("" = none), raw bytes, first event (JSON),
--   number of index keys, index keys..., number of hash fields (pairs * 2), field, value, ...
-- The dedup key names the sender's message (channel, sending application/facility, MSH-10) and
-- its content fingerprint: the same key again is a retransmission.
-- Returns, per message: id, state ("new", or "duplicate" with the first copy's id).
local p = ARGV[1]
local now = ARGV[2]
local ttl = tonumber(ARGV[3])
local out = {}
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  local id, dedup, raw, event = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local nidx = tonumber(ARGV[i + 4])
  local idx = i + 5
  local nfields = tonumber(ARGV[idx + nidx])
  local f = idx + nidx + 1
  i = f + nfields

  local state = "new"
  if dedup ~= "" then
    local dkey = p .. ":dedup:" .. dedup
    local existing = redis.call("GET", dkey)
    if existing then
      state = "duplicate"
      id = existing
    elseif ttl > 0 then
      redis.call("SET", dkey, id, "PX", ttl)
    else
      redis.call("SET", dkey, id)
    end
  end
  if state ~= "duplicate" then
    redis.call("HSET", p .. ":m:" .. id, unpack(ARGV, f, f + nfields - 1))
    redis.call("SET", p .. ":raw:" .. id, raw)
    redis.call("RPUSH", p .. ":ev:" .. id, event)
    redis.call("ZADD", p .. ":x:time", now, id)
    for k = idx, idx + nidx - 1 do redis.call("SADD", ARGV[k], id) end
  end
  out[#out + 1] = id
  out[#out + 1] = state
end
return out
