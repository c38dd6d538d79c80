"""POST /v1/query and /v1/query/explain.

Governing, starting the worker and reading the first ``PREFETCH_BYTES`` of the body run
in one worker thread; the rest of the body is read in worker threads too (Starlette's
``iterate_in_threadpool``): the event loop never waits on a worker process. A result
smaller than that is answered as one body with a ``content-length``, its worker already
back in the pool. JSON, NDJSON, CSV and Arrow IPC
are rendered by the query worker (its own process and core; the row cap applied there,
rows counted per frame for the delivery ledger) and forwarded here unchanged; Parquet is
written here from the worker's Arrow batches. Backpressure: past the first chunks, the next chunk
is read from the worker only after the previous one was handed to the server, and the
worker blocks on its full pipe meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.types import Receive, Scope, Send

from gateway.deps import PlatformDep, authorize, bearer_token, require_role, require_scope
from gateway.query_runner import QueryStream
from gateway.query_service import (
    Governed,
    decide,
    explained_sql,
    governed,
    obligations,
    open_stream,
    record_allowed,
)
from gateway.result_formats import MEDIA_TYPES, RENDERED_IN_WORKER, encode_parquet, json_tail
from gateway.schemas import ExplainOut, QueryRequest
from gateway.services import Platform
from policies.ledger import record_delivery
from policies.model import Principal

log = logging.getLogger("datashare.query")
PREFETCH_BYTES = 64 * 1024  # read before answering; a smaller result goes out in one piece
router = APIRouter(prefix="/v1/query", tags=["query"])
QUERY_SCOPES, QUERY_ROLES = ("query",), ("consumer", "provider")
Querier = Annotated[Principal, Depends(require_role(*QUERY_ROLES))]
Bearer = Annotated[str, Depends(bearer_token)]


@router.post("")
async def run_query(
    body: QueryRequest, request: Request, token: Bearer, platform: PlatformDep
) -> Response:
    # the token is checked in the query's worker thread (``authorize``: the scope and role
    # checks of ``explain``'s dependencies), one thread hop instead of two
    started = await run_in_threadpool(_start, platform, request, token, body)
    if started.rest is None:  # the whole result is in hand: one body, the worker already free
        return _CompleteResponse(
            b"".join(started.head),
            after=started.after_response,
            media_type=MEDIA_TYPES[body.format],
            headers=started.headers,
        )
    return _QueryResponse(
        started.stream,
        started.head,
        started.rest,
        finish=started.finish,
        media_type=MEDIA_TYPES[body.format],
        headers=started.headers,
    )


@dataclass
class _Started:
    """A query that is running (or already finished) in a worker, and what the first
    ``PREFETCH_BYTES`` of its body were. ``rest`` is None when the body is complete."""

    stream: QueryStream
    headers: dict[str, str]
    head: list[bytes]
    rest: Iterator[bytes] | None
    finish: Callable[[], None]
    after_response: Callable[[], None] | None  # None: nothing to do after the response


def _start(platform: Platform, request: Request, token: str, body: QueryRequest) -> _Started:
    """Authenticate, govern, start the worker and read the first chunks of the body, in
    one worker thread (one hop from the event loop instead of one per step). A result
    that fits in ``PREFETCH_BYTES`` is complete here: its stream is closed (the worker
    goes back to the pool) and only the delivery ledger is left, for after the response."""
    principal = authorize(request, token, scopes=QUERY_SCOPES, roles=QUERY_ROLES)
    began = time.perf_counter()
    decision = decide(platform, principal, body.sql, action="query.run")
    query = decision.query
    governed_at = time.perf_counter()
    audit = _AuditOnce(platform, principal, decision)
    output = body.format if body.format in RENDERED_IN_WORKER else "batches"
    try:  # the audit append runs while the worker sets up and runs the statement
        stream = open_stream(platform, query, principal, output, while_starting=audit)
    finally:
        audit()  # the decision is recorded even when the query could not start
    timings = {"govern": (governed_at - began) * 1000, "audit": audit.ms, **stream.timings}
    headers = {
        "x-datashare-datasets": ",".join(f"{s.sql_name}@{s.version}" for s in query.sources),
        "x-datashare-max-rows": str(query.max_rows),
        "cache-control": "no-store",
        "server-timing": server_timing(timings),
    }

    def delivered() -> None:  # the delivery ledger (DOMAIN.md rule 13)
        try:
            record_delivery(
                platform.query_policy,
                principal,
                query.sources,
                rows=stream.rows,
                action="query.run",
                audit=platform.audit,
            )
        except Exception:
            log.exception("delivery ledger write failed", extra={"rows": stream.rows})

    outcome = _Outcome()

    def close() -> None:
        stream.close()
        platform.metrics.queries.labels(outcome.value).inc()
        platform.metrics.query_rows.inc(stream.rows)

    def finish() -> None:
        close()
        delivered()

    body_iter = _encode(stream, body.format, outcome)
    head: list[bytes] = []
    size = 0
    try:
        for chunk in body_iter:
            head.append(chunk)
            size += len(chunk)
            if size >= PREFETCH_BYTES:
                return _Started(stream, headers, head, body_iter, finish, delivered)
    except BaseException:
        finish()
        raise
    close()
    ledger = any(source.grant_id is not None for source in query.sources)
    return _Started(stream, headers, head, None, finish, delivered if ledger else None)


class _AuditOnce:
    """The audit event of an allowed query, appended by the first call (later calls do
    nothing, also when the first one raised); ``ms``: how long the append took."""

    def __init__(self, platform: Platform, principal: Principal, decision: Governed) -> None:
        self._args = (platform, principal, decision)
        self._done = False
        self.ms = 0.0

    def __call__(self) -> None:
        if self._done:
            return
        self._done = True
        began = time.perf_counter()
        record_allowed(*self._args, action="query.run")
        self.ms = (time.perf_counter() - began) * 1000


SERVER_TIMING_NAMES = {
    "govern": "check and rewrite the SQL",
    "audit": "record the decision (while the worker starts the query)",
    "worker": "job sent to its first result",
    "setup": "worker: sandbox and database for this job",
    "execute": "worker: run the statement",
}


def server_timing(timings: dict[str, float]) -> str:
    """``Server-Timing`` (W3C) of a query: where the time before the first byte went, in
    milliseconds; browsers show it in their network panel. Names and descriptions are fixed
    text (no commas or quotes), never data from the query."""
    return ", ".join(
        f'{name};dur={timings[name]:.1f};desc="{desc}"'
        for name, desc in SERVER_TIMING_NAMES.items()
        if name in timings
    )


@dataclass
class _Outcome:
    value: str = "error"


class _CompleteResponse(Response):
    """A result read to its end before the response started; ``after`` (the delivery
    ledger) runs once the body was sent, or the client went away."""

    def __init__(self, content: bytes, *, after: Callable[[], None] | None, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._after is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._after)


class _QueryResponse(StreamingResponse):
    """Sends the prefetched ``head`` chunks, then the rest of the body read in worker
    threads, and runs ``finish`` (close the query stream, metrics, delivery ledger) once
    however the response ends: finished, failed, or the client went away. Starlette
    cancels a disconnected body without closing its iterator, which would otherwise leave
    the worker (and the concurrency slots) held until the query deadline."""

    def __init__(
        self,
        stream: QueryStream,
        head: list[bytes],
        rest: Iterator[bytes],
        *,
        finish: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(_chained(head, rest), **kwargs)
        self._stream, self._finish = stream, finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._finish)


async def _chained(head: list[bytes], rest: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in head:
        yield chunk
    async for chunk in iterate_in_threadpool(rest):
        yield chunk


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
