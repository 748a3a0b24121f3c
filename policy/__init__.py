"""Venta's policy pack: pure rules over Kubernetes resources as the Pulumi provider sees them.

Importing this package has no side effects; only `policy/__main__.py` starts the pack.
"""
