"""The `venta` command: set up, deploy and roll back the platform's Pulumi stacks."""
