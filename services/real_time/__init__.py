"""real-time: WebSocket fan-out of location updates to the clients whose subscriptions match."""
