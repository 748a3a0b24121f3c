"""How a rendered pod becomes a container (tests/images/pods.py, addresses.py): what is reproduced,
what is refused by name, where the environment and the addresses come from. No Docker needed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.images.addresses import repoint, resolver
from tests.images.pods import HostVolume, Manifest, NotReproduced, container_run, quantity

NS = "venta-dev"


def _find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


def _option(options: list[str], flag: str) -> list[str]:
    return [options[i + 1] for i, option in enumerate(options) if option == flag]


def test_the_gateway_pod_becomes_its_security_context_limits_and_tmp(stack_manifests: list[Manifest]) -> None:
    deployment = _find(stack_manifests, "Deployment", "api-gateway")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    run = container_run(deployment, stack_manifests)
    ctx = container["securityContext"]
    assert _option(run.options, "--user") == [f"{ctx['runAsUser']}:{ctx['runAsGroup']}"]
    assert "--read-only" in run.options and _option(run.options, "--cap-drop") == ["ALL"]
    assert _option(run.options, "--security-opt") == ["no-new-privileges"]
    assert _option(run.options, "--group-add") == [str(spec["securityContext"]["fsGroup"])]
    limits = container["resources"]["limits"]
    assert _option(run.options, "--memory") == [str(int(quantity(limits["memory"], "")))]
    assert _option(run.options, "--cpus") == [f"{quantity(limits['cpu'], ''):g}"]
    tmp_size = int(
        quantity(next(v for v in spec["volumes"] if v["name"] == "tmp")["emptyDir"]["sizeLimit"], "")
    )
    assert _option(run.options, "--tmpfs") == [f"/tmp:rw,exec,mode=0777,size={tmp_size}"]
    assert run.stop_timeout_s == spec["terminationGracePeriodSeconds"]
    assert run.pre_stop_sleep_s == spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    ready = run.probes["readinessProbe"]
    # The named port resolved to the number the container declares: the internal one, not the API's.
    assert (ready.path, ready.port) == (container["readinessProbe"]["httpGet"]["path"], run.ports["internal"])
    assert run.ports["internal"] != run.ports["http"]


def test_a_persistent_volume_is_a_host_directory_with_the_pod_fs_group(
    stack_manifests: list[Manifest],
) -> None:
    deployment = copy.deepcopy(_find(stack_manifests, "Deployment", "file-management"))
    run = container_run(deployment, stack_manifests)
    assert run.host_volumes == [HostVolume("files", 10001)]
    assert "{volume:files}:/data/files" in _option(run.options, "--volume")
    del deployment["spec"]["template"]["spec"]["securityContext"]["fsGroup"]
    assert container_run(deployment, stack_manifests).host_volumes == [HostVolume("files", None)]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda pod: pod.update(initContainers=[{"name": "init", "image": "busybox"}]), "initContainers"),
        (lambda pod: pod.update(hostNetwork=True), "hostNetwork"),
        (
            lambda pod: pod["containers"][0].update(lifecycle={"preStop": {"exec": {"command": ["true"]}}}),
            "exec",
        ),
        (
            lambda pod: (
                pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
                pod["containers"][0]["volumeMounts"].append({"name": "host", "mountPath": "/host"}),
            ),
            "hostPath",
        ),
        (
            lambda pod: pod["containers"][0]["volumeMounts"].append({"name": "tmp2", "mountPath": "/x"}),
            "tmp2",
        ),
        (lambda pod: pod["containers"][0]["readinessProbe"].update(exec={"command": ["true"]}), "httpGet"),
        (lambda pod: pod["containers"][0]["securityContext"].update(procMount="Unmasked"), "procMount"),
        (
            lambda pod: pod["containers"][0]["resources"]["limits"].update({"nvidia.com/gpu": 1}),
            "nvidia.com/gpu",
        ),
        (lambda pod: pod.update(automountServiceAccountToken=True), "service account token"),
        (lambda pod: pod["containers"].append(dict(pod["containers"][0], name="sidecar")), "2 containers"),
    ],
)
def test_a_pod_field_the_tests_cannot_reproduce_is_refused_by_name(
    stack_manifests: list[Manifest], change: Any, named: str
) -> None:
    deployment = copy.deepcopy(_find(stack_manifests, "Deployment", "api-gateway"))
    change(deployment["spec"]["template"]["spec"])
    with pytest.raises(NotReproduced, match=named):
        container_run(deployment, stack_manifests)


def test_the_environment_comes_from_the_objects_the_pod_spec_names(stack_manifests: list[Manifest]) -> None:
    manifests = copy.deepcopy(stack_manifests)
    deployment = _find(manifests, "Deployment", "api-gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    # Auto-named objects, as the engine names them: only the pod spec knows the names.
    for source in container["envFrom"]:
        ref = source.get("configMapRef") or source["secretRef"]
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        _find(manifests, kind, ref["name"])["metadata"]["name"] = ref["name"] = f"{ref['name']}-7f3a9c1e"
    container["env"] = [{"name": "LOG_LEVEL", "value": "WARNING"}]
    env = container_run(deployment, manifests).env
    assert env["REDIS_URL"].startswith("redis://") and env["SERVICE_NAME"] == "api-gateway"
    assert env["LOG_LEVEL"] == "WARNING", "env wins over envFrom"

    container["envFrom"].append({"configMapRef": {"name": "nowhere", "optional": True}})
    assert container_run(deployment, manifests).env == env
    container["envFrom"][-1]["configMapRef"]["optional"] = False
    with pytest.raises(NotReproduced, match="'nowhere' is referenced but not rendered"):
        container_run(deployment, manifests)


def test_cluster_addresses_become_the_containers_and_the_local_stores(
    stack_manifests: list[Manifest],
) -> None:
    workloads = {
        name: _find(stack_manifests, "Deployment", name) for name in ("api-gateway", "user-management")
    }
    ports = {name: container_run(w, stack_manifests).ports for name, w in workloads.items()}
    stores = {"postgres": ("10.1.0.1", 15432), "redis": ("10.1.0.1", 16379), "nats": ("10.1.0.1", 14222)}
    resolve = resolver(NS, stack_manifests, workloads, ports, stores)
    assert (
        repoint("http://user-management", resolve)
        == f"http://user-management:{ports['user-management']['http']}"
    )
    assert repoint(f"http://user-management.{NS}.svc/users", resolve).endswith(":8000/users")
    assert repoint(f"redis://:p%40ss@redis.{NS}.svc:6379/0", resolve) == "redis://:p%40ss@10.1.0.1:16379/0"
    assert (
        repoint(f"postgresql://u:pw@postgres.{NS}.svc:5432/db", resolve)
        == "postgresql://u:pw@10.1.0.1:15432/db"
    )
    assert repoint(f"nats://nats.{NS}.svc:4222,nats://nats:4222", resolve) == (
        "nats://10.1.0.1:14222,nats://10.1.0.1:14222"
    )
    assert repoint("https://example.com/hook", resolve) == "https://example.com/hook"
    with pytest.raises(ValueError, match="selects none of the containers"):
        repoint("http://webhooks", resolve)  # a Service whose pod is not among the containers


@pytest.mark.parametrize(
    ("text", "value"), [("500m", 0.5), ("2", 2), ("256Mi", 256 * 2**20), ("1Gi", 2**30), ("64k", 64_000)]
)
def test_quantities(text: str, value: float) -> None:
    assert quantity(text, "x") == value


def test_a_quantity_not_understood_is_refused() -> None:
    with pytest.raises(NotReproduced, match="12x"):
        quantity("12x", "resources.limits.memory")
