"""Governed queries: decide, rewrite, audit, then run in a sandboxed worker.

The client's SQL never runs: ``policies.rewrite.govern`` parses and checks it,
resolves each dataset through the caller's grants and regenerates SQL that
reads only the granted columns of the granted files (``platform.govern_cache``
skips the parse and rewrite of a repeated SQL text, never the resolver's
decisions: ``policies.rewrite.cache``). Both refusals and accepted
queries are written to the audit log with the decision behind them.

Per-client limits (``gateway.query_limits``) are taken before any work: every
``governed`` call spends one token of the client's rate; ``open_stream`` also
holds one of the client's concurrency slots until the result stream closes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from catalog.errors import PlatformError
from gateway.query_runner import QueryStream
from policies.evaluate import QueryDecisions
from policies.masking import derive_mask_key
from policies.model import GovernedQuery, GovernedSource, Principal

if TYPE_CHECKING:
    from gateway.services import Platform

log = logging.getLogger("datashare.query")
MAX_AUDITED_SQL = 4000
REDACTED_KEY = "<mask key redacted>"


@dataclass(frozen=True)
class Governed:
    """A governed query plus the decisions behind it (grant id per dataset id).

    ``audit_detail``: what the audit event of the allowed decision records."""

    query: GovernedQuery
    grants: dict[str, str | None] = field(default_factory=dict)
    sql_sha256: str = ""
    audit_detail: dict[str, Any] = field(default_factory=dict)


def sql_digest(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8", "replace")).hexdigest()


def governed(platform: Platform, principal: Principal, sql: str, *, action: str) -> GovernedQuery:
    return govern_for(platform, principal, sql, action=action).query


def govern_for(
    platform: Platform,
    principal: Principal,
    sql: str,
    *,
    action: str,
    max_rows: int | None = None,
) -> Governed:
    """Rate-check, govern and audit ``sql`` for ``principal``; raises the refusal.

    ``max_rows``: the outer row cap (default: the ``query.max_rows`` setting)."""
    decision = decide(platform, principal, sql, action=action, max_rows=max_rows)
    record_allowed(platform, principal, decision, action=action)
    return decision


def decide(
    platform: Platform,
    principal: Principal,
    sql: str,
    *,
    action: str,
    max_rows: int | None = None,
) -> Governed:
    """Rate-check and govern ``sql``; a refusal is audited and raised. An allowed query is
    not audited yet: ``record_allowed`` must run before any of its rows leave the gateway
    (``POST /v1/query`` runs it while the worker starts the query)."""
    platform.client_limits.check_rate(principal.client_id)
    decisions = QueryDecisions()
    digest = sql_digest(sql)
    detail: dict[str, Any] = {"sql_sha256": digest, "sql": sql[:MAX_AUDITED_SQL]}
    try:
        query = platform.govern_cache.govern(
            sql,
            platform.query_policy.resolver(principal, decisions),
            max_rows=platform.settings.query.max_rows if max_rows is None else max_rows,
            max_sql_bytes=platform.settings.query.max_sql_bytes,
            mask_key=derive_mask_key(
                platform.settings.mask_secret(),
                principal.org_id,
                version=platform.settings.query.mask_key_version,
            ),
        )
    except PlatformError as exc:
        log.warning(
            "query refused",
            extra={
                "client_id": principal.client_id,
                "code": exc.code,
                "sql_sha256": digest,
                **exc.attrs(),
            },
        )
        platform.audit.append(
            actor=principal.client_id,
            action=action,
            resource="query",
            outcome="refused",
            detail={**detail, "code": exc.code, **exc.attrs()},
        )
        raise
    detail["datasets"] = [
        {
            "dataset": s.dataset_id,
            "sql_name": s.sql_name,
            "version": s.version,
            "columns": list(s.columns),
            "grant": decisions.grants.get(s.dataset_id),
            "rule_set": s.rule_set,
            "masks": {m.column: m.kind for m in s.masks},
        }
        for s in query.sources
    ]
    return Governed(query, dict(decisions.grants), digest, detail)


def record_allowed(
    platform: Platform, principal: Principal, decision: Governed, *, action: str
) -> None:
    """The audit event of an allowed query: its SQL and, per dataset, the grant, columns,
    masks and rule set applied."""
    platform.audit.append(
        actor=principal.client_id,
        action=action,
        resource="query",
        outcome="allowed",
        detail=decision.audit_detail,
    )


def open_stream(
    platform: Platform,
    query: GovernedQuery,
    principal: Principal | None = None,
    output: str = "batches",
    while_starting: Callable[[], None] | None = None,
) -> QueryStream:
    """Start ``query`` in a worker; with ``principal`` it holds one of the client's slots.
    ``output``: Arrow batches, or a format the worker renders; ``while_starting`` runs once
    the worker has the job, before its first result is read (``QueryRunner.run``)."""
    release = platform.client_limits.admit(principal.client_id) if principal else None
    try:
        buckets = {f.split("/")[2] for s in query.sources for f in s.files if f.startswith("s3://")}
        credentials = platform.lake.read_credentials(buckets)
        stream = platform.runner.run(query, credentials, output, while_starting)
    except BaseException:
        if release is not None:
            release()
        raise
    if release is not None:
        stream.on_close(release)
    return stream


def obligations(source: GovernedSource) -> dict[str, Any]:
    """What the grant imposed on one dataset reference, for ``/v1/query/explain``."""
    return {
        "sql_name": source.sql_name,
        "version": source.version,
        "columns": list(source.columns),
        "masks": [
            {"column": m.column, "kind": m.kind, "params": dict(m.params)} for m in source.masks
        ],
        "row_filter": source.row_filter,
        "aggregate_only": source.aggregate_only,
        "min_group_size": source.min_group_size,
        "subject_column": source.subject_column,
    }


def explained_sql(query: GovernedQuery) -> str:
    """The governed SQL as shown to its caller: storage locations and mask keys redacted.

    HMAC masks carry the consumer's padded key as ``UNHEX('<hex>')`` literals (client SQL
    cannot call ``UNHEX``); every such literal, and any other string literal of 32 or more
    hex digits, is replaced. Storage paths become ``<org.dataset@version/part-N>``.
    """
    sql = query.redacted_sql or query.sql
    for source in query.sources:
        for index, path in enumerate(source.files):
            sql = sql.replace(path, f"<{source.sql_name}@{source.version}/part-{index}>")
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except Exception:  # never show SQL we could not check for key material
        return "<governed SQL not shown: it could not be re-parsed for redaction>"
    for literal in list(tree.find_all(exp.Literal)):
        text = str(literal.this)
        keyish = len(text) >= 32 and all(c in "0123456789abcdefABCDEF" for c in text)
        if literal.is_string and (keyish or isinstance(literal.parent, exp.Unhex)):
            literal.replace(exp.Literal.string(REDACTED_KEY))
    return tree.sql(dialect="duckdb", comments=False)
