"""Pulumi components: thin wiring of the pure builders into Kubernetes resources."""
