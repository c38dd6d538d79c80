"""Policy errors: refusals and denials decided by ``policies``.

Whether a missing resource answers 404 or 403 is decided here, once:
a dataset that does not exist (or whose name is malformed) raises
``UnknownDataset`` (404); a dataset that exists but that the caller holds no
live grant on raises ``AccessDenied`` (403) naming the action and resource and
how to request access. Dataset *metadata* is discoverable by every consumer
(the catalog is searchable), so confirming existence leaks nothing new.
"""

from __future__ import annotations

from typing import Any

from catalog.errors import PlatformError, Terminal


class PolicyError(PlatformError):
    code = "policy_error"


class QueryRefused(PolicyError, Terminal):
    """The SQL text is not an allowed query; ``construct`` names what was refused."""

    code = "query_refused"

    def __init__(self, message: str, *, construct: str, **attrs: Any) -> None:
        super().__init__(message, construct=construct, **attrs)
        self.construct = construct


class UnknownDataset(PolicyError, LookupError):
    code = "unknown_dataset"

    def __init__(self, name: str, reason: str = "") -> None:
        message = (
            f"dataset {name!r} {reason}"
            if reason
            else f"no dataset named {name!r}; reference datasets as <org>.<dataset> "
            "(GET /v1/datasets lists them)"
        )
        super().__init__(message, dataset=name)
        self.name = name


class AccessDenied(PolicyError, PermissionError):
    code = "access_denied"

    def __init__(self, action: str, resource: str, hint: str = "") -> None:
        message = f"{action} on {resource} is not allowed"
        if hint:
            message += f"; {hint}"
        super().__init__(message, action=action, resource=resource)
        self.action = action
        self.resource = resource
