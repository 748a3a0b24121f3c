-- Accept one position report atomically: owner and active checks, out-of-order guard,
-- geo index + last-seen write, and a bounded prune of vendors that went silent.
-- KEYS[1] geo index, KEYS[2] last-seen zset, KEYS[3] the vendor's info hash,
-- KEYS[4] the "vendors loaded" marker (absent while Redis lacks the vendor data)
-- ARGV: vendor_id, caller (JWT sub), lon, lat, ts (epoch s), prune_before (epoch s), prune_limit,
--       accuracy_m ('' when not reported)
-- Returns {status}: 0 accepted, 1 unknown vendor, 2 not the owner, 3 vendor inactive,
-- 4 a newer position is already stored, 5 unknown while the vendor data is being loaded.
local owner = redis.call('HGET', KEYS[3], 'owner')
if not owner then
  if redis.call('EXISTS', KEYS[4]) == 0 then return 5 end
  return 1
end
if owner ~= ARGV[2] then return 2 end
if redis.call('HGET', KEYS[3], 'active') ~= '1' then return 3 end
local ts = tonumber(ARGV[5])
local prev = redis.call('ZSCORE', KEYS[2], ARGV[1])
if prev and tonumber(prev) > ts then return 4 end
redis.call('GEOADD', KEYS[1], ARGV[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[2], ts, ARGV[1])
redis.call('HSET', KEYS[3], 'accuracy', ARGV[8])
-- Silent vendors are filtered at query time anyway; removing a few per write keeps the index small.
local old = redis.call('ZRANGE', KEYS[2], '-inf', '(' .. ARGV[6], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[7]))
if #old > 0 then
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
end
return 0
