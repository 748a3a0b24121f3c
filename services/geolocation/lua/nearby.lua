-- The exact nearest N fresh vendors, in one round trip.
-- A sorted GEOSEARCH over the full radius costs time proportional to every point inside it. This
-- grows the radius from a small start, sizing each step by how many members the last one held
-- (members grow with the area), and sorts only within the first radius that holds N fresh
-- vendors, which is exact: every vendor outside that radius is farther than every one inside it.
-- KEYS[1] geo index, KEYS[2] last-seen zset
-- ARGV: lon, lat, radius_m, count, min_seen (epoch s), start_radius_m
-- Returns a JSON array of [id, distance_m, lon, lat, last_seen], nearest first. The rows are
-- joined as text from Redis's own replies: cjson would format every number again (the dearest
-- part of the script when it did), and the numbers keep Redis's full precision this way.
local lon, lat = ARGV[1], ARGV[2]
local radius = tonumber(ARGV[3])
local count = tonumber(ARGV[4])
local min_seen = tonumber(ARGV[5])
local r = math.min(tonumber(ARGV[6]), radius)
local encode = cjson.encode -- for the ids only: they are strings from the vendors' owners

-- How many members lie within rad, up to count: an unsorted search that stops at the count-th,
-- so it stays cheap however many the radius holds.
local function members_within(rad)
  return #redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', lon, lat, 'BYRADIUS', rad, 'm',
    'COUNT', count, 'ANY')
end

-- The nearest fresh members within rad as JSON rows, at most count of them.
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
        out[#out + 1] = '[' .. encode(item[1]) .. ',' .. item[2] .. ',' .. item[3][1] .. ','
          .. item[3][2] .. ',' .. s .. ']'
        if #out >= count then return out end
      end
    end
  end
  return out
end

-- The next radius to try after finding `held` of the count wanted within r: the radius that
-- should hold count at the same density, with a margin, and between 1.25x and 4x the last one.
local function grown(held)
  local factor = held > 0 and math.sqrt(count / held) * 1.15 or 4
  return math.min(radius, r * math.min(4, math.max(1.25, factor)))
end

while true do
  local held = r >= radius and count or members_within(r)
  if held >= count then
    local out = fresh_within(r)
    if #out >= count or r >= radius then return '[' .. table.concat(out, ',') .. ']' end
    held = #out -- stale members filled the radius: size the next step by the fresh ones
  end
  r = grown(held)
end
