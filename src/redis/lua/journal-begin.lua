-- A worker starts on a job: find its messages, leave out those a flow already finished (processed
-- or dead-lettered), hand back their raw bytes. Read-only on purpose: with appendfsync always every
-- write costs an fsync, so attempts are recorded with their outcome, in one write.
-- ARGV[1] key prefix, ARGV[2] "1" = take them even if finished (an operator's replay),
-- ARGV[3] batch id ("" = none), ARGV[4..] journal ids (when no batch id)
-- Returns a first element, "ok", or "missing" when the batch is not (or not yet) in the journal,
-- then id, raw, id, raw, ... in order.
local p = ARGV[1]
local force = ARGV[2] == "1"
local ids
if ARGV[3] ~= "" then
  ids = redis.call("LRANGE", p .. ":batch:" .. ARGV[3], 0, -1)
  if #ids == 0 then return { "missing" } end
else
  ids = { unpack(ARGV, 4) }
end
local out = { "ok" }
for _, id in ipairs(ids) do
  local m = p .. ":m:" .. id
  local state = redis.call("HMGET", m, "id", "processedAt", "deadAt")
  local raw = state[1] and (force or (not state[2] and not state[3])) and redis.call("GET", p .. ":raw:" .. id)
  if raw then
    out[#out + 1] = id
    out[#out + 1] = raw
  end
end
return out
