"""POST /v1/query and /v1/query/explain.

Governing, starting the worker and every read of a result chunk run in worker threads
(``run_in_threadpool`` and Starlette's ``iterate_in_threadpool`` for a synchronous body
iterator): the event loop never waits on a worker process. JSON, NDJSON, CSV and Arrow IPC
are rendered by the query worker (its own process and core; the row cap applied there,
rows counted per frame for the delivery ledger) and forwarded here unchanged; Parquet is
written here from the worker's Arrow batches. Backpressure: the next chunk is read from
the worker only after the previous one was handed to the server, and the worker blocks on
its full pipe meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from gateway.deps import PlatformDep, require_role, require_scope
from gateway.query_runner import QueryStream
from gateway.query_service import explained_sql, governed, obligations, open_stream
from gateway.result_formats import MEDIA_TYPES, RENDERED_IN_WORKER, encode_parquet, json_tail
from gateway.schemas import ExplainOut, QueryRequest
from gateway.services import Platform
from policies.ledger import record_delivery
from policies.model import Principal

log = logging.getLogger("datashare.query")
router = APIRouter(prefix="/v1/query", tags=["query"])
Querier = Annotated[Principal, Depends(require_role("consumer", "provider"))]


@router.post("", dependencies=[require_scope("query")])
async def run_query(
    body: QueryRequest, principal: Querier, platform: PlatformDep
) -> StreamingResponse:
    query = await run_in_threadpool(governed, platform, principal, body.sql, action="query.run")
    output = body.format if body.format in RENDERED_IN_WORKER else "batches"
    stream = await run_in_threadpool(open_stream, platform, query, principal, output)
    headers = {
        "x-datashare-datasets": ",".join(f"{s.sql_name}@{s.version}" for s in query.sources),
        "x-datashare-max-rows": str(query.max_rows),
        "cache-control": "no-store",
    }

    def delivered(rows: int) -> None:  # the delivery ledger (DOMAIN.md rule 13)
        try:
            record_delivery(
                platform.query_policy,
                principal,
                query.sources,
                rows=rows,
                action="query.run",
                audit=platform.audit,
            )
        except Exception:
            log.exception("delivery ledger write failed", extra={"rows": rows})

    outcome = _Outcome()
    return _QueryResponse(
        stream,
        _encode(stream, body.format, outcome),
        finish=lambda: _finish(platform, stream, outcome, delivered),
        media_type=MEDIA_TYPES[body.format],
        headers=headers,
    )


@dataclass
class _Outcome:
    value: str = "error"


class _QueryResponse(StreamingResponse):
    """Runs ``finish`` (close the query stream, metrics, delivery ledger) once however the
    response ends: finished, failed, or the client went away. Starlette cancels a
    disconnected body without closing its iterator, which would otherwise leave the worker
    (and the concurrency slots) held until the query deadline."""

    def __init__(
        self,
        stream: QueryStream,
        content: Iterator[bytes],
        *,
        finish: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(content, **kwargs)
        self._stream, self._finish = stream, finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._finish)


def _finish(
    platform: Platform, stream: QueryStream, outcome: _Outcome, delivered: Callable[[int], None]
) -> None:
    stream.close()
    platform.metrics.queries.labels(outcome.value).inc()
    platform.metrics.query_rows.inc(stream.rows)
    delivered(stream.rows)


def _encode(stream: QueryStream, fmt: str, outcome: _Outcome) -> Iterator[bytes]:
    """JSON, NDJSON, CSV and Arrow IPC were rendered by the worker (row cap applied there):
    their bytes pass through unchanged; only a JSON result's tail (the row count) is added
    here. Parquet is written here from the worker's Arrow batches."""
    with stream:
        if fmt in RENDERED_IN_WORKER:
            yield from stream.chunks()
            if fmt == "json":
                yield json_tail(_footer(stream))
        else:
            yield from encode_parquet(stream.schema, stream)
        outcome.value = "truncated" if stream.truncated else "ok"


def _footer(stream: QueryStream) -> dict[str, Any]:
    return {"row_count": stream.rows, "truncated": stream.truncated}


@router.post("/explain", dependencies=[require_scope("query")])
async def explain(body: QueryRequest, principal: Querier, platform: PlatformDep) -> ExplainOut:
    """The governed SQL that would run (storage paths and mask keys redacted) and the
    obligations applied to each dataset reference; nothing is executed."""
    query = await run_in_threadpool(governed, platform, principal, body.sql, action="query.explain")
    return ExplainOut(
        governed_sql=explained_sql(query),
        datasets=[obligations(s) for s in query.sources],
        max_rows=query.max_rows,
    )
