-- Records a batch of received messages atomically, skipping retransmissions.
-- One call per batch: under load the ingest commits many messages with a single fsync'd write.
-- (Key names are built here from the prefix: the journal assumes a single Redis, not a cluster.)
--
-- ARGV[1] key prefix, ARGV[2] received-at (ms), ARGV[3] dedup ttl (ms, 0 = none), ARGV[4] count,
-- then for each message:
--   id, dedup key ("" = none), content fingerprint, raw bytes, first event (JSON),
--   number of index keys, index keys..., number of hash fields (pairs * 2), field, value, ...
-- Returns, per message: id, state ("new", "duplicate": same key and content, the first one's id;
-- "reused": same key, other content, recorded as new).
local p = ARGV[1]
local now = ARGV[2]
local ttl = tonumber(ARGV[3])
local out = {}
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  local id, dedup, print, raw, event = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local nidx = tonumber(ARGV[i + 5])
  local idx = i + 6
  local nfields = tonumber(ARGV[idx + nidx])
  local f = idx + nidx + 1
  i = f + nfields

  local state = "new"
  if dedup ~= "" then
    local dkey = p .. ":dedup:" .. dedup
    local existing = redis.call("GET", dkey)
    if existing then
      local sep = string.find(existing, " ", 1, true)
      if sep and string.sub(existing, sep + 1) == print then
        state = "duplicate"
        id = string.sub(existing, 1, sep - 1)
      else
        state = "reused"
      end
    end
    if state ~= "duplicate" then
      if ttl > 0 then
        redis.call("SET", dkey, id .. " " .. print, "PX", ttl)
      else
        redis.call("SET", dkey, id .. " " .. print)
      end
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
