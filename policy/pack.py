"""Thin adapters from the pure rules to pulumi_policy's Policy objects (building them starts nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.model import Resource, as_map, object_key
from policy.registry import RULES, Rule

PACK_NAME = "venta-kubernetes"


def rule_config(rule: Rule, given: Mapping[str, Any]) -> dict[str, Any]:
    """The rule's defaults overlaid with what the stack's policy config gives."""
    return {**rule.defaults(), **{k: v for k, v in given.items() if k != "enforcementLevel"}}


def excepted(resource: Resource | None, config: Mapping[str, Any]) -> bool:
    """True when the stack's policy config grants this object an exception to the rule."""
    return resource is not None and object_key(resource) in as_map(config.get("exceptions"))


def _resource_validation(rule: Rule) -> Any:
    check = rule.resource_check
    assert check is not None

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = Resource(args.resource_type, args.name, args.props, args.urn)
        config = rule_config(rule, args.get_config())
        if excepted(resource, config):
            return
        for message in check(resource, config):
            report_violation(message, None)

    return validate


def _stack_validation(rule: Rule) -> Any:
    check = rule.stack_check
    assert check is not None

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            Resource(
                r.resource_type, r.name, r.props, r.urn, tuple(getattr(r.opts, "ignore_changes", None) or ())
            )
            for r in args.resources
        ]
        by_urn = {r.urn: r for r in resources}
        config = rule_config(rule, args.get_config())
        for violation in check(resources, config):
            if not excepted(by_urn.get(violation.urn or ""), config):
                report_violation(violation.message, violation.urn)

    return validate


def to_policy(rule: Rule) -> Policy:
    level = EnforcementLevel(rule.level)
    schema = PolicyConfigSchema(properties={k: dict(v) for k, v in rule.schema().items()})
    if rule.stack_check is not None:
        return StackValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=_stack_validation(rule),
            enforcement_level=level,
            config_schema=schema,
        )
    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=_resource_validation(rule),
        enforcement_level=level,
        config_schema=schema,
    )


def build_policies() -> list[Policy]:
    return [to_policy(rule) for rule in RULES]
