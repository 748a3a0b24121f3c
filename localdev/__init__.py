"""Local development helpers: throwaway PostgreSQL, Redis and NATS servers and a runner for the services."""
