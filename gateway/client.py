"""The Python client for the gateway: tokens, datasets, uploads, governed queries, exports.

    from gateway.client import Client

    with Client("https://datashare.example", client_id, client_secret) as ds:
        table = ds.query("SELECT * FROM dg_factory.energy_meter").to_arrow()  # pyarrow.Table
        frame = ds.query(sql).to_pandas()       # or .to_polars() (pip install polars)
        with ds.query(sql) as result:           # stream: one Arrow record batch at a time
            for batch in result:
                ...
        export = ds.export(sql)                 # Parquet in your region; export["files"][i]["url"]

Results travel as an Arrow IPC stream and are decoded batch by batch as they arrive, so
iterating a result never holds more than one batch. Tokens (OAuth client credentials)
are fetched and renewed automatically.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pyarrow as pa

FINISHED = ("succeeded", "failed", "duplicate")


class GatewayError(Exception):
    """An error answer from the gateway: ``status``, ``code``, ``message``, ``detail``."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.detail = status, code, message, detail


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (an HTTP response body)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class QueryResult:
    """One governed query's result, streamed: iterate Arrow ``RecordBatch``es, or collect
    with ``to_arrow()``/``to_pandas()``/``to_polars()``. The request is sent on first use;
    close it (or use ``with``) when stopping early, so the gateway stops the worker.

    ``max_rows`` is the gateway's row cap for this query: a result with exactly that many
    rows may have been cut short (``POST /v1/query`` with ``format=json`` says so).
    """

    def __init__(self, client: Client, sql: str) -> None:
        self._client, self.sql = client, sql
        self._response: httpx.Response | None = None
        self._context: Any = None
        self._reader: pa.ipc.RecordBatchStreamReader | None = None
        self.max_rows: int | None = None
        self.datasets: list[str] = []
        # milliseconds per phase from the answer's Server-Timing (govern, audit, worker, ...)
        self.timings: dict[str, float] = {}

    def _open(self) -> pa.ipc.RecordBatchStreamReader:
        if self._reader is None:
            headers = {"Authorization": f"Bearer {self._client.token()}"}
            body = {"sql": self.sql, "format": "arrow"}
            self._context = self._client._http.stream(
                "POST", "/v1/query", json=body, headers=headers
            )
            response = self._response = self._context.__enter__()
            if response.status_code >= 400:
                response.read()
                self.close()
                _raise(response)
            self.max_rows = int(response.headers.get("x-datashare-max-rows", "0")) or None
            named = response.headers.get("x-datashare-datasets", "")
            self.datasets = [d for d in named.split(",") if d]
            self.timings = parse_server_timing(response.headers.get("server-timing", ""))
            raw = io.BufferedReader(_ChunkReader(response.iter_bytes()), buffer_size=1 << 20)
            self._reader = pa.ipc.open_stream(raw)
        return self._reader

    @property
    def schema(self) -> pa.Schema:
        return self._open().schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        reader = self._open()
        try:
            yield from reader
        finally:
            self.close()

    def to_arrow(self) -> pa.Table:
        reader = self._open()
        try:
            return reader.read_all()
        finally:
            self.close()

    def to_pandas(self) -> Any:
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        try:
            import polars
        except ImportError:
            raise ImportError(
                "to_polars() needs polars: pip install 'gba-datashare[client]' or polars"
            ) from None
        return polars.from_arrow(self.to_arrow())

    def close(self) -> None:
        if self._context is not None:
            context, self._context = self._context, None
            context.__exit__(None, None, None)

    def __enter__(self) -> QueryResult:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Client:
    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 120.0,
        scope: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._auth = (client_id, client_secret)
        self._scope = scope
        self._token: str | None = None
        self._expires = 0.0
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def token(self) -> str:
        if self._token is None or time.time() > self._expires - 30:
            data = {"grant_type": "client_credentials"}
            if self._scope:
                data["scope"] = self._scope
            response = self._http.post("/oauth/token", data=data, auth=self._auth)
            if response.status_code != 200:
                body = response.json()
                raise GatewayError(
                    response.status_code,
                    body.get("error", "oauth_error"),
                    body.get("error_description", ""),
                )
            body = response.json()
            self._token, self._expires = (
                body["access_token"],
                time.time() + float(body["expires_in"]),
            )
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        response = self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            _raise(response)
        return response

    def me(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/me").json())

    def datasets(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/datasets").json())

    def create_dataset(self, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/datasets", json=spec).json())

    def upload(
        self,
        dataset_id: str,
        path: Path,
        *,
        encoding: str = "utf-8",
        fmt: str | None = None,
        mode: str = "replace",
        sheet: str | None = None,
        header_row: int | None = None,
    ) -> dict[str, Any]:
        """Send a file; the answer is the queued job (or a ``duplicate`` of a version).

        ``mode="append"`` adds the rows to the current version instead of replacing it."""

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

        params: dict[str, Any] = {"encoding": encoding, "filename": path.name, "mode": mode}
        optional = {"format": fmt, "sheet": sheet, "header_row": header_row}
        params.update({k: v for k, v in optional.items() if v is not None})
        response = self.request(
            "POST",
            f"/v1/datasets/{dataset_id}/uploads",
            params=params,
            content=chunks(),
            headers={"Content-Type": "application/octet-stream"},
        )
        return dict(response.json())

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/jobs/{job_id}").json())

    def retry_job(self, job_id: str) -> dict[str, Any]:
        """Queue a failed job again (after fixing what made it fail)."""
        return dict(self.request("POST", f"/v1/jobs/{job_id}/retry").json())

    def quarantine(self, job_id: str, *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """One page of rejected rows: ``{"rows", "total", "offset", "limit"}``."""
        params = {"offset": offset, "limit": limit}
        return dict(self.request("GET", f"/v1/jobs/{job_id}/quarantine", params=params).json())

    def download_quarantine(self, job_id: str, target: Path) -> Path:
        """The whole quarantine report as a Parquet file."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        url = f"/v1/jobs/{job_id}/quarantine"
        with self._http.stream("GET", url, params={"format": "parquet"}, headers=headers) as r:
            if r.status_code >= 400:
                r.read()
                _raise(r)
            with target.open("wb") as out:
                for chunk in r.iter_bytes():
                    out.write(chunk)
        return target

    def wait_job(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,
        poll: float = 0.5,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the job until it ends (or ``timeout``); ``on_update`` sees every state."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if on_update is not None:
                on_update(job)
            if job["status"] in FINISHED or time.monotonic() > deadline:
                return job
            time.sleep(poll)

    def query(self, sql: str) -> QueryResult:
        """A governed query; nothing is sent until the result is read."""
        return QueryResult(self, sql)

    def query_pandas(self, sql: str) -> Any:
        return self.query(sql).to_pandas()

    def export(self, sql: str, *, wait: bool = True, timeout: float = 3600.0) -> dict[str, Any]:
        """Export the governed result as Parquet in your organisation's region.

        With ``wait`` (default) polls until the export finished and returns it with its
        presigned ``files[i]["url"]`` (short-lived: fetch them promptly, or call
        ``get_export`` again for fresh ones); raises ``GatewayError`` if it failed or a
        grant behind it was revoked. ``wait=False`` returns the running export at once.
        """
        export = dict(self.request("POST", "/v1/exports", json={"sql": sql}).json())
        deadline = time.monotonic() + timeout
        delay = 0.1
        while wait and export["status"] == "running" and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
            export = self.get_export(export["id"])
        if wait and export["status"] in ("failed", "revoked"):
            error = export.get("error") or {}
            raise GatewayError(
                409, error.get("code", f"export_{export['status']}"), error.get("message", "")
            )
        return export

    def get_export(self, export_id: str) -> dict[str, Any]:
        """An export's status, lineage and (once succeeded) fresh presigned URLs."""
        return dict(self.request("GET", f"/v1/exports/{export_id}").json())

    def explain(self, sql: str) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/query/explain", json={"sql": sql}).json())


DatashareClient = Client  # the earlier name


def parse_server_timing(header: str) -> dict[str, float]:
    """``{"govern": 12.5, ...}`` from ``govern;dur=12.5;desc="...", ...`` (W3C Server-Timing);
    entries without a duration are left out."""
    timings: dict[str, float] = {}
    for entry in header.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if name and key.strip().lower() == "dur":
                with contextlib.suppress(ValueError):
                    timings[name] = float(value)
    return timings


def _raise(response: httpx.Response) -> None:
    try:
        error = response.json()["error"]
        raise GatewayError(
            response.status_code, error["code"], error["message"], error.get("detail")
        )
    except (ValueError, KeyError, TypeError):
        raise GatewayError(response.status_code, "http_error", response.text[:500]) from None
