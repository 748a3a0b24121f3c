"""vendor-management: vendors changed only by their owner; every change leaves as an event via an outbox."""
