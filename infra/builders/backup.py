"""The PostgreSQL backup job's scripts: a dump of every database and the roles as one backup set, and
its upload to an S3-compatible bucket outside the cluster, each pruned by the same retention.

A backup set is a folder named by its UTC time, `<BACKUP_DIR>/<stamp>/`, holding `roles.sql`
(`pg_dumpall --roles-only`: roles, their password hashes and memberships) and `<database>.dump`
(`pg_dump -Fc`) per database. It is written under a dot-name and renamed once every dump succeeded,
so a set without its dot is complete: the restore (scripts/postgres-restore.sh) and the upload take
complete sets only. Retention removes sets older than the stack's `retentionDays`, by their age in
minutes (locally `find -mmin`, on the target `rclone delete --min-age`), after a good run only.

Both scripts are `sh -c` text run by the images' own shells (postgres: Debian's dash; rclone: Alpine's
busybox), valid for PostgreSQL 15 and 16 clients alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.builders import names

BACKUP_DIR = "/backups"
CREDENTIALS_DIR = "/etc/postgres-credentials"
TARGET_CREDENTIALS_DIR = "/etc/backup-target"
ACCESS_KEY_FILE = "accessKeyId"
SECRET_KEY_FILE = "secretAccessKey"
ROLES_FILE = "roles.sql"
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Target:
    """Where the upload goes: `<bucket>/<prefix>/<stamp>/...` on an S3-compatible endpoint."""

    bucket: str
    prefix: str
    endpoint: str
    region: str
    provider: str

    @property
    def remote(self) -> str:
        """rclone's on-the-fly remote for the S3 backend, configured by RCLONE_S3_* variables."""
        path = "/".join(part for part in (self.bucket, self.prefix.strip("/")) if part)
        return f":s3:{path}"

    def environment(self) -> dict[str, str]:
        """Non-secret settings of the upload container; the keys are read from mounted files."""
        env = {"RCLONE_S3_PROVIDER": self.provider, "RCLONE_S3_ENDPOINT": self.endpoint}
        if self.region:
            env["RCLONE_S3_REGION"] = self.region
        return env


def dump_script(host: str, databases: list[str], retention_days: int) -> str:
    """Dump the roles and every database from `host` into a new set, then prune old sets."""
    stamp_dir = f'"{BACKUP_DIR}/.$stamp"'
    lines = [
        "set -eu",
        f'export PGPASSWORD="$(cat {CREDENTIALS_DIR}/POSTGRES_PASSWORD)"',
        f"export PGHOST={host} PGPORT={names.POSTGRES_PORT} PGUSER={names.POSTGRES_SUPERUSER}",
        "stamp=$(date -u +%Y%m%dT%H%M%SZ)",
        # Sets a failed run left half-written are not backups: remove them.
        f"rm -rf {BACKUP_DIR}/.2*",
        f"mkdir {stamp_dir}",
        f"pg_dumpall --roles-only --file={stamp_dir}/{ROLES_FILE}",
        f"for db in {' '.join(sorted(databases))}; do",
        f'  pg_dump --format=custom --file={stamp_dir}/"$db.dump" "$db"',
        "done",
        f'mv {stamp_dir} "{BACKUP_DIR}/$stamp"',
        f"find {BACKUP_DIR} -mindepth 1 -maxdepth 1 -type d -name '2*' "
        f"-mmin +{retention_days * MINUTES_PER_DAY} -exec rm -rf {{}} +",
        'echo "backup set $stamp complete"',
    ]
    return "\n".join(lines) + "\n"


def upload_script(target: Target, retention_days: int) -> str:
    """Copy every complete set to the target (what is there already is skipped), then delete the
    objects older than the retention there too."""
    rclone = 'rclone --config "" --s3-no-check-bucket'
    lines = [
        "set -eu",
        f'export RCLONE_S3_ACCESS_KEY_ID="$(cat {TARGET_CREDENTIALS_DIR}/{ACCESS_KEY_FILE})"',
        f'export RCLONE_S3_SECRET_ACCESS_KEY="$(cat {TARGET_CREDENTIALS_DIR}/{SECRET_KEY_FILE})"',
        f"{rclone} copy {BACKUP_DIR} {target.remote} --exclude '.*/**'",
        f"{rclone} delete {target.remote} --min-age {retention_days}d",
        f'echo "uploaded to {target.remote}"',
    ]
    return "\n".join(lines) + "\n"
