-- Appends events to many messages and moves their status, in one call.
-- ARGV[1] key prefix, ARGV[2] time (ISO), ARGV[3] count, then per message:
--   id, status, ack code ("" = unchanged), extra field name ("" = none), extra field value,
--   number of events, events (JSON)...
local p = ARGV[1]
local at = ARGV[2]
local i = 4
for _ = 1, tonumber(ARGV[3]) do
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
return 0
