-- Apply one vendor event only if it is newer than what is stored. Events can arrive out of order
-- (a redelivery after a failed write, a rebuild racing the live consumer); comparing versions here,
-- atomically with the write, means the newest state wins whatever the order.
-- KEYS[1] the vendor's info hash, KEYS[2] geo index, KEYS[3] last-seen zset
-- ARGV: vendor_id, version, owner ('' for a deletion), active ('1' or '0'), deleted ('1' or '0')
-- Returns 1 when applied, 0 when the stored version is the same or newer.
local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[2]) <= stored then return 0 end
if ARGV[5] == '1' then
  -- A tombstone keeps the version, so an older event arriving later cannot bring the vendor back.
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'version', ARGV[2], 'deleted', '1')
else
  redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'active', ARGV[4], 'version', ARGV[2])
end
if ARGV[4] ~= '1' then
  -- Inactive or deleted: off the map at once.
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return 1
