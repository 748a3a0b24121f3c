"""PostgreSQL: a primary with a database and role per service; in prod a streaming replica and backups."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from infra.builders import backup, names, network, pod
from infra.builders import datastore_config as conf
from infra.builders.labels import selector
from infra.builders.quota import Workload
from infra.components.datastore import DATA_VOLUME, DataStore, DataStoreArgs, volume_claim
from stacks.model import BackupTarget as BackupTargetSettings
from stacks.model import Postgres as PostgresSettings

batch, core, meta = k8s.batch.v1, k8s.core.v1, k8s.meta.v1

PORT = names.POSTGRES_PORT
SUPERUSER = names.POSTGRES_SUPERUSER
PGDATA = "/var/lib/postgresql/data/pgdata"
# Passwords are files, never environment variables: the image reads POSTGRES_PASSWORD_FILE, and the
# replica's clone and the backup job read theirs in the shell.
CREDENTIALS_DIR = backup.CREDENTIALS_DIR
BACKUP_DIR = backup.BACKUP_DIR
STARTING_DEADLINE_SECONDS = 3600


@dataclass
class PostgresArgs(DataStoreArgs[PostgresSettings]):
    backup_size: str
    databases: list[str]
    superuser_password: SecretStr | None = None
    # The backup target's access key id and secret key (required when the settings name a target).
    backup_keys: tuple[SecretStr, SecretStr] | None = None
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
            read_host = names.replica(self.app)
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
        # A fresh volume starts as a copy of the primary, configured (-R) to follow it. A fast
        # checkpoint starts the copy at once (a spread one can hold it for minutes on a busy primary).
        clone = self.container(
            "clone-primary",
            s.resources,
            mounts,
            command=["sh", "-c"],
            args=[
                f'export PGPASSWORD="$(cat {CREDENTIALS_DIR}/REPLICATION_PASSWORD)"; '
                'if [ ! -s "$PGDATA/PG_VERSION" ]; then '
                f"pg_basebackup -h {primary} -p {PORT} -U {conf.REPLICATION_USER} "
                '-D "$PGDATA" -R -X stream --checkpoint=fast && chmod 0700 "$PGDATA"; fi'
            ],
            env=[core.EnvVarArgs(name="PGDATA", value=PGDATA)],
        )
        self._server(app, replica_labels, self._container(), [], [clone])
        self.services(app, replica_labels, sel, {"postgres": PORT})
        # The services read here (DATABASE_READ_URL), and so does the backup job.
        readers = [network.pods(c) for c in self.args.clients]
        if s.backup:
            readers.append(network.pods(selector(f"{self.app}-backup", common.instance)))
        self.network_policy(
            app,
            replica_labels,
            network.policy(
                sel,
                [network.allow_from(readers, PORT)] if readers else [],
                [network.allow_to([network.pods(self.selector)], PORT), network.dns()],
            ),
        )
        return sel

    def _backup(self, host: str) -> dict[str, str]:
        """A nightly backup set of every database and the roles onto its own volume, uploaded to the
        stack's target when it has one (infra/builders/backup.py); returns its pods' selector."""
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
        script = backup.dump_script(host, args.databases, s.backup.retention_days)
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
        # With a target the dump runs first (an init container) and the upload after it, in one pod.
        init, containers, egress = [], [dump], [network.dns()]
        target = s.backup.target
        if target is not None:
            upload, upload_volume = self._upload(target, s.backup.retention_days, s.backup.upload_image)
            init, containers = [dump], [upload]
            volumes.append(upload_volume)
            egress.append(network.public_internet(urlsplit(target.endpoint).port or _default_port(target)))
        job_pod = core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=backup_labels),
            spec=pod.restricted_pod(
                self.service_account(app, backup_labels),
                containers,
                volumes,
                init_containers=init or None,
                restart_policy="OnFailure",
            ),
        )
        batch.CronJob(
            self.logical(app),
            metadata=self.workload_metadata(
                app, backup_labels, extra_images=[s.backup.upload_image] if target else []
            ),
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
        egress.insert(0, network.allow_to([network.pods(selector(host, common.instance))], PORT))
        self.network_policy(app, backup_labels, network.policy(sel, [], egress))
        return sel

    def _upload(
        self, target: BackupTargetSettings, retention_days: int, image: str
    ) -> tuple[core.ContainerArgs, core.VolumeArgs]:
        """The rclone container that copies the sets to the target, and the volume of its keys."""
        keys = self.args.backup_keys
        assert keys is not None, "stacks.load refuses a target without its keys"
        secret = self.secret(
            "backup-target",
            {
                backup.ACCESS_KEY_FILE: pulumi.Output.secret(keys[0].get_secret_value()),
                backup.SECRET_KEY_FILE: pulumi.Output.secret(keys[1].get_secret_value()),
            },
        )
        where = backup.Target(target.bucket, target.prefix, target.endpoint, target.region, target.provider)
        env = {**where.environment(), "HOME": "/tmp"}  # rclone writes nothing but may look for a home
        container = core.ContainerArgs(
            name="upload",
            image=image,
            image_pull_policy=self.common.pull_policy,
            resources=pod.resources(self.args.settings.resources),
            security_context=pod.container_security(pod.UID),
            command=["sh", "-c", backup.upload_script(where, retention_days)],
            env=[core.EnvVarArgs(name=k, value=v) for k, v in sorted(env.items())],
            volume_mounts=[
                pod.mount("backups", BACKUP_DIR, read_only=True),
                pod.mount(pod.TMP_VOLUME, "/tmp"),
                pod.mount("backup-target", backup.TARGET_CREDENTIALS_DIR, read_only=True),
            ],
        )
        return container, self.secret_files("backup-target", secret)


def _default_port(target: BackupTargetSettings) -> int:
    return 443 if target.endpoint.startswith("https:") else 80


def _init_files(passwords: dict[str, str], replication: str | None) -> dict[str, str]:
    files = {"01-databases.sql": conf.postgres_init_sql(passwords)}
    if replication is not None:
        files["02-replication.sql"] = conf.postgres_replication_sql(replication)
        files["03-replication-hba.sh"] = conf.POSTGRES_REPLICATION_HBA
    return files
