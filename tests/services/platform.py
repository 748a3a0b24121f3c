"""Every service run locally (``python -m localdev``) for the tests that walk the public address, and
what those tests derive from the services' own OpenAPI schemas.

The run gets its own PostgreSQL, Redis and NATS (the session's are flushed between tests).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
_LINE = re.compile(r"^\s+(\S+)\s+(http://\S+)\s+\(internal (http://\S+)\)$")


@dataclass(frozen=True)
class Platform:
    gateway: str  # the one address clients use
    api: dict[str, str]  # service -> its own API URL (never used by clients; named to look for leaks)
    internal: dict[str, str]  # service -> probes, metrics, docs

    def upstream_hosts(self) -> list[str]:
        """Every host:port behind the gateway, which no response may name."""
        return [
            url.removeprefix("http://")
            for name, url in [*self.api.items(), *self.internal.items()]
            if name != "api-gateway"
        ]


@contextlib.contextmanager
def local_platform(timeout: float = 300) -> Iterator[Platform]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    env["LOG_LEVEL"] = "WARNING"
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localdev", "--free-ports"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield _wait_for_urls(proc, out, timeout)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_urls(proc: subprocess.Popen[bytes], out: Any, timeout: float) -> Platform:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out.seek(0)
        text = out.read().decode(errors="replace")
        if proc.poll() is not None:
            raise RuntimeError(f"localdev exited with {proc.returncode}:\n{text[-3000:]}")
        found = {m.group(1): (m.group(2), m.group(3)) for m in map(_LINE.match, text.splitlines()) if m}
        if "file-management" in found and "api-gateway" in found:
            return Platform(
                gateway=found["api-gateway"][0],
                api={name: urls[0] for name, urls in found.items()},
                internal={name: urls[1] for name, urls in found.items()},
            )
        time.sleep(0.5)
    raise RuntimeError("localdev did not print its URLs in time")


# ---------------------------------------------------------------- the services' own schemas


@dataclass
class Field:
    """One string input of an operation: where it goes and how the service names it in a 422."""

    where: str  # "path", "query", "header" or "body"
    name: str  # parameter name, or the dotted path inside the JSON body
    path: list[str | int] = field(default_factory=list)  # the body path as keys and indexes


@dataclass
class Operation:
    method: str
    path: str  # public path, as the gateway serves it
    parameters: list[dict[str, Any]]
    body: dict[str, Any] | None  # JSON schema of the request body, refs resolved

    def string_fields(self) -> list[Field]:
        fields = [
            Field(p["in"], p["name"])
            for p in self.parameters
            if p["in"] in ("path", "query", "header") and _is_string(p.get("schema", {}))
        ]
        if self.body is not None:
            fields += [Field("body", ".".join(map(str, path)), path) for path in _string_paths(self.body, [])]
        return fields


def public_path(path: str) -> str:
    """A service's own path as the gateway serves it (routes_table.py strips /api for some)."""
    return path if path.startswith("/api/") else "/api" + path


def operations(schema: dict[str, Any]) -> list[Operation]:
    found = []
    for path, methods in schema.get("paths", {}).items():
        for method, spec in methods.items():
            content = spec.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            found.append(
                Operation(
                    method.upper(),
                    public_path(path),
                    [_resolve(p, schema) for p in spec.get("parameters", [])],
                    _resolve(body, schema) if body is not None else None,
                )
            )
    return found


def _resolve(node: Any, schema: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = schema
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(target, schema)
        return {k: _resolve(v, schema) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, schema) for v in node]
    return node


def _variants(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in node.get("anyOf", node.get("oneOf", [node])) if v.get("type") != "null"]


def _is_string(node: dict[str, Any]) -> bool:
    return any(v.get("type") == "string" and v.get("format") != "binary" for v in _variants(node))


def _string_paths(node: dict[str, Any], path: list[str | int]) -> list[list[str | int]]:
    paths: list[list[str | int]] = []
    for variant in _variants(node):
        kind = variant.get("type")
        if kind == "string" and variant.get("format") != "binary":
            paths.append(path)
        elif kind == "object":
            for name, prop in variant.get("properties", {}).items():
                paths += _string_paths(prop, [*path, name])
        elif kind == "array":
            paths += _string_paths(variant.get("items", {}), [*path, 0])
        if paths:
            break  # one variant is enough to reach a field
    return paths


def example(node: dict[str, Any]) -> Any:
    """A value the schema accepts, for the fields a test does not aim at."""
    variant = (_variants(node) or [{}])[0]
    if "enum" in variant:
        return variant["enum"][0]
    kind = variant.get("type")
    if kind == "string":
        fmt = variant.get("format")
        if fmt == "email":
            return f"nul-{uuid.uuid4().hex[:8]}@example.com"
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "date-time":
            return datetime.now(UTC).isoformat()
        if variant.get("pattern"):
            return "food"  # the slug pattern of categories
        return "x" * max(1, int(variant.get("minLength", 1)))
    if kind in ("number", "integer"):
        low = variant.get("minimum", variant.get("exclusiveMinimum", 0))
        high = variant.get("maximum", low + 10)
        return type(1 if kind == "integer" else 1.0)(max(low, min(high, 1)))
    if kind == "boolean":
        return True
    if kind == "array":
        return [example(variant.get("items", {}))]
    if kind == "object":
        return {name: example(prop) for name, prop in variant.get("properties", {}).items()}
    return "x"


def with_value(document: Any, path: list[str | int], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(document) if isinstance(document, list) and document else [None]
        items[0] = with_value(items[0], rest, value)
        return items
    copy = dict(document) if isinstance(document, dict) else {}
    copy[head] = with_value(copy.get(head), rest, value)
    return copy


async def schema_of(http: httpx.AsyncClient, internal_url: str) -> dict[str, Any]:
    response = await http.get(f"{internal_url}/openapi.json")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document
