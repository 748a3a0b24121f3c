"""VentaService: one FastAPI service with everything it needs to run, scale and be reached."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra.builders import images, names, pod, scanner, shutdown
from infra.builders.labels import labels, selector
from infra.builders.quota import Workload
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
        self.service_name = spec.name
        self.labels = labels(spec.name, spec.area, args.instance, images.version(args.images))
        self.selector = selector(spec.name, args.instance)
        self.image_ref = self._image(name, spec.name, args.images, child)

        def metadata(suffix: str = "") -> meta.ObjectMetaArgs:
            """Named after the service: the Service's DNS name, the Deployment an HPA and operators target."""
            return meta.ObjectMetaArgs(name=spec.name + suffix, namespace=args.namespace, labels=self.labels)

        # Auto-named: new config makes a new ConfigMap or Secret under a new name, the pod template that
        # refers to it changes and the pods roll, and the old one is deleted once the rollout is done.
        unnamed = meta.ObjectMetaArgs(namespace=args.namespace, labels=self.labels)
        self.config_map = core.ConfigMap(f"{name}-config", metadata=unnamed, data=args.config, opts=child)
        self.secret = core.Secret(
            f"{name}-secret", metadata=unnamed, type="Opaque", string_data=args.secrets, opts=child
        )
        self.account = core.ServiceAccount(
            f"{name}-account", metadata=metadata(), automount_service_account_token=False, opts=child
        )
        claim = None
        if args.file_storage:
            claim = core.PersistentVolumeClaim(
                f"{name}-files", metadata=metadata("-files"), spec=_claim_spec(args.file_storage), opts=child
            )
        # A built image is pinned to its pushed digest; a referenced one only when the stack names a digest.
        pinned = "@sha256:" if args.images.build else images.reference(args.images, spec.name)
        skips = scanner.checkov_skips([pinned], args.images.pull_policy, secret_env=True)
        skips |= scanner.kube_score_skips(args.images.pull_policy, autoscaled=bool(settings.autoscaling))
        self.deployment = apps.Deployment(
            name,
            metadata=meta.ObjectMetaArgs(
                name=spec.name, namespace=args.namespace, labels=self.labels, annotations=skips
            ),
            spec=self._deployment_spec(args, claim),
            # Under an HPA, `replicas` is the HPA's from the first rollout on: the engine sets it at
            # creation only (the minimum, below) and never writes it again.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(ignore_changes=["spec.replicas"]))
            if settings.autoscaling
            else child,
        )
        self.service = core.Service(
            f"{name}-svc",
            metadata=metadata(),
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector=self.selector,
                # The API first (what the Ingress and the gateway's UPSTREAM_* URLs reach), then the
                # internal port the gateway's upstream view and Prometheus' ServiceMonitors use.
                ports=[
                    core.ServicePortArgs(
                        name=names.SERVICE_PORT_NAME,
                        port=names.SERVICE_CLUSTER_PORT,
                        target_port=names.SERVICE_PORT_NAME,
                        protocol="TCP",
                    ),
                    core.ServicePortArgs(
                        name=names.INTERNAL_PORT_NAME,
                        port=names.INTERNAL_PORT,
                        target_port=names.INTERNAL_PORT_NAME,
                        protocol="TCP",
                    ),
                ],
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
        # At most its maximum plus the one surge pod of a rollout, for the namespace quota.
        claims = (args.file_storage.size,) if args.file_storage else ()
        self.workloads = [Workload(settings.max_pods + 1, settings.resources, claims)]
        self.register_outputs(
            {"image": self.image_ref, "deployment": self.deployment.metadata.name, "service": spec.name}
        )

    def _image(
        self, name: str, service: str, source: Images, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        if not source.build:
            return pulumi.Output.from_input(images.reference(source, service))
        built = docker.Image(
            f"{name}-image",
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
        self, args: VentaServiceArgs, claim: core.PersistentVolumeClaim | None
    ) -> apps.DeploymentSpecArgs:
        spec, settings = args.spec, args.settings
        http, internal = names.SERVICE_PORT_NAME, names.INTERNAL_PORT_NAME
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
            mounts.append(pod.mount(FILES_VOLUME, names.STORAGE_DIR))
        container = core.ContainerArgs(
            name=spec.name,
            image=self.image_ref,
            image_pull_policy=args.images.pull_policy,
            ports=[
                core.ContainerPortArgs(name=http, container_port=names.SERVICE_PORT, protocol="TCP"),
                core.ContainerPortArgs(name=internal, container_port=names.INTERNAL_PORT, protocol="TCP"),
            ],
            env_from=[
                core.EnvFromSourceArgs(
                    config_map_ref=core.ConfigMapEnvSourceArgs(name=self.config_map.metadata.name)
                ),
                core.EnvFromSourceArgs(secret_ref=core.SecretEnvSourceArgs(name=self.secret.metadata.name)),
            ],
            resources=pod.resources(settings.resources),
            # On the internal port: the public one answers 404 for /health/*. Up to 150 s to start
            # (migrations: 30 checks 5 s apart); then liveness from 30 s on, every 10 s, and readiness
            # from 5 s on, every 5 s (the timings the platform was specified with).
            startup_probe=pod.http_probe("/health/live", internal, 0, 5, failures=30),
            liveness_probe=pod.http_probe("/health/live", internal, 30, 10),
            readiness_probe=pod.http_probe("/health/ready", internal, 5, 5),
            security_context=pod.container_security(pod.UID),
            volume_mounts=mounts,
        )
        # A preStop sleep, and a grace period that covers every step of stopping (infra/builders/shutdown.py).
        drained = shutdown.drained_pod(container)
        annotations = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(names.INTERNAL_PORT),
            "prometheus.io/path": "/metrics",
        }
        return apps.DeploymentSpecArgs(
            # Created at the HPA's minimum, so the first rollout is judged done at that size (an
            # omitted count means 1 pod until the HPA's first sync, up to 15 s later).
            replicas=settings.autoscaling.min_replicas if settings.autoscaling else settings.replicas,
            selector=meta.LabelSelectorArgs(match_labels=self.selector),
            strategy=_strategy(args.file_storage),
            min_ready_seconds=10,
            revision_history_limit=10,
            template=core.PodTemplateSpecArgs(
                metadata=meta.ObjectMetaArgs(labels=self.labels, annotations=annotations),
                spec=pod.restricted_pod(
                    self.account.metadata.name,
                    drained["containers"],
                    volumes,
                    grace_seconds=drained["termination_grace_period_seconds"],
                    spread=self.selector if args.spread_across_nodes else None,
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
    """One pod at a time: a new pod first (maxSurge 1), no old pod goes before a new one is ready
    (maxUnavailable 0) and has stayed so for minReadySeconds 10. A single-node volume forces Recreate
    (two pods cannot mount it)."""
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
