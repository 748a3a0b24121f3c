"""NATS subject permissions of each service's user, derived from the catalog, and their config text.

A service may publish only the subjects it owns (`publishes`) and subscribe only to what it consumes
(`consumes`) and to its own reply inbox (`_INBOX.<service>.>`, the prefix services/common/
nats_client.py connects with). JetStream is reached through API subjects, granted as narrowly as the
client uses them:

- every service creates the streams it publishes to or consumes from at start-up (whoever starts
  first; the definitions are the same), so it may create and update those streams, never delete or
  purge them, nor touch any other;
- per consumer of the catalog (stream, name): create it (`CONSUMER.CREATE.<stream>.<name>[.<filter>]`),
  read its info, pull from it (`CONSUMER.MSG.NEXT`) and acknowledge its messages (`$JS.ACK.<stream>.
  <name>.>`); a short-lived consumer ("*", named at random) may also be deleted. So no service can
  pull, acknowledge or delete another service's durable consumer on a shared stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from services.catalog import STREAMS
from stacks.catalog import ServiceSpec

API = "$JS.API"
ACK = "$JS.ACK"


@dataclass(frozen=True)
class SubjectPermissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def inbox(service: str) -> str:
    """The reply prefix the service's client uses (services/common/nats_client.inbox_prefix)."""
    return f"_INBOX.{service}"


def streams_of(spec: ServiceSpec) -> list[str]:
    """The streams the service creates at start-up: those its subjects go to, those it reads."""
    published = {name for name, subjects in STREAMS.items() for s in spec.publishes if s in subjects}
    return sorted(published | {stream for stream, _ in spec.consumers})


def consumer_api(stream: str, name: str) -> list[str]:
    grants = [
        f"{API}.CONSUMER.CREATE.{stream}.{name}",
        f"{API}.CONSUMER.CREATE.{stream}.{name}.>",  # with its filter subject
        f"{API}.CONSUMER.INFO.{stream}.{name}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{name}",
        f"{ACK}.{stream}.{name}.>",
    ]
    if name == "*":  # short-lived: removed after use
        grants.append(f"{API}.CONSUMER.DELETE.{stream}.*")
    return grants


def permissions(spec: ServiceSpec) -> SubjectPermissions:
    publish = list(spec.publishes)
    for stream in streams_of(spec):
        publish += [f"{API}.STREAM.CREATE.{stream}", f"{API}.STREAM.UPDATE.{stream}"]
    for stream, name in spec.consumers:
        publish += consumer_api(stream, name)
    subscribe = [*spec.consumes, f"{inbox(spec.name)}.>"]
    return SubjectPermissions(tuple(dict.fromkeys(publish)), tuple(dict.fromkeys(subscribe)))


def users_block(
    users: Mapping[str, str],
    services: Iterable[ServiceSpec],
    password: Callable[[str, str], str] = lambda _user, secret: json.dumps(secret),
) -> str:
    """The `authorization { users: [...] }` block of nats.conf: one user per service with its
    permissions. `password(user, secret)` writes the password's value (a quoted literal by default;
    Compose's file refers to environment variables instead)."""
    by_name = {spec.name: spec for spec in services}
    unknown = sorted(set(users) - set(by_name))
    if unknown:
        raise ValueError(f"NATS users must be services of the catalog; unknown: {', '.join(unknown)}")
    entries = []
    for user, secret in sorted(users.items()):
        grants = permissions(by_name[user])
        rules = f"publish: {_rule(grants.publish)}, subscribe: {_rule(grants.subscribe)}"
        entries.append(
            f"    {{user: {json.dumps(user)}, password: {password(user, secret)}, permissions: {{{rules}}}}}"
        )
    return "authorization {\n  users: [\n" + ",\n".join(entries) + "\n  ]\n}"


def _rule(allowed: tuple[str, ...]) -> str:
    # An empty allow list would lift the restriction altogether: nothing allowed is a deny of all.
    return f"{{allow: {json.dumps(list(allowed))}}}" if allowed else '{deny: [">"]}'
