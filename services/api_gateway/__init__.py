"""api-gateway: the single entry point; routes /api/... to the services (see routes_table.py)."""
