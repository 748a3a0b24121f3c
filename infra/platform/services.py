"""The catalog's services, each given only its own credentials, and the token key pair they share."""

from __future__ import annotations

import pulumi
import pulumi_random as random

from infra.builders import call_graph, keys
from infra.builders.service_env import Credentials, Endpoints, config_data, secret_data, stack_endpoints
from infra.components.service import FileStorage, VentaService, VentaServiceArgs
from infra.platform.data_stores import DataStores
from infra.platform.guard_rails import ChildOptions
from stacks.catalog import SERVICES, ServiceSpec
from stacks.model import StackSettings


def services(
    name: str,
    s: StackSettings,
    namespace: pulumi.Input[str],
    instance: str,
    stores: DataStores,
    child: ChildOptions,
) -> list[VentaService]:
    seed = signing_seed(name, s, child)
    public_key = pulumi.Output.unsecret(seed.apply(keys.public_key_pem))
    where = stack_endpoints(s)
    built = []
    for spec in SERVICES:
        args = service_args(s, spec, namespace, instance, stores, seed, public_key, where)
        # No output orders a Deployment after the StatefulSets: the stores the stack runs come first,
        # so that a service's first pods find them serving instead of failing their startup probes.
        after_stores = pulumi.ResourceOptions(depends_on=stores.all())
        built.append(
            VentaService(
                f"{name}-{spec.name}", args, pulumi.ResourceOptions.merge(child(spec.name), after_stores)
            )
        )
    return built


def service_args(
    s: StackSettings,
    spec: ServiceSpec,
    namespace: pulumi.Input[str],
    instance: str,
    stores: DataStores,
    seed: pulumi.Output[str],
    public_key: pulumi.Output[str],
    where: Endpoints,
) -> VentaServiceArgs:
    """One service's args: only its own credentials reach its Secret."""
    creds = pulumi.Output.all(
        stores.postgres_passwords.get(spec.database_name),
        stores.redis_password if spec.redis else None,
        stores.cache_password if spec.cache else None,
        stores.nats_passwords.get(spec.name),
        seed if spec.signs_tokens else None,
    ).apply(lambda v: Credentials(*v))
    return VentaServiceArgs(
        spec=spec,
        settings=s.services[spec.name],
        namespace=namespace,
        instance=instance,
        images=s.images,
        config=public_key.apply(lambda pem: config_data(spec, s, where, pem)),
        secrets=pulumi.Output.secret(creds.apply(lambda c: secret_data(spec, where, c))),
        network=call_graph.service_policy(
            spec,
            SERVICES,
            instance,
            s.gateway.ingress_namespace,
            s.monitoring.namespace,
            call_graph.store_routes(s),
            read_replica=s.postgres.runs_read_replica,
        ),
        spread_across_nodes=s.spread_across_nodes,
        file_storage=file_storage(s, spec),
    )


def signing_seed(name: str, s: StackSettings, child: ChildOptions) -> pulumi.Output[str]:
    """The Ed25519 seed user-management signs with: the stack's secret, or generated once and kept."""
    given = s.secrets.jwt_signing_seed
    if given is not None:
        return pulumi.Output.secret(given.get_secret_value())
    generated = random.RandomBytes(f"{name}-jwt-signing-seed", length=32, opts=child("jwt-signing-seed"))
    return pulumi.Output.secret(generated.base64)


def file_storage(s: StackSettings, spec: ServiceSpec) -> FileStorage | None:
    if not spec.file_storage:
        return None
    return FileStorage(
        size=s.storage.files,
        access_mode=s.storage.files_access_mode,
        class_name=s.storage.files_class_name or s.storage.class_name,
    )
