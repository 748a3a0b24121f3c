-- Mark the vendor data complete, but only if the load that asks is still the current one: when
-- Redis lost its data again while the load ran (or another replica started a newer load), the
-- token is gone or different, nothing is marked, and the next check loads again.
-- KEYS[1] the load's token key, KEYS[2] the "vendors loaded" marker
-- ARGV: token, loaded at (epoch s)
-- Returns 1 when marked, 0 otherwise.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
