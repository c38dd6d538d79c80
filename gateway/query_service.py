"""Governed queries: decide, rewrite, audit, then run in a sandboxed worker.

The client's SQL never runs: ``policies.rewrite.govern`` parses and checks it,
resolves each dataset through the caller's grants and regenerates SQL that
reads only the granted columns of the granted files. Both refusals and accepted
queries are written to the audit log with the decision behind them.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from catalog.errors import PlatformError
from gateway.query_runner import QueryStream
from gateway.services import Platform
from policies.evaluate import QueryDecisions
from policies.model import GovernedQuery, Principal
from policies.rewrite import govern

log = logging.getLogger("datashare.query")
MAX_AUDITED_SQL = 4000


def governed(platform: Platform, principal: Principal, sql: str, *, action: str) -> GovernedQuery:
    decisions = QueryDecisions()
    digest = hashlib.sha256(sql.encode("utf-8", "replace")).hexdigest()
    detail: dict[str, Any] = {"sql_sha256": digest, "sql": sql[:MAX_AUDITED_SQL]}
    try:
        query = govern(
            sql,
            platform.query_policy.resolver(principal, decisions),
            max_rows=platform.settings.query.max_rows,
            max_sql_bytes=platform.settings.query.max_sql_bytes,
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
    platform.audit.append(
        actor=principal.client_id, action=action, resource="query", outcome="allowed", detail=detail
    )
    return query


def open_stream(platform: Platform, query: GovernedQuery) -> QueryStream:
    buckets = {f.split("/")[2] for s in query.sources for f in s.files if f.startswith("s3://")}
    credentials = platform.lake.read_credentials(buckets)
    return platform.runner.run(query, credentials)
