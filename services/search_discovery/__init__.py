"""search-discovery: full-text vendor search over a read model fed by vendor events, cached in Redis."""
