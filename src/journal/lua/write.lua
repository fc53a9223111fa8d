-- The journal's writes, in one call: a batch of received messages (skipping retransmissions),
-- then a batch of events for messages already there. Under load the group commit sends one call
-- per event-loop turn, so that many messages and the previous turn's ACK events share one AOF
-- fsync. (Key names are built here from the prefix: the journal assumes one Redis, not a cluster.)
--
-- ARGV[1] key prefix, ARGV[2] now (ms), ARGV[3] now (ISO), ARGV[4] dedup ttl (ms, 0 = none),
-- ARGV[5] number of messages, then for each message:
--   id, dedup key ("" = none), raw bytes, first event (JSON),
--   number of index keys, index keys..., number of hash fields (pairs * 2), field, value, ...
-- then the number of event records, and for each:
--   id, new status, ack code ("" = unchanged), extra field ("" = none), its value,
--   number of events, events (JSON)...
-- The dedup key names the sender's message (channel, sending application/facility, MSH-10) and
-- its content fingerprint: the same key again is a retransmission.
-- Returns, per message: id, state ("new", or "duplicate" with the first copy's id).
local p = ARGV[1]
local now = ARGV[2]
local at = ARGV[3]
local ttl = tonumber(ARGV[4])
local out = {}
local i = 6
for _ = 1, tonumber(ARGV[5]) do
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

local records = tonumber(ARGV[i])
i = i + 1
for _ = 1, records do
  local id, status, ack, fname, fvalue, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
  local m = p .. ":m:" .. id
  -- A message swept by retention (or never stored) does not come back as a stub.
  if redis.call("EXISTS", m) == 1 then
    redis.call("RPUSH", p .. ":ev:" .. id, unpack(ARGV, i + 6, i + 5 + n))
    redis.call("HSET", m, "status", status, "updatedAt", at)
    if ack ~= "" then redis.call("HSET", m, "ackCode", ack) end
    if fname ~= "" then redis.call("HSET", m, fname, fvalue) end
  end
  i = i + 6 + n
end
return out
