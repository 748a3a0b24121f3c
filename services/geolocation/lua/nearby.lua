-- Exact nearest-N search with an expanding radius, in one round trip.
-- A sorted GEOSEARCH over the full radius costs time proportional to every point inside it;
-- starting small and doubling stops at the first radius that already holds N fresh vendors,
-- which is exact: every vendor outside that radius is farther than every vendor inside it.
-- KEYS[1] geo index, KEYS[2] last-seen zset
-- ARGV: lon, lat, radius_m, count, min_seen (epoch s), start_radius_m
-- Returns a JSON array of [id, distance_m, lon, lat, last_seen] (numbers as strings), nearest first.
local lon, lat = ARGV[1], ARGV[2]
local radius = tonumber(ARGV[3])
local count = tonumber(ARGV[4])
local min_seen = tonumber(ARGV[5])
local r = math.min(tonumber(ARGV[6]), radius)

local function fresh_within(rad)
  local found = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', lon, lat,
    'BYRADIUS', rad, 'm', 'ASC', 'WITHDIST', 'WITHCOORD')
  local out = {}
  local batch = 500
  for start = 1, #found, batch do
    local ids = {}
    local stop = math.min(start + batch - 1, #found)
    for i = start, stop do ids[#ids + 1] = found[i][1] end
    local seen = redis.call('ZMSCORE', KEYS[2], unpack(ids))
    for i = start, stop do
      local s = seen[i - start + 1]
      if s and tonumber(s) >= min_seen then
        local item = found[i]
        out[#out + 1] = {item[1], item[2], item[3][1], item[3][2], s}
        if #out >= count then return out end
      end
    end
  end
  return out
end

-- One JSON string rather than nested arrays: the client decodes it in one call instead of parsing
-- a hundred RESP elements one by one.
-- Radii that cannot hold enough vendors (stale ones included) are ruled out by an unsorted
-- GEOSEARCH that stops at the count-th member found, so only the final radius is sorted and checked.
local function may_hold_enough(rad)
  local some = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', lon, lat, 'BYRADIUS', rad, 'm',
    'COUNT', count, 'ANY')
  return #some >= count
end

while true do
  if r >= radius or may_hold_enough(r) then
    local out = fresh_within(r)
    if #out >= count or r >= radius then return cjson.encode(out) end
  end
  r = math.min(r * 2, radius)
end
