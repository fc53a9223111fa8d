-- A worker starts on a job: find the message, skip it if a flow already completed for it, hand
-- back the raw bytes. Read-only on purpose: with appendfsync always every write costs an fsync,
-- so the attempt is recorded with its outcome, in one write.
-- ARGV[1] key prefix, ARGV[2] journal id ("" = resolve ARGV[3]), ARGV[3] dedup key,
-- ARGV[4] "1" = process even if already processed (replay)
-- Returns {id, raw} to process, {id, false} when already processed, {false, false} when unknown.
local p = ARGV[1]
local id = ARGV[2]
if id == "" then
  id = redis.call("GET", p .. ":dedup:" .. ARGV[3])
  if not id then return { false, false } end
end
local m = p .. ":m:" .. id
if redis.call("EXISTS", m) == 0 then return { false, false } end
if redis.call("HEXISTS", m, "processedAt") == 1 and ARGV[4] ~= "1" then return { id, false } end
return { id, redis.call("GET", p .. ":raw:" .. id) }
