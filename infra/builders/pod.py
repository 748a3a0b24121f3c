"""Pod-level specs shared by every workload: the restricted pod, security, resources, probes, spread."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from stacks.model import Resources

core = k8s.core.v1
meta = k8s.meta.v1

# Every container runs as this uid: not root, and high enough not to match a user on the node.
UID = 10001
TMP_VOLUME = "tmp"


def resources(settings: Resources) -> core.ResourceRequirementsArgs:
    return core.ResourceRequirementsArgs(
        requests={
            "cpu": settings.cpu_request,
            "memory": settings.memory_request,
            "ephemeral-storage": settings.ephemeral_storage_request,
        },
        limits={
            "cpu": settings.cpu_limit,
            "memory": settings.memory_limit,
            "ephemeral-storage": settings.ephemeral_storage_limit,
        },
    )


def pod_security(uid: int, fs_group: int | None = None) -> core.PodSecurityContextArgs:
    return core.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid if fs_group is None else fs_group,
        fs_group=uid if fs_group is None else fs_group,
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security(uid: int, gid: int | None = None) -> core.SecurityContextArgs:
    """Restricted profile: no root, no privilege escalation, no capabilities, read-only root filesystem."""
    return core.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid if gid is None else gid,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=core.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


def restricted_pod(
    account: pulumi.Input[str],
    containers: list[core.ContainerArgs],
    volumes: list[core.VolumeArgs],
    *,
    uid: int = UID,
    init_containers: list[core.ContainerArgs] | None = None,
    grace_seconds: int | None = None,
    spread: dict[str, str] | None = None,
    anti_affinity_to: dict[str, str] | None = None,
    restart_policy: str | None = None,
) -> core.PodSpecArgs:
    """Every pod of the stack: the restricted Pod Security profile, its own account without an API token,
    no service links. `spread` spreads the pods it selects over nodes (topology spread and
    anti-affinity); `anti_affinity_to` only prefers nodes without the pods it selects."""
    affinity = spread or anti_affinity_to
    return core.PodSpecArgs(
        service_account_name=account,
        automount_service_account_token=False,
        enable_service_links=False,
        security_context=pod_security(uid),
        restart_policy=restart_policy,
        termination_grace_period_seconds=grace_seconds,
        init_containers=init_containers,
        containers=containers,
        volumes=volumes,
        topology_spread_constraints=topology_spread(spread) if spread else None,
        affinity=anti_affinity(affinity) if affinity else None,
    )


def scratch_volume(name: str = TMP_VOLUME, size: str = "64Mi") -> core.VolumeArgs:
    """A size-capped emptyDir: the writable place a read-only root filesystem still needs."""
    return core.VolumeArgs(name=name, empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=size))


def mount(name: str, path: str, read_only: bool = False, sub_path: str | None = None) -> core.VolumeMountArgs:
    return core.VolumeMountArgs(name=name, mount_path=path, read_only=read_only or None, sub_path=sub_path)


def _probe(initial_delay: int, period: int, failures: int, timeout: int, **action: object) -> core.ProbeArgs:
    return core.ProbeArgs(
        initial_delay_seconds=initial_delay,
        period_seconds=period,
        timeout_seconds=timeout,
        failure_threshold=failures,
        **action,  # type: ignore[arg-type]  # exactly one of http_get, exec_, tcp_socket
    )


def http_probe(
    path: str, port: str | int, initial_delay: int, period: int, failures: int = 3, timeout: int = 3
) -> core.ProbeArgs:
    return _probe(
        initial_delay, period, failures, timeout, http_get=core.HTTPGetActionArgs(path=path, port=port)
    )


def exec_probe(command: list[str], initial_delay: int, period: int, failures: int = 3) -> core.ProbeArgs:
    return _probe(initial_delay, period, failures, 5, exec_=core.ExecActionArgs(command=command))


def tcp_probe(port: str | int, initial_delay: int, period: int, failures: int = 3) -> core.ProbeArgs:
    return _probe(initial_delay, period, failures, 3, tcp_socket=core.TCPSocketActionArgs(port=port))


def topology_spread(selector: dict[str, str]) -> list[core.TopologySpreadConstraintArgs]:
    """At most one pod more on any node than on the emptiest; zones balanced where the cluster has them."""
    match = meta.LabelSelectorArgs(match_labels=selector)
    return [
        core.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="kubernetes.io/hostname",
            when_unsatisfiable="DoNotSchedule",
            label_selector=match,
        ),
        core.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="topology.kubernetes.io/zone",
            when_unsatisfiable="ScheduleAnyway",
            label_selector=match,
        ),
    ]


def anti_affinity(selector: dict[str, str]) -> core.AffinityArgs:
    """Prefer separate nodes: a node loss then takes at most one replica."""
    return core.AffinityArgs(
        pod_anti_affinity=core.PodAntiAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                core.WeightedPodAffinityTermArgs(
                    weight=100,
                    pod_affinity_term=core.PodAffinityTermArgs(
                        topology_key="kubernetes.io/hostname",
                        label_selector=meta.LabelSelectorArgs(match_labels=selector),
                    ),
                )
            ]
        )
    )


def secret_env(name: str, secret: pulumi.Input[str], key: str | None = None) -> core.EnvVarArgs:
    return core.EnvVarArgs(
        name=name,
        value_from=core.EnvVarSourceArgs(
            secret_key_ref=core.SecretKeySelectorArgs(name=secret, key=key or name)
        ),
    )


def field_env(name: str, field_path: str) -> core.EnvVarArgs:
    return core.EnvVarArgs(
        name=name,
        value_from=core.EnvVarSourceArgs(field_ref=core.ObjectFieldSelectorArgs(field_path=field_path)),
    )
