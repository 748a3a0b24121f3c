"""geolocation: vendor positions in Redis, nearest-vendor search, `location.updated` events."""
