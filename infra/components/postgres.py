"""PostgreSQL: a primary with a database and role per service; in prod a streaming replica and backups."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from infra.builders import datastore_config as conf
from infra.builders import network, pod
from infra.builders.labels import labels, selector
from infra.components import datastore
from infra.components.datastore import DATA_VOLUME, DataStoreCommon
from stacks.model import Postgres as PostgresSettings

apps, batch, core, meta = k8s.apps.v1, k8s.batch.v1, k8s.core.v1, k8s.meta.v1

PORT = 5432
PGDATA = "/var/lib/postgresql/data/pgdata"
CREDENTIALS = "postgres-credentials"
# Passwords are files, never environment variables: the image reads POSTGRES_PASSWORD_FILE, and the
# replica's clone and the backup job read theirs in the shell.
CREDENTIALS_DIR = "/etc/postgres-credentials"
BACKUP_DIR = "/backups"


@dataclass
class PostgresArgs:
    settings: PostgresSettings
    common: DataStoreCommon
    storage_size: str
    backup_size: str
    databases: list[str]
    clients: list[dict[str, str]]
    superuser_password: SecretStr | None = None


class Postgres(pulumi.ComponentResource):
    passwords: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("venta:data:Postgres", name, None, opts)
        s, common = args.settings, args.common
        self.pull_policy = common.pull_policy
        self.version = s.image.split(":")[1].split("@")[0]
        self.labels = labels("postgres", "database", common.instance, self.version)
        self.selector = selector("postgres", common.instance)

        superuser = datastore.password("postgres-superuser", args.superuser_password, self)
        self.passwords = {db: datastore.password(f"postgres-{db}", None, self) for db in args.databases}
        replication = datastore.password("postgres-replication", None, self) if s.read_replica else None
        creds: dict[str, pulumi.Input[str]] = {"POSTGRES_PASSWORD": superuser}
        if replication is not None:
            creds["REPLICATION_PASSWORD"] = replication
        datastore.secret(CREDENTIALS, common, self.labels, creds, self)
        init_files = pulumi.Output.all(self.passwords, replication).apply(
            lambda both: _init_files(both[0], both[1])
        )
        datastore.secret("postgres-init", common, self.labels, pulumi.Output.secret(init_files), self)

        datastore.services("postgres", common, self.labels, self.selector, {"postgres": PORT}, self)
        self.statefulset = self._primary(args)
        readers = [network.pods(c) for c in args.clients]
        read_host = "postgres"
        if s.read_replica:
            read_host = "postgres-replica"
            readers.append(network.pods(self._replica(args)))
            # Primary and replica count as one database: a drain may take only one of them at a time.
            datastore.disruption_budget(
                "postgres",
                common,
                self.labels,
                {"app.kubernetes.io/component": "database", "app.kubernetes.io/instance": common.instance},
                self,
            )
        if s.backup:
            readers.append(network.pods(self._backup(args, read_host)))
        datastore.network_policy(
            "postgres",
            common,
            self.labels,
            network.policy(self.selector, [network.allow_from(readers, PORT)], [network.dns()]),
            self,
        )
        self.register_outputs({"host": "postgres", "databases": args.databases})

    def _container(
        self, s: PostgresSettings, extra_mounts: tuple[core.VolumeMountArgs, ...] = ()
    ) -> core.ContainerArgs:
        ready = ["pg_isready", "-U", "postgres", "-h", "127.0.0.1", "-p", str(PORT)]
        return core.ContainerArgs(
            name="postgres",
            image=s.image,
            image_pull_policy=self.pull_policy,
            ports=[core.ContainerPortArgs(name="postgres", container_port=PORT, protocol="TCP")],
            env=[
                core.EnvVarArgs(name="POSTGRES_USER", value="postgres"),
                core.EnvVarArgs(name="PGDATA", value=PGDATA),
                core.EnvVarArgs(name="POSTGRES_PASSWORD_FILE", value=f"{CREDENTIALS_DIR}/POSTGRES_PASSWORD"),
            ],
            resources=pod.resources(s.resources),
            # Liveness asks only whether the server accepts connections; readiness whether it serves.
            startup_probe=pod.exec_probe(ready, 5, 5, failures=60),
            liveness_probe=pod.tcp_probe("postgres", 30, 10, failures=6),
            readiness_probe=pod.exec_probe(ready, 5, 5),
            security_context=pod.container_security(pod.UID),
            volume_mounts=[
                pod.mount(DATA_VOLUME, "/var/lib/postgresql/data"),
                pod.mount("run", "/var/run/postgresql"),
                pod.mount(pod.TMP_VOLUME, "/tmp"),
                pod.mount("credentials", CREDENTIALS_DIR, read_only=True),
                *extra_mounts,
            ],
        )

    def _pod(
        self,
        args: PostgresArgs,
        pod_labels: dict[str, str],
        account: pulumi.Input[str],
        containers: list[core.ContainerArgs],
        extra_volumes: list[core.VolumeArgs],
        init: list[core.ContainerArgs] | None = None,
    ) -> core.PodTemplateSpecArgs:
        spread = args.common.spread_across_nodes
        return core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=pod_labels),
            spec=core.PodSpecArgs(
                service_account_name=account,
                automount_service_account_token=False,
                enable_service_links=False,
                security_context=pod.pod_security(pod.UID),
                init_containers=init,
                containers=containers,
                termination_grace_period_seconds=60,
                volumes=[
                    pod.scratch_volume(),
                    pod.scratch_volume("run", "16Mi"),
                    datastore.secret_files("credentials", CREDENTIALS),
                    *extra_volumes,
                ],
                affinity=pod.anti_affinity({"app.kubernetes.io/component": "database"}) if spread else None,
            ),
        )

    def _statefulset(
        self, name: str, args: PostgresArgs, set_labels: dict[str, str], template: core.PodTemplateSpecArgs
    ) -> apps.StatefulSet:
        return apps.StatefulSet(
            name,
            metadata=datastore.workload_metadata(name, args.common, set_labels, args.settings.image),
            spec=apps.StatefulSetSpecArgs(
                replicas=1,
                service_name=f"{name}-headless",
                selector=meta.LabelSelectorArgs(match_labels=selector(name, args.common.instance)),
                template=template,
                volume_claim_templates=[datastore.volume_claim(args.storage_size, args.common.storage_class)],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _primary(self, args: PostgresArgs) -> apps.StatefulSet:
        account = datastore.service_account("postgres", args.common, self.labels, self)
        init_mount = pod.mount("init", "/docker-entrypoint-initdb.d", read_only=True)
        container = self._container(args.settings, (init_mount,))
        template = self._pod(
            args, self.labels, account, [container], [datastore.secret_files("init", "postgres-init")]
        )
        return self._statefulset("postgres", args, self.labels, template)

    def _replica(self, args: PostgresArgs) -> dict[str, str]:
        """A streaming standby in its own StatefulSet; returns its pods' selector."""
        common = args.common
        replica_labels = labels("postgres-replica", "database", common.instance, self.version)
        sel = selector("postgres-replica", common.instance)
        clone = core.ContainerArgs(
            name="clone-primary",
            image=args.settings.image,
            image_pull_policy=self.pull_policy,
            command=["sh", "-c"],
            # A fresh volume starts as a copy of the primary, configured (-R) to follow it.
            args=[
                f'export PGPASSWORD="$(cat {CREDENTIALS_DIR}/REPLICATION_PASSWORD)"; '
                'if [ ! -s "$PGDATA/PG_VERSION" ]; then '
                f"pg_basebackup -h postgres-0.postgres-headless -p {PORT} -U {conf.REPLICATION_USER} "
                '-D "$PGDATA" -R -X stream && chmod 0700 "$PGDATA"; fi'
            ],
            env=[core.EnvVarArgs(name="PGDATA", value=PGDATA)],
            resources=pod.resources(args.settings.resources),
            security_context=pod.container_security(pod.UID),
            volume_mounts=[
                pod.mount(DATA_VOLUME, "/var/lib/postgresql/data"),
                pod.mount(pod.TMP_VOLUME, "/tmp"),
                pod.mount("credentials", CREDENTIALS_DIR, read_only=True),
            ],
        )
        account = datastore.service_account("postgres-replica", common, replica_labels, self)
        template = self._pod(args, replica_labels, account, [self._container(args.settings)], [], [clone])
        datastore.services("postgres-replica", common, replica_labels, sel, {"postgres": PORT}, self)
        self._statefulset("postgres-replica", args, replica_labels, template)
        backup_peer = (
            [network.pods(selector("postgres-backup", common.instance))] if args.settings.backup else []
        )
        datastore.network_policy(
            "postgres-replica",
            common,
            replica_labels,
            network.policy(
                sel,
                [network.allow_from(backup_peer, PORT)] if backup_peer else [],
                [network.allow_to([network.pods(self.selector)], PORT), network.dns()],
            ),
            self,
        )
        return sel

    def _backup(self, args: PostgresArgs, host: str) -> dict[str, str]:
        """A nightly pg_dump of every database onto its own volume; returns its pods' selector."""
        s, common = args.settings, args.common
        assert s.backup is not None
        backup_labels = labels("postgres-backup", "backup", common.instance, self.version)
        sel = selector("postgres-backup", common.instance)
        claim = core.PersistentVolumeClaim(
            "postgres-backups",
            metadata=meta.ObjectMetaArgs(
                name="postgres-backups", namespace=common.namespace, labels=backup_labels
            ),
            spec=datastore.volume_claim(args.backup_size, common.storage_class).spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        databases = " ".join(sorted(args.databases))
        script = (
            f'set -eu; export PGPASSWORD="$(cat {CREDENTIALS_DIR}/POSTGRES_PASSWORD)"; '
            "stamp=$(date +%Y%m%dT%H%M%S); "
            f"for db in {databases}; do "
            f'pg_dump -h {host} -p {PORT} -U postgres -Fc -f "{BACKUP_DIR}/$db-$stamp.dump" "$db"; done; '
            # Retention: dumps older than the configured number of days are removed after a good run.
            f"find {BACKUP_DIR} -name '*.dump' -mtime +{s.backup.retention_days} -delete"
        )
        dump = core.ContainerArgs(
            name="pg-dump",
            image=s.image,
            image_pull_policy=self.pull_policy,
            command=["sh", "-c", script],
            resources=pod.resources(s.resources),
            security_context=pod.container_security(pod.UID),
            volume_mounts=[
                pod.mount("backups", BACKUP_DIR),
                pod.mount(pod.TMP_VOLUME, "/tmp"),
                pod.mount("credentials", CREDENTIALS_DIR, read_only=True),
            ],
        )
        account = datastore.service_account("postgres-backup", common, backup_labels, self)
        job_pod = core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=backup_labels),
            spec=core.PodSpecArgs(
                service_account_name=account,
                restart_policy="OnFailure",
                automount_service_account_token=False,
                enable_service_links=False,
                security_context=pod.pod_security(pod.UID),
                containers=[dump],
                volumes=[
                    pod.scratch_volume(),
                    datastore.secret_files("credentials", CREDENTIALS),
                    core.VolumeArgs(
                        name="backups",
                        persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                            claim_name=claim.metadata.name
                        ),
                    ),
                ],
            ),
        )
        batch.CronJob(
            "postgres-backup",
            metadata=datastore.workload_metadata("postgres-backup", common, backup_labels, s.image),
            spec=batch.CronJobSpecArgs(
                schedule=s.backup.schedule,
                concurrency_policy="Forbid",
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=batch.JobTemplateSpecArgs(
                    spec=batch.JobSpecArgs(backoff_limit=2, active_deadline_seconds=3600, template=job_pod)
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        datastore.network_policy(
            "postgres-backup",
            common,
            backup_labels,
            network.policy(
                sel,
                [],
                [network.allow_to([network.pods(selector(host, common.instance))], PORT), network.dns()],
            ),
            self,
        )
        return sel


def _init_files(passwords: dict[str, str], replication: str | None) -> dict[str, str]:
    files = {"01-databases.sql": conf.postgres_init_sql(passwords)}
    if replication is not None:
        files["02-replication.sql"] = conf.postgres_replication_sql(replication)
        files["03-replication-hba.sh"] = conf.POSTGRES_REPLICATION_HBA
    return files
