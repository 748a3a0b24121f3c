"""Shared library of the Venta services (API kept stable; see services/common/README.md).

Modules:
- ``settings``: ``ServiceSettings`` and the mixins ``DatabaseSettings``, ``RedisSettings``,
  ``NatsSettings``, ``JwtSettings``, ``JwtSigningSettings``; ``load_settings(cls)`` raises
  ``SettingsError`` naming each bad or missing variable.
- ``app``: ``build_app(settings, title=, routers=, migrations=, streams=, background=, configure=)``,
  the factory every ``create_app`` calls; ``Resources`` holds the opened clients.
- ``deps``: FastAPI dependencies ``DbPool``, ``RedisClient``, ``JetStream``, ``CurrentUser``,
  ``require_role(role)``, ``app_settings``.
- ``auth``: Ed25519 tokens (``TokenIssuer``, ``TokenVerifier``, ``Principal``, key helpers).
- ``nats_client``: ``connect``, ``ensure_streams``, ``VENDORS_STREAM``/``LOCATIONS_STREAM``,
  ``new_event``, ``publish_event``, ``parse_event``.
- ``health``: ``Health`` registry behind ``/health/live``, ``/health/ready``, ``/health``.
- ``internal``: the internal port's app (probes, metrics, docs); ``server``: runs both ports.
- ``inputs``: ``NulGuard`` (422 for a NUL in a path, query or body), ``find_nul``, ``IndexedLatitude``.
- ``metrics``: HTTP metrics + ``RequestContextMiddleware`` (request id, timing, access log).
- ``logs``: JSON logging, ``request_id_var``, redaction.
- ``migrations``: versioned SQL under ``services/<pkg>/migrations/``, applied under an advisory lock.
- ``errors``: JSON error bodies, 422 with field reasons, no leaking 500s.
"""
