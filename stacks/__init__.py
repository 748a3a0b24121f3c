"""Stack settings: environment profiles plus `Pulumi.<stack>.yaml`, validated once into `StackSettings`."""

from stacks.catalog import SERVICE_NAMES, SERVICES, ServiceSpec
from stacks.loader import Problem, SettingsError, load
from stacks.model import StackSettings

__all__ = ["SERVICES", "SERVICE_NAMES", "Problem", "ServiceSpec", "SettingsError", "StackSettings", "load"]
