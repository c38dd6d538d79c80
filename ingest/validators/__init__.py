"""Identifier validators: one module per family, all behind ``base.Validator``.

``VALIDATORS`` maps a name to a validator; ``get_validator`` looks one up. The built-in
validators register through :func:`register`, the same call a new family uses (adding a
family means adding a module and one ``register`` line, never an if/elif chain).

>>> get_validator("hkid").check("ｋ２５４１７６（９）").value
'K254176(9)'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from catalog.errors import Terminal
from ingest.errors import IngestError
from ingest.validators.base import (
    Checked,
    Finding,
    Severity,
    Validator,
    excel_damage,
    normalise_identifier,
)
from ingest.validators.hkid import HkidValidator
from ingest.validators.hong_kong import HkBrCertValidator, HkBrnValidator
from ingest.validators.logistics import AwbValidator, ContainerValidator
from ingest.validators.macao import MoBirValidator, MoTinValidator
from ingest.validators.phone import PhoneValidator
from ingest.validators.resident_id import ResidentIdValidator
from ingest.validators.uscc import UsccValidator

_REGISTRY: dict[str, Validator] = {}
VALIDATORS: Mapping[str, Validator] = MappingProxyType(_REGISTRY)
"""Name → validator (read-only view; add entries with :func:`register`)."""


class UnknownValidatorError(IngestError, Terminal, KeyError):
    """A data contract names a validator that is not registered."""

    code = "validator_unknown"

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(
            f"no identifier validator named {name!r}; use one of: {', '.join(available)}",
            name=name,
            available=available,
        )
        self.name = name
        self.available = available


class DuplicateValidatorError(IngestError, Terminal, ValueError):
    """Two validators were registered under one name without ``replace=True``."""

    code = "validator_duplicate"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"a validator named {name!r} is already registered; pass replace=True to swap it",
            name=name,
        )
        self.name = name


def register(validator: Validator, *, replace: bool = False) -> Validator:
    """Make *validator* available under ``validator.name``; returns it."""
    if validator.name in _REGISTRY and not replace:
        raise DuplicateValidatorError(validator.name)
    _REGISTRY[validator.name] = validator
    return validator


def get_validator(name: str) -> Validator:
    """The validator registered as *name*; ``UnknownValidatorError`` (a ``KeyError``) lists
    the registered names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownValidatorError(name, sorted(_REGISTRY)) from None


for _builtin in (
    UsccValidator(),
    ResidentIdValidator(),
    HkidValidator(),
    HkBrnValidator(),
    HkBrCertValidator(),
    MoBirValidator(),
    MoTinValidator(),
    PhoneValidator(),
    ContainerValidator(),
    AwbValidator(),
):
    register(_builtin)

__all__ = [
    "VALIDATORS",
    "Checked",
    "DuplicateValidatorError",
    "Finding",
    "Severity",
    "UnknownValidatorError",
    "Validator",
    "excel_damage",
    "get_validator",
    "normalise_identifier",
    "register",
]
