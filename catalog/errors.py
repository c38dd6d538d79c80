"""The platform's exception tree.

``PlatformError`` is the one root; each package hangs its own root below it
(``CatalogError``, ``StorageError``, ``QueryError`` here; ``IngestError`` in
``ingest.errors``; ``PolicyError`` in ``policies.errors``). The catalog is the
innermost package, so the root lives here and everyone else imports inward.

Exceptions carry structured attributes: callers read ``attrs()``, never parse
messages. Retryability is a type (``Transient`` / ``Terminal``). Nothing here
knows about HTTP: ``gateway.errors`` maps classes to status codes.
"""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    """Root of every error the platform raises on purpose."""

    code: str = "platform_error"

    def __init__(self, message: str, **attrs: Any) -> None:
        super().__init__(message)
        self.message = message
        self._attrs = attrs

    def attrs(self) -> dict[str, Any]:
        """Public, loggable fields (never secrets)."""
        return dict(self._attrs)

    def add_attrs(self, **attrs: Any) -> None:
        """Attach context learnt while the error travels up (e.g. a quarantine key)."""
        self._attrs.update(attrs)

    def __str__(self) -> str:
        return self.message


class Transient:
    """Mixin: retrying the same operation may succeed."""


class Terminal:
    """Mixin: retrying the same operation will fail the same way."""


class CatalogError(PlatformError):
    code = "catalog_error"


class NotFound(CatalogError, LookupError):
    code = "not_found"

    def __init__(self, kind: str, ident: object, hint: str = "") -> None:
        message = f"{kind} {ident!s} not found"
        if hint:
            message += f"; {hint}"
        super().__init__(message, kind=kind, id=str(ident))
        self.kind = kind
        self.ident = ident


class Conflict(CatalogError):
    code = "conflict"


class InvalidInput(CatalogError, ValueError):
    """A value supplied by a caller is malformed; ``field`` names which one."""

    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None, **attrs: Any) -> None:
        super().__init__(message, field=field, **attrs)
        self.field = field


class StorageError(CatalogError):
    code = "storage_error"


class StorageUnavailable(StorageError, Transient):
    code = "storage_unavailable"


class QueryError(PlatformError):
    """Execution of an already-governed query failed."""

    code = "query_failed"


class QueryTimeout(QueryError, Terminal):
    code = "query_timeout"


class QueryResourceExceeded(QueryError, Terminal):
    code = "query_resource_exceeded"


class QueryRateLimited(QueryError):
    """A client exceeded its per-client query rate or concurrency (``retry_after_s``)."""

    code = "query_rate_limited"
