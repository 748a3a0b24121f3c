"""PostgreSQL: a primary with a database and role per service; in prod a streaming replica and backups."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from infra.builders import datastore_config as conf
from infra.builders import names, network, pod
from infra.builders.labels import selector
from infra.builders.quota import Workload
from infra.components.datastore import DATA_VOLUME, DataStore, DataStoreArgs, volume_claim
from stacks.model import Postgres as PostgresSettings

batch, core, meta = k8s.batch.v1, k8s.core.v1, k8s.meta.v1

PORT = names.POSTGRES_PORT
SUPERUSER = names.POSTGRES_SUPERUSER
PGDATA = "/var/lib/postgresql/data/pgdata"
# Passwords are files, never environment variables: the image reads POSTGRES_PASSWORD_FILE, and the
# replica's clone and the backup job read theirs in the shell.
CREDENTIALS_DIR = "/etc/postgres-credentials"
BACKUP_DIR = "/backups"
STARTING_DEADLINE_SECONDS = 3600


@dataclass
class PostgresArgs(DataStoreArgs[PostgresSettings]):
    backup_size: str
    databases: list[str]
    superuser_password: SecretStr | None = None
    # The Kubernetes name: the Service clients connect to, the StatefulSet and its pods.
    app: str = names.POSTGRES


class Postgres(DataStore):
    passwords: dict[str, pulumi.Output[str]]
    credentials: core.Secret  # the superuser's (and replication) password, POSTGRES_PASSWORD

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        s = args.settings
        super().__init__("venta:data:Postgres", name, args.app, "database", s.image, args.common, opts)
        self.args = args
        superuser = self.make_password("superuser", args.superuser_password)
        self.passwords = {db: self.make_password(db) for db in args.databases}
        replication = self.make_password("replication") if s.read_replica else None
        creds: dict[str, pulumi.Input[str]] = {"POSTGRES_PASSWORD": superuser}
        if replication is not None:
            creds["REPLICATION_PASSWORD"] = replication
        self.credentials = self.secret("credentials", creds)
        init_files = pulumi.Output.all(self.passwords, replication).apply(
            lambda both: _init_files(both[0], both[1])
        )
        init = self.secret("init", pulumi.Output.secret(init_files))

        self.services(self.app, self.labels, self.selector, {"postgres": PORT})
        self._primary(init)
        readers = [network.pods(c) for c in args.clients]
        read_host = self.app
        if s.read_replica:
            read_host = f"{self.app}-replica"
            readers.append(network.pods(self._replica(read_host)))
            # Primary and replica count as one database: a drain may take only one of them at a time.
            both = {
                "app.kubernetes.io/component": self.role,
                "app.kubernetes.io/instance": args.common.instance,
            }
            self.disruption_budget(self.app, self.labels, both)
        if s.backup:
            readers.append(network.pods(self._backup(read_host)))
        self.network_policy(
            self.app,
            self.labels,
            network.policy(self.selector, [network.allow_from(readers, PORT)], [network.dns()]),
        )
        self.register_outputs({"host": self.app, "databases": args.databases})

    def _container(self, extra_mounts: tuple[core.VolumeMountArgs, ...] = ()) -> core.ContainerArgs:
        s = self.args.settings
        ready = ["pg_isready", "-U", SUPERUSER, "-h", "127.0.0.1", "-p", str(PORT)]
        mounts = [
            pod.mount(DATA_VOLUME, "/var/lib/postgresql/data"),
            pod.mount("run", "/var/run/postgresql"),
            pod.mount(pod.TMP_VOLUME, "/tmp"),
            pod.mount("credentials", CREDENTIALS_DIR, read_only=True),
            *extra_mounts,
        ]
        return self.container(
            "postgres",
            s.resources,
            mounts,
            ports=[core.ContainerPortArgs(name="postgres", container_port=PORT, protocol="TCP")],
            env=[
                core.EnvVarArgs(name="POSTGRES_USER", value=SUPERUSER),
                core.EnvVarArgs(name="PGDATA", value=PGDATA),
                core.EnvVarArgs(name="POSTGRES_PASSWORD_FILE", value=f"{CREDENTIALS_DIR}/POSTGRES_PASSWORD"),
            ],
            # Liveness asks only whether the server accepts connections; readiness whether it serves.
            startup_probe=pod.exec_probe(ready, 5, 5, failures=60),
            liveness_probe=pod.tcp_probe("postgres", 30, 10, failures=6),
            readiness_probe=pod.exec_probe(ready, 5, 5),
        )

    def _server(
        self,
        app: str,
        app_labels: dict[str, str],
        container: core.ContainerArgs,
        extra_volumes: list[core.VolumeArgs],
        init: list[core.ContainerArgs] | None = None,
    ) -> None:
        """A StatefulSet of one server; primary and replica avoid each other's node when spread."""
        common = self.common
        spec = pod.restricted_pod(
            self.service_account(app, app_labels),
            [container],
            [
                pod.scratch_volume(),
                pod.scratch_volume("run", "16Mi"),
                self.secret_files("credentials", self.credentials),
                *extra_volumes,
            ],
            init_containers=init,
            grace_seconds=60,
            anti_affinity_to={"app.kubernetes.io/component": self.role}
            if common.spread_across_nodes
            else None,
        )
        template = core.PodTemplateSpecArgs(metadata=meta.ObjectMetaArgs(labels=app_labels), spec=spec)
        self.statefulset(app, app_labels, template, self.args.settings.resources, self.args.storage_size)

    def _primary(self, init: core.Secret) -> None:
        mount = pod.mount("init", "/docker-entrypoint-initdb.d", read_only=True)
        volumes = [self.secret_files("init", init)]
        self._server(self.app, self.labels, self._container((mount,)), volumes)

    def _replica(self, app: str) -> dict[str, str]:
        """A streaming standby in its own StatefulSet; returns its pods' selector."""
        common, s = self.common, self.args.settings
        replica_labels = self.labels_of(app)
        sel = selector(app, common.instance)
        primary = names.pod_address(self.app, 0)
        mounts = [
            pod.mount(DATA_VOLUME, "/var/lib/postgresql/data"),
            pod.mount(pod.TMP_VOLUME, "/tmp"),
            pod.mount("credentials", CREDENTIALS_DIR, read_only=True),
        ]
        # A fresh volume starts as a copy of the primary, configured (-R) to follow it.
        clone = self.container(
            "clone-primary",
            s.resources,
            mounts,
            command=["sh", "-c"],
            args=[
                f'export PGPASSWORD="$(cat {CREDENTIALS_DIR}/REPLICATION_PASSWORD)"; '
                'if [ ! -s "$PGDATA/PG_VERSION" ]; then '
                f"pg_basebackup -h {primary} -p {PORT} -U {conf.REPLICATION_USER} "
                '-D "$PGDATA" -R -X stream && chmod 0700 "$PGDATA"; fi'
            ],
            env=[core.EnvVarArgs(name="PGDATA", value=PGDATA)],
        )
        self._server(app, replica_labels, self._container(), [], [clone])
        self.services(app, replica_labels, sel, {"postgres": PORT})
        backup_peer = [network.pods(selector(f"{self.app}-backup", common.instance))] if s.backup else []
        self.network_policy(
            app,
            replica_labels,
            network.policy(
                sel,
                [network.allow_from(backup_peer, PORT)] if backup_peer else [],
                [network.allow_to([network.pods(self.selector)], PORT), network.dns()],
            ),
        )
        return sel

    def _backup(self, host: str) -> dict[str, str]:
        """A nightly pg_dump of every database onto its own volume; returns its pods' selector."""
        args, common = self.args, self.common
        s = args.settings
        assert s.backup is not None
        app = f"{self.app}-backup"
        backup_labels = self.labels_of(app, "backup")
        sel = selector(app, common.instance)
        claim = core.PersistentVolumeClaim(
            self.logical(app, "s"),
            metadata=meta.ObjectMetaArgs(name=f"{app}s", namespace=common.namespace, labels=backup_labels),
            spec=volume_claim(args.backup_size, common.storage_class).spec,
            opts=self.child,
        )
        databases = " ".join(sorted(args.databases))
        script = (
            f'set -eu; export PGPASSWORD="$(cat {CREDENTIALS_DIR}/POSTGRES_PASSWORD)"; '
            "stamp=$(date +%Y%m%dT%H%M%S); "
            f"for db in {databases}; do "
            f'pg_dump -h {host} -p {PORT} -U {SUPERUSER} -Fc -f "{BACKUP_DIR}/$db-$stamp.dump" "$db"; done; '
            # Retention: dumps older than the configured number of days are removed after a good run.
            f"find {BACKUP_DIR} -name '*.dump' -mtime +{s.backup.retention_days} -delete"
        )
        mounts = [
            pod.mount("backups", BACKUP_DIR),
            pod.mount(pod.TMP_VOLUME, "/tmp"),
            pod.mount("credentials", CREDENTIALS_DIR, read_only=True),
        ]
        dump = self.container("pg-dump", s.resources, mounts, command=["sh", "-c", script])
        volumes = [
            pod.scratch_volume(),
            self.secret_files("credentials", self.credentials),
            core.VolumeArgs(
                name="backups",
                persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                    claim_name=claim.metadata.name
                ),
            ),
        ]
        job_pod = core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=backup_labels),
            spec=pod.restricted_pod(
                self.service_account(app, backup_labels), [dump], volumes, restart_policy="OnFailure"
            ),
        )
        batch.CronJob(
            self.logical(app),
            metadata=self.workload_metadata(app, backup_labels),
            spec=batch.CronJobSpecArgs(
                schedule=s.backup.schedule,
                concurrency_policy="Forbid",
                # A run missed by more than this (controller down, cluster busy) is skipped, not started
                # late in the day's traffic; counting missed runs from then on keeps the CronJob going.
                starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=batch.JobTemplateSpecArgs(
                    spec=batch.JobSpecArgs(backoff_limit=2, active_deadline_seconds=3600, template=job_pod)
                ),
            ),
            opts=self.child,
        )
        self.workloads.append(Workload(1, s.resources, (args.backup_size,)))
        self.network_policy(
            app,
            backup_labels,
            network.policy(
                sel,
                [],
                [network.allow_to([network.pods(selector(host, common.instance))], PORT), network.dns()],
            ),
        )
        return sel


def _init_files(passwords: dict[str, str], replication: str | None) -> dict[str, str]:
    files = {"01-databases.sql": conf.postgres_init_sql(passwords)}
    if replication is not None:
        files["02-replication.sql"] = conf.postgres_replication_sql(replication)
        files["03-replication-hba.sh"] = conf.POSTGRES_REPLICATION_HBA
    return files
