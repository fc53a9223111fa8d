-- The journal's writes, in one call: a batch of received messages (skipping retransmissions),
-- then a batch of events for messages already there. Under load the group commit sends one call
-- per event-loop turn, so that many messages and the previous turn's ACK events share one AOF
-- fsync. Few arguments per message (the client's cost grows with their number): the metadata
-- travels as one JSON document. (Key names are built here from the prefix: the journal assumes
-- one Redis, not a cluster.)
--
-- ARGV[1] key prefix, ARGV[2] now (ms), ARGV[3] now (ISO), ARGV[4] dedup ttl (ms, 0 = none),
-- ARGV[5] batch id: the queue job that will process the new messages of this call ("" = none);
--         their ids are listed, in order, under <prefix>:batch:<batch id>,
-- ARGV[6] number of messages, then for each message three arguments:
--   dedup key ("" = none), raw bytes,
--   JSON {"id": .., "h": [hash field, value, ...], "x": [index keys (sorted sets by time)], "e": first event (JSON text)}
-- then the number of event records, and for each one argument:
--   JSON {"id": .., "s": new status (absent: unchanged), "t": its time (ISO), "a": ack code?, "f": [extra field, value]?,
--         "e": [events (JSON text)]}
-- The dedup key names the sender's message (channel, sending application/facility, MSH-10) and
-- its content fingerprint: the same key again is a retransmission.
-- Returns, per message: id, state ("new", or "duplicate" with the first copy's id), and the
-- batch id of the first copy.
local p = ARGV[1]
local now = ARGV[2]
local at = ARGV[3]
local ttl = tonumber(ARGV[4])
local batch = ARGV[5]
local out = {}
local i = 7
for _ = 1, tonumber(ARGV[6]) do
  local dedup, raw, meta = ARGV[i], ARGV[i + 1], cjson.decode(ARGV[i + 2])
  i = i + 3
  local id = meta.id
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
  local job = batch
  if state == "duplicate" then
    job = redis.call("HGET", p .. ":m:" .. id, "batch") or ""
  else
    redis.call("HSET", p .. ":m:" .. id, "batch", batch, unpack(meta.h))
    if batch ~= "" then redis.call("RPUSH", p .. ":batch:" .. batch, id) end
    redis.call("SET", p .. ":raw:" .. id, raw)
    redis.call("RPUSH", p .. ":ev:" .. id, meta.e)
    redis.call("ZADD", p .. ":x:time", now, id)
    for _, key in ipairs(meta.x) do redis.call("ZADD", key, now, id) end
  end
  out[#out + 1] = id
  out[#out + 1] = state
  out[#out + 1] = job
end
-- A batch of retransmissions only: its job must find an empty list, not a missing one (which means a
-- write that failed): an empty id stands in, which the worker's begin script skips.
if batch ~= "" and redis.call("EXISTS", p .. ":batch:" .. batch) == 0 then
  redis.call("RPUSH", p .. ":batch:" .. batch, "")
end
if batch ~= "" and ttl > 0 then redis.call("PEXPIRE", p .. ":batch:" .. batch, ttl) end

for _ = 1, tonumber(ARGV[i]) do
  i = i + 1
  local r = cjson.decode(ARGV[i])
  local m = p .. ":m:" .. r.id
  -- A message swept by retention (or never stored) does not come back as a stub.
  if redis.call("EXISTS", m) == 1 then
    redis.call("RPUSH", p .. ":ev:" .. r.id, unpack(r.e))
    -- Events may arrive late (ACK events ride with the next group commit, after a fast worker's
    -- outcome): the status only moves to a newer event's.
    local current = redis.call("HGET", m, "updatedAt")
    -- No "s": an informational event (a retransmission) that leaves the status as it is.
    if r.s and (not current or r.t >= current) then redis.call("HSET", m, "status", r.s, "updatedAt", r.t) end
    if r.a then redis.call("HSET", m, "ackCode", r.a) end
    if r.f then redis.call("HSET", m, r.f[1], r.f[2]) end
  end
end
return out
