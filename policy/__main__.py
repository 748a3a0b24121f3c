"""Entry point of the policy pack: builds the PolicyPack (this starts its server and blocks).

Run it through the engine: `pulumi preview --policy-pack policy --policy-pack-config
policy/config/<stack>.json`. Everything it serves lives in importable modules next to it.
"""

import sys
from pathlib import Path

# The engine runs this file from inside policy/; the rules import as the `policy` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.pack import PACK_NAME, build_policies

PolicyPack(name=PACK_NAME, policies=build_policies(), enforcement_level=EnforcementLevel.MANDATORY)
