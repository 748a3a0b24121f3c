"""Pure functions that return Kubernetes specs; no Pulumi runtime, no config, testable on their own."""
