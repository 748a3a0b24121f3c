"""real-time's own metrics, beside the shared HTTP ones."""

from prometheus_client import Counter, Gauge

CLIENTS = Gauge("realtime_clients", "WebSocket clients connected to this replica")
CLOSED = Counter("realtime_closed_total", "Connections closed by the server, by close code", ["code"])
UPDATES = Counter("realtime_updates_total", "location.updated events received from NATS")
DELIVERED = Counter("realtime_deliveries_total", "Updates queued to clients (one per matching client)")
