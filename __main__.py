"""The Venta platform: load this stack's settings, build the platform, export what a user needs."""

import pulumi

import stacks
from infra import Platform, PlatformArgs

settings = stacks.load(pulumi.get_stack())
for warning in settings.warnings:
    pulumi.log.warn(warning)
platform = Platform("venta", PlatformArgs(settings=settings))
pulumi.export("namespace", platform.namespace)
pulumi.export("gatewayUrl", platform.gateway_url)
pulumi.export("images", platform.images)
