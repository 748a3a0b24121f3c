"""webhooks: owners' HTTP endpoints receive vendor and location events, signed, retried, never lost."""
