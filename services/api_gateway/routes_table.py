"""What the gateway routes, and which of it is public. Adding a service is one line in ROUTES.

``prefix`` is matched on whole path segments; the upstream sees the path without the leading ``/api``
(``/api/vendors/7`` -> ``<UPSTREAM_VENDOR_MANAGEMENT>/vendors/7``), or unchanged with
``strip_api=False`` for a service that serves its routes under ``/api`` itself. ``public`` lists
``"METHOD /subpath"`` patterns relative to the prefix that need no token: ``""`` is the prefix itself,
``*`` one path segment, ``**`` anything. Every other request needs a valid bearer token.
``websockets`` lists the sub-paths where the gateway accepts WebSocket upgrades (websocket.py); their
token is checked by the same rule as a ``GET`` of that path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Route:
    prefix: str
    service: str  # Kubernetes name; its URL comes from UPSTREAM_<SERVICE>
    public: tuple[str, ...] = ()
    strip_api: bool = True
    uploads: bool = False  # bodies may be as large as the gateway's upload_max_bytes
    websockets: tuple[str, ...] = ()  # sub-paths that accept WebSocket upgrades
    _public_re: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)
    label: str = field(init=False, compare=False)  # bounded metrics label for everything under the prefix

    def __post_init__(self) -> None:
        compiled = []
        for rule in self.public:
            method, _, sub = rule.partition(" ")
            pattern = re.escape(self.prefix + sub).replace(r"\*\*", ".*").replace(r"\*", "[^/]+")
            compiled.append((method.upper(), re.compile(pattern + "/?")))
        object.__setattr__(self, "_public_re", tuple(compiled))
        object.__setattr__(self, "label", f"{self.prefix}/*")

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def is_public(self, method: str, path: str) -> bool:
        return any(m == method and rx.fullmatch(path) for m, rx in self._public_re)

    def is_websocket(self, path: str) -> bool:
        return any(path == self.prefix + sub for sub in self.websockets)

    def upstream_path(self, path: str) -> str:
        return path.removeprefix("/api") if self.strip_api else path


ROUTES: tuple[Route, ...] = (
    Route(
        "/api/users",
        "user-management",
        public=("POST /register", "POST /login", "POST /refresh", "POST /logout"),
    ),
    Route("/api/vendors", "vendor-management", public=("GET ", "GET /*")),
    Route("/api/search", "search-discovery", public=("GET /**",)),
    # These four serve their routes under /api themselves.
    Route("/api/locations", "geolocation", strip_api=False),
    Route("/api/realtime", "real-time", strip_api=False, websockets=("/ws",)),
    Route("/api/webhooks", "webhooks", strip_api=False),
    Route("/api/files", "file-management", strip_api=False, uploads=True),
)


def upstream_setting(service: str) -> str:
    """Settings field (and, upper-cased, the environment variable) holding a service's base URL."""
    return "upstream_" + service.replace("-", "_")


def upstream_internal_setting(service: str) -> str:
    """Settings field of a service's internal base URL (its readiness probe), when not derived."""
    return upstream_setting(service) + "_internal"
