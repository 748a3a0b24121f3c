"""VentaService: one FastAPI service with everything it needs to run, scale and be reached."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra.builders import images, pod, scanner, shutdown
from infra.builders.checksum import checksum
from infra.builders.labels import labels, selector
from infra.builders.service_env import PORT, STORAGE_DIR
from stacks.catalog import ServiceSpec
from stacks.model import Images, ServiceSettings

apps, core, meta = k8s.apps.v1, k8s.core.v1, k8s.meta.v1
FILES_VOLUME = "files"


@dataclass(frozen=True)
class FileStorage:
    size: str
    access_mode: str
    class_name: str | None


@dataclass
class VentaServiceArgs:
    spec: ServiceSpec
    settings: ServiceSettings
    namespace: pulumi.Input[str]
    instance: str
    images: Images
    config: pulumi.Input[Mapping[str, str]]
    secrets: pulumi.Input[Mapping[str, str]]
    network: k8s.networking.v1.NetworkPolicySpecArgs
    spread_across_nodes: bool = False
    file_storage: FileStorage | None = None


class VentaService(pulumi.ComponentResource):
    image_ref: pulumi.Output[str]

    def __init__(self, name: str, args: VentaServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("venta:service:VentaService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        spec, settings = args.spec, args.settings
        self.labels = labels(spec.name, spec.area, args.instance, images.version(args.images))
        self.selector = selector(spec.name, args.instance)
        self.image_ref = self._image(spec.name, args.images, child)

        def metadata(suffix: str = "") -> meta.ObjectMetaArgs:
            return meta.ObjectMetaArgs(name=spec.name + suffix, namespace=args.namespace, labels=self.labels)

        self.config_map = core.ConfigMap(
            f"{name}-config", metadata=metadata("-config"), data=args.config, opts=child
        )
        self.secret = core.Secret(
            f"{name}-secret",
            metadata=metadata("-secret"),
            type="Opaque",
            string_data=args.secrets,
            opts=child,
        )
        self.account = core.ServiceAccount(
            f"{name}-account", metadata=metadata(), automount_service_account_token=False, opts=child
        )
        claim = None
        if args.file_storage:
            claim = core.PersistentVolumeClaim(
                f"{name}-files", metadata=metadata("-files"), spec=_claim_spec(args.file_storage), opts=child
            )
        config_hash = pulumi.Output.unsecret(
            pulumi.Output.all(args.config, args.secrets).apply(lambda both: checksum(both[0], both[1]))
        )
        # A built image is pinned to its pushed digest; a referenced one only when the stack names a digest.
        pinned = "@sha256:" if args.images.build else images.reference(args.images, spec.name)
        skips = scanner.checkov_skips([pinned], args.images.pull_policy, secret_env=True)
        self.deployment = apps.Deployment(
            name,
            metadata=meta.ObjectMetaArgs(
                name=spec.name, namespace=args.namespace, labels=self.labels, annotations=skips
            ),
            spec=self._deployment_spec(args, config_hash, claim),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.config_map, self.secret]),
        )
        self.service = core.Service(
            f"{name}-svc",
            metadata=metadata(),
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector=self.selector,
                ports=[core.ServicePortArgs(name="http", port=80, target_port="http", protocol="TCP")],
            ),
            opts=child,
        )
        if settings.autoscaling:
            self._autoscaler(name, settings, metadata(), child)
        if settings.max_pods > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=metadata(),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=self.selector)
                ),
                opts=child,
            )
        k8s.networking.v1.NetworkPolicy(f"{name}-netpol", metadata=metadata(), spec=args.network, opts=child)
        self.register_outputs(
            {"image": self.image_ref, "deployment": self.deployment.metadata.name, "service": spec.name}
        )

    def _image(self, service: str, source: Images, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        if not source.build:
            return pulumi.Output.from_input(images.reference(source, service))
        built = docker.Image(
            f"{service}-image",
            image_name=images.image_name(source, service),
            build=docker.DockerBuildArgs(
                context=images.BUILD_CONTEXT,
                dockerfile=images.DOCKERFILE,
                args={"SERVICE": service},
                platform=source.platform,
            ),
            opts=child,
        )
        # The pushed digest pins the Deployment to exactly what was built.
        return built.repo_digest

    def _deployment_spec(
        self,
        args: VentaServiceArgs,
        config_hash: pulumi.Output[str],
        claim: core.PersistentVolumeClaim | None,
    ) -> apps.DeploymentSpecArgs:
        spec, settings = args.spec, args.settings
        volumes = [pod.scratch_volume()]
        mounts = [pod.mount(pod.TMP_VOLUME, "/tmp")]
        if claim is not None:
            volumes.append(
                core.VolumeArgs(
                    name=FILES_VOLUME,
                    persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                        claim_name=claim.metadata.name
                    ),
                )
            )
            mounts.append(pod.mount(FILES_VOLUME, STORAGE_DIR))
        container = core.ContainerArgs(
            name=spec.name,
            image=self.image_ref,
            image_pull_policy=args.images.pull_policy,
            ports=[core.ContainerPortArgs(name="http", container_port=PORT, protocol="TCP")],
            env_from=[
                core.EnvFromSourceArgs(
                    config_map_ref=core.ConfigMapEnvSourceArgs(name=f"{spec.name}-config")
                ),
                core.EnvFromSourceArgs(secret_ref=core.SecretEnvSourceArgs(name=f"{spec.name}-secret")),
            ],
            resources=pod.resources(settings.resources),
            # Up to 150 s to start (migrations), then the guide's liveness and readiness timings.
            startup_probe=pod.http_probe("/health/live", "http", 0, 5, failures=30),
            liveness_probe=pod.http_probe("/health/live", "http", 30, 10),
            readiness_probe=pod.http_probe("/health/ready", "http", 5, 5),
            security_context=pod.container_security(pod.UID),
            volume_mounts=mounts,
        )
        annotations: dict[str, pulumi.Input[str]] = {
            "checksum/config": config_hash,
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(PORT),
            "prometheus.io/path": "/metrics",
        }
        return apps.DeploymentSpecArgs(
            replicas=None if settings.autoscaling else settings.replicas,
            selector=meta.LabelSelectorArgs(match_labels=self.selector),
            strategy=_strategy(args.file_storage),
            min_ready_seconds=10,
            revision_history_limit=10,
            template=core.PodTemplateSpecArgs(
                metadata=meta.ObjectMetaArgs(labels=self.labels, annotations=annotations),
                spec=core.PodSpecArgs(
                    service_account_name=spec.name,
                    automount_service_account_token=False,
                    enable_service_links=False,
                    security_context=pod.pod_security(pod.UID),
                    **shutdown.drained_pod(container),
                    volumes=volumes,
                    topology_spread_constraints=pod.spread(self.selector)
                    if args.spread_across_nodes
                    else None,
                    affinity=pod.anti_affinity(self.selector) if args.spread_across_nodes else None,
                ),
            ),
        )

    def _autoscaler(
        self,
        name: str,
        settings: ServiceSettings,
        metadata: meta.ObjectMetaArgs,
        child: pulumi.ResourceOptions,
    ) -> None:
        scaling = settings.autoscaling
        assert scaling is not None
        hpa = k8s.autoscaling.v2

        def target(resource: str, percent: int) -> k8s.autoscaling.v2.MetricSpecArgs:
            return hpa.MetricSpecArgs(
                type="Resource",
                resource=hpa.ResourceMetricSourceArgs(
                    name=resource,
                    target=hpa.MetricTargetArgs(type="Utilization", average_utilization=percent),
                ),
            )

        hpa.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=metadata,
            spec=hpa.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=hpa.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=self.deployment.metadata.name
                ),
                min_replicas=scaling.min_replicas,
                max_replicas=scaling.max_replicas,
                metrics=[target("cpu", scaling.cpu_target), target("memory", scaling.memory_target)],
                behavior=hpa.HorizontalPodAutoscalerBehaviorArgs(
                    scale_down=hpa.HPAScalingRulesArgs(
                        stabilization_window_seconds=scaling.scale_down_window_seconds,
                        select_policy="Min",
                        policies=[hpa.HPAScalingPolicyArgs(type="Pods", value=1, period_seconds=60)],
                    ),
                ),
            ),
            opts=child,
        )


def _strategy(storage: FileStorage | None) -> apps.DeploymentStrategyArgs:
    """The guide's one-at-a-time rollout; a single-node volume forces Recreate (two pods cannot mount it)."""
    if storage is not None and storage.access_mode == "ReadWriteOnce":
        return apps.DeploymentStrategyArgs(type="Recreate")
    return apps.DeploymentStrategyArgs(
        type="RollingUpdate",
        rolling_update=apps.RollingUpdateDeploymentArgs(max_surge=1, max_unavailable=0),
    )


def _claim_spec(storage: FileStorage) -> core.PersistentVolumeClaimSpecArgs:
    return core.PersistentVolumeClaimSpecArgs(
        access_modes=[storage.access_mode],
        storage_class_name=storage.class_name,
        resources=core.VolumeResourceRequirementsArgs(requests={"storage": storage.size}),
    )
