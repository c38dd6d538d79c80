"""Column masks: per-consumer HMAC keys and the SQL expression of each mask kind.

Keys. A consumer organisation's HMAC key is derived, never stored::

    key = HMAC-SHA256(platform_secret, "gba-datashare/mask-key/v<version>/<consumer org id>")

so tokens are stable for one consumer (joins across that consumer's queries work),
unlinkable across consumers (two organisations get different tokens for the same
value), and rotate by raising ``version`` (all tokens change at once). The platform
secret stays with the gateway; the derived key is only ever placed in governed SQL.

HMAC in SQL. DuckDB has no HMAC function, so the token is built from SHA-256 as
RFC 2104 defines it (``H((K ^ opad) || H((K ^ ipad) || m))``)::

    SHA256(UNHEX('<K ^ opad>') || UNHEX(SHA256(UNHEX('<K ^ ipad>') || ENCODE(CAST(v AS TEXT)))))

It runs in the sandboxed worker with no UDF, and ``hmac_token`` is the Python
reference it is tested against. The padded-key literals are key material: every
``UNHEX`` literal in governed SQL is one (client SQL cannot call ``UNHEX``), and
``redact_mask_keys`` replaces them before SQL is shown to a user or written to a log.

Mask kinds (``policies.model.Mask``): ``hmac``; ``redact`` (``params["text"]``,
default ``'***'``); ``partial`` (``keep_prefix``/``keep_suffix`` characters, and
``'***'`` alone when the value is not longer than what would be kept, so short
values are never shown whole); ``generalise`` (dates truncated to ``params["to"]``:
day/week/month/quarter/year, returned as the TIMESTAMP that starts the unit, as
DuckDB's ``DATE_TRUNC`` does; numbers floored to multiples of ``params["bucket"]``);
``null`` (NULL of the column's own type). NULL stays NULL under every kind.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from sqlglot import exp

from policies.errors import PolicyError
from policies.model import Mask

KEY_DERIVATION_LABEL = "gba-datashare/mask-key/v{version}/{org}"
REDACTED_KEY = "<mask key redacted>"
DEFAULT_REDACTION = "***"
DATE_UNITS = frozenset({"day", "week", "month", "quarter", "year"})
_BLOCK_SIZE = 64  # SHA-256 block size in bytes (RFC 2104 B)
_KEY_LITERAL = "mask_key_literal"


class MaskError(PolicyError):
    """A mask cannot be applied as decided (bad parameters or no key)."""

    code = "mask_error"


class MaskKeyUnavailable(MaskError):
    code = "mask_key_unavailable"

    def __init__(self, dataset: str, column: str) -> None:
        super().__init__(
            f"column {column} of {dataset} is masked with an HMAC token but no mask key was "
            "supplied for your organisation; the gateway operator must configure the mask "
            "secret (DATASHARE_QUERY__MASK_SECRET)",
            dataset=dataset,
            column=column,
        )


class InvalidMask(MaskError):
    code = "invalid_mask"

    def __init__(self, dataset: str, mask: Mask, reason: str) -> None:
        super().__init__(
            f"the {mask.kind} mask on {dataset}.{mask.column} is invalid ({reason}); "
            "ask the dataset's steward to correct the grant",
            dataset=dataset,
            column=mask.column,
            kind=mask.kind,
        )


@dataclass(frozen=True)
class MaskKey:
    """One consumer organisation's HMAC key; ``repr`` never shows the bytes."""

    consumer_org_id: str
    version: int
    secret: bytes = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.consumer_org_id}/v{self.version}"


def derive_mask_key(platform_secret: bytes, consumer_org_id: str, *, version: int = 1) -> MaskKey:
    if version < 1:
        raise ValueError(f"mask key versions start at 1, got {version}")
    if len(platform_secret) < 16:
        raise ValueError("the platform mask secret must be at least 16 bytes")
    label = KEY_DERIVATION_LABEL.format(version=version, org=consumer_org_id).encode("utf-8")
    secret = hmac.new(platform_secret, label, hashlib.sha256).digest()
    return MaskKey(consumer_org_id=consumer_org_id, version=version, secret=secret)


def hmac_token(key: MaskKey, value: object) -> str | None:
    """The token the SQL expression yields for ``value`` as DuckDB renders it as text."""
    if value is None:
        return None
    return hmac.new(key.secret, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def mask_expression(mask: Mask, value: exp.Expr, key: MaskKey | None, *, dataset: str) -> exp.Expr:
    """The SQL expression that shows ``value`` (a raw column) masked."""
    if mask.kind == "hmac":
        if key is None:
            raise MaskKeyUnavailable(dataset, mask.column)
        return _hmac(value, key)
    if mask.kind == "redact":
        text = mask.params.get("text", DEFAULT_REDACTION)
        if not isinstance(text, str) or len(text) > 64:
            raise InvalidMask(dataset, mask, "text must be a string of at most 64 characters")
        return _keep_null(value, exp.Literal.string(text))
    if mask.kind == "partial":
        return _partial(mask, value, dataset)
    if mask.kind == "generalise":
        return _generalise(mask, value, dataset)
    if mask.kind == "null":
        return exp.Case(ifs=[exp.If(this=exp.false(), true=value)])
    raise InvalidMask(dataset, mask, f"unknown kind {mask.kind!r}")


def is_key_literal(node: exp.Expr) -> bool:
    return bool(node.meta.get(_KEY_LITERAL))


def redact_mask_keys(expression: exp.Expr) -> exp.Expr:
    """A copy of ``expression`` with every HMAC key literal replaced by a placeholder."""
    redacted = expression.copy()
    for literal in list(redacted.find_all(exp.Literal)):
        if isinstance(literal.parent, exp.Unhex):
            literal.replace(exp.Literal.string(REDACTED_KEY))
    return redacted


def _hmac(value: exp.Expr, key: MaskKey) -> exp.Expr:
    padded = key.secret.ljust(_BLOCK_SIZE, b"\0")
    inner_pad = _key_blob(bytes(byte ^ 0x36 for byte in padded))
    outer_pad = _key_blob(bytes(byte ^ 0x5C for byte in padded))
    message = exp.Encode(this=_as_text(value), charset=exp.Literal.string("utf-8"))
    inner = exp.SHA2(
        this=exp.DPipe(this=inner_pad, expression=message), length=exp.Literal.number(256)
    )
    outer = exp.DPipe(this=outer_pad, expression=exp.Unhex(this=inner))
    return exp.SHA2(this=outer, length=exp.Literal.number(256))


def _key_blob(material: bytes) -> exp.Expr:
    literal = exp.Literal.string(material.hex())
    literal.meta[_KEY_LITERAL] = True
    return exp.Unhex(this=literal)


def _partial(mask: Mask, value: exp.Expr, dataset: str) -> exp.Expr:
    prefix, suffix = mask.params.get("keep_prefix", 0), mask.params.get("keep_suffix", 0)
    valid = all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 32 for n in (prefix, suffix)
    )
    if not valid or prefix + suffix == 0:
        raise InvalidMask(
            dataset, mask, "keep_prefix/keep_suffix must be integers 0..32, not both 0"
        )
    text = _as_text(value)
    parts: list[exp.Expr] = []
    if prefix:
        parts.append(exp.Left(this=text.copy(), expression=exp.Literal.number(prefix)))
    parts.append(exp.Literal.string(DEFAULT_REDACTION))
    if suffix:
        parts.append(exp.Right(this=text.copy(), expression=exp.Literal.number(suffix)))
    shown: exp.Expr = parts[0]
    for part in parts[1:]:
        shown = exp.DPipe(this=shown, expression=part)
    long_enough = exp.GT(
        this=exp.Length(this=text.copy()), expression=exp.Literal.number(prefix + suffix)
    )
    masked = exp.Case(
        ifs=[exp.If(this=long_enough, true=shown)], default=exp.Literal.string(DEFAULT_REDACTION)
    )
    return _keep_null(value, masked)


def _generalise(mask: Mask, value: exp.Expr, dataset: str) -> exp.Expr:
    unit, bucket = mask.params.get("to"), mask.params.get("bucket")
    if unit is not None and bucket is None:
        if unit not in DATE_UNITS:
            raise InvalidMask(dataset, mask, f"'to' must be one of {', '.join(sorted(DATE_UNITS))}")
        unit_literal = exp.Literal.string(str(unit).upper())
        return exp.DateTrunc(unit=unit_literal, this=value)  # type: ignore[no-untyped-call]
    if bucket is not None and unit is None:
        if not isinstance(bucket, (int, float)) or isinstance(bucket, bool) or not bucket > 0:
            raise InvalidMask(dataset, mask, "'bucket' must be a positive number")
        size = exp.Literal.number(bucket)
        floored = exp.Floor(this=exp.Div(this=value, expression=size))
        return exp.Mul(this=floored, expression=size.copy())
    raise InvalidMask(dataset, mask, "give exactly one of 'to' (dates) or 'bucket' (numbers)")


def _as_text(value: exp.Expr) -> exp.Expr:
    return exp.Cast(this=value.copy(), to=exp.DataType.build("TEXT"))


def _keep_null(value: exp.Expr, masked: exp.Expr) -> exp.Expr:
    """``CASE WHEN value IS NULL THEN NULL ELSE masked END``: a mask never invents values."""
    is_null = exp.Is(this=value.copy(), expression=exp.Null())
    return exp.Case(ifs=[exp.If(this=is_null, true=exp.Null())], default=masked)
