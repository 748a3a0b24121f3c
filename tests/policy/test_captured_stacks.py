"""The whole pack over the real program's dev and prod stacks captured under mocks, then over the
same stacks broken on purpose: the right rule must fire, and only because of the break."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.render.capture import CapturedStack
from policy.evaluate import Finding, evaluate, mandatory, stack_config
from policy.model import Resource, object_key
from tests.policy.captured import fake_digest, pinned_images_config, policy_resources

Break = Callable[[list[Resource]], list[Resource]]


@pytest.fixture(scope="module")
def stacks(
    dev_stack: CapturedStack, prod_stack: CapturedStack, captured_stack: Callable[..., CapturedStack]
) -> dict[str, list[Resource]]:
    prod_release = captured_stack("prod", pinned_images_config(prod_stack))
    return {"dev": policy_resources(dev_stack), "prod": policy_resources(prod_release)}


def _shown(findings: list[Finding]) -> str:
    return "\n".join(f"[{f.policy}] {f.message}" for f in findings)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pack_passes_the_stack_with_no_mandatory_violation(
    stacks: dict[str, list[Resource]], stack: str
) -> None:
    resources = stacks[stack]
    kinds = {r.kind for r in resources}
    assert {"Deployment", "StatefulSet", "Service", "NetworkPolicy", "ConfigMap", "Secret"} <= kinds
    found = mandatory(evaluate(resources, stack_config(stack)))
    assert found == [], _shown(found)


def test_prod_carries_the_scaling_table(stacks: dict[str, list[Resource]]) -> None:
    # The rule itself is tested elsewhere; here: prod has the HPAs it judges, and dev is not held to it.
    hpas = {r.k8s_name for r in stacks["prod"] if r.kind == "HorizontalPodAutoscaler"}
    assert {"user-management", "vendor-management", "geolocation", "real-time"} <= hpas
    dev = [
        f
        for f in evaluate(stacks["dev"], {**stack_config("dev"), "scaling-table": "mandatory"})
        if f.policy == "scaling-table"
    ]
    assert dev, "dev runs one replica per service, so the prod table must not hold there"


def test_prod_without_release_digests_is_stopped(prod_stack: CapturedStack) -> None:
    found = mandatory(evaluate(policy_resources(prod_stack), stack_config("prod")))
    assert {f.policy for f in found} == {"image-pinned-by-digest"}, _shown(found)
    assert not mandatory(evaluate(policy_resources(prod_stack), stack_config("dev")))


def _edit(kind: str, name: str, edit: Callable[[dict[str, Any]], None]) -> Break:
    def apply(resources: list[Resource]) -> list[Resource]:
        out = []
        for r in resources:
            if r.kind == kind and name in (r.k8s_name, r.name):
                props = copy.deepcopy(dict(r.props))
                edit(props)
                r = Resource(r.type, r.name, props, r.urn)
            out.append(r)
        assert out != resources, f"no {kind} {name} in the stack"
        return out

    return apply


def _drop(kind: str, name: str | None = None) -> Break:
    def apply(resources: list[Resource]) -> list[Resource]:
        kept = [r for r in resources if not (r.kind == kind and name in (None, r.k8s_name))]
        assert len(kept) < len(resources), f"no {kind} {name} in the stack"
        return kept

    return apply


def _containers(props: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = props["spec"]["template"]["spec"]["containers"]
    return result


def _image_latest(props: dict[str, Any]) -> None:
    container = _containers(props)[0]
    container["image"] = container["image"].split("@")[0].rsplit(":", 1)[0] + ":latest"


def _privileged_sidecar(props: dict[str, Any]) -> None:
    sidecar = copy.deepcopy(_containers(props)[0])
    sidecar["name"] = "debug"
    sidecar["securityContext"]["privileged"] = True
    _containers(props).append(sidecar)


def _password_in_configmap(props: dict[str, Any]) -> None:
    props["data"]["DB_PASSWORD"] = "hunter2-in-plain-text"


def _literal_secret_env(props: dict[str, Any]) -> None:
    _containers(props)[0].setdefault("env", []).append({"name": "REDIS_PASSWORD", "value": "hunter2"})


def _probed_on_the_public_port(props: dict[str, Any]) -> None:
    _containers(props)[0]["readinessProbe"]["httpGet"]["port"] = "http"


def _set(*path_and_value: Any) -> Callable[[dict[str, Any]], None]:
    *path, value = path_and_value

    def edit(props: dict[str, Any]) -> None:
        node = props
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _case(
    stack: str,
    what: str,
    rule: str,
    kind: str,
    name: str | None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """One break: edit the named object (or drop it when there is no edit); `rule` must fire for it."""
    breaker = _drop(kind, name) if edit is None else _edit(kind, str(name), edit)
    return pytest.param(stack, breaker, rule, name, id=f"{stack}-{what}")


PDB, DEPLOY, HPA = "PodDisruptionBudget", "Deployment", "HorizontalPodAutoscaler"
SVC, CM, PRIV = "Service", "ConfigMap", "no-privileged-containers"
BREAKS = [
    _case("prod", "drop a PDB", "pdb-per-workload", PDB, "user-management"),
    _case("dev", "image tag latest", "image-tag-explicit", DEPLOY, "webhooks", _image_latest),
    _case("prod", "image tag latest", "image-tag-explicit", DEPLOY, "geolocation", _image_latest),
    _case("dev", "privileged sidecar", PRIV, DEPLOY, "api-gateway", _privileged_sidecar),
    _case("prod", "privileged sidecar", PRIV, DEPLOY, "real-time", _privileged_sidecar),
    _case(
        "dev",
        "password in a ConfigMap",
        "no-credentials-in-configmap",
        CM,
        "venta-user-management-config",  # auto-named: found by its logical name
        _password_in_configmap,
    ),
    _case(
        "prod",
        "password in a ConfigMap",
        "no-credentials-in-configmap",
        CM,
        "venta-webhooks-config",
        _password_in_configmap,
    ),
    _case(
        "prod",
        "password as an env literal",
        "no-secret-env-literals",
        DEPLOY,
        "search-discovery",
        _literal_secret_env,
    ),
    _case(
        "prod",
        "replicas beside an HPA",
        "hpa-owns-replicas",
        DEPLOY,
        "user-management",
        _set("spec", "replicas", 3.0),
    ),
    _case(
        "prod",
        "HPA off the scaling table",
        "scaling-table",
        HPA,
        "geolocation",
        _set("spec", "maxReplicas", 12.0),
    ),
    _case(
        "prod",
        "HPA targets a missing Deployment",
        "hpa-target-exists",
        HPA,
        "real-time",
        _set("spec", "scaleTargetRef", "name", "realtime"),
    ),
    _case(
        "dev",
        "an internal Service as LoadBalancer",
        "service-type-restricted",
        SVC,
        "user-management",
        _set("spec", "type", "LoadBalancer"),
    ),
    _case(
        "dev",
        "readiness on the public port",
        "probes-on-declared-port",
        DEPLOY,
        "vendor-management",
        _probed_on_the_public_port,
    ),
    _case(
        "prod",
        "readiness on the public port",
        "probes-on-declared-port",
        DEPLOY,
        "api-gateway",
        _probed_on_the_public_port,
    ),
    _case("dev", "no NetworkPolicy at all", "network-policy-coverage", "NetworkPolicy", None),
    _case(
        "prod",
        "hostNetwork",
        "no-host-namespaces",
        DEPLOY,
        "webhooks",
        _set("spec", "template", "spec", "hostNetwork", True),
    ),
    _case(
        "prod",
        "Service selector typo",
        "service-selector-matches",
        SVC,
        "vendor-management",
        _set("spec", "selector", {"app.kubernetes.io/name": "vendor-mgmt"}),
    ),
]


@pytest.mark.parametrize(("stack", "breaker", "rule", "name"), BREAKS)
def test_break_fires_the_right_rule(
    stacks: dict[str, list[Resource]], stack: str, breaker: Break, rule: str, name: str | None
) -> None:
    config = stack_config(stack)
    before = {(f.policy, f.message) for f in mandatory(evaluate(stacks[stack], config))}
    after = mandatory(evaluate(breaker(stacks[stack]), config))
    new = [f for f in after if (f.policy, f.message) not in before]
    assert rule in {f.policy for f in new}, _shown(new)
    if name is not None:
        # Whatever else fires is a consequence for the same object (a `latest` image is not pinned either).
        (shown,) = {r.k8s_name for r in stacks[stack] if name in (r.k8s_name, r.name)}
        assert all(f"'{shown}'" in f.message for f in new), _shown(new)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_exception_is_still_needed(stacks: dict[str, list[Resource]], stack: str) -> None:
    """An exception names an object of the stack that would break its rule without it: none is stale."""
    config = stack_config(stack)
    keys = {r.urn: object_key(r) for r in stacks[stack]}
    for rule, entry in config.items():
        excepted = set(entry.get("exceptions", {})) if isinstance(entry, dict) else set()
        if not excepted:
            continue
        without = {**config, rule: {**entry, "exceptions": {}}}
        violating = {keys.get(f.urn or "") for f in evaluate(stacks[stack], without) if f.policy == rule}
        assert excepted <= violating, f"{rule}: exceptions no longer needed: {sorted(excepted - violating)}"


def test_a_prod_backup_target_needs_its_upload_image_pinned_too(
    prod_stack: CapturedStack, captured_stack: Callable[..., CapturedStack]
) -> None:
    """The upload client is an upstream image like the data stores': the operator pins it by digest."""
    release = pinned_images_config(prod_stack)
    postgres = json.loads(release["venta:postgres"])
    postgres["backup"] = {"target": {"bucket": "venta-backups", "endpoint": "https://s3.example.com"}}
    keys = json.dumps({"backupAccessKeyId": "key-id", "backupSecretAccessKey": "secret-key"})

    def findings(upload_image: str | None) -> list[Finding]:
        if upload_image:
            postgres["backup"]["uploadImage"] = upload_image
        config = {**release, "venta:postgres": json.dumps(postgres), "venta:secrets": keys}
        return mandatory(evaluate(policy_resources(captured_stack("prod", config)), stack_config("prod")))

    (unpinned,) = findings(None)
    assert unpinned.policy == "image-pinned-by-digest" and "'upload'" in unpinned.message
    assert findings("rclone/rclone:1.60.1@" + fake_digest("rclone")) == []
