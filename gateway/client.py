"""A small Python client for the gateway: tokens, datasets, uploads, queries → Arrow / pandas.

client = DatashareClient("http://127.0.0.1:8000", client_id, client_secret)
table = client.query("SELECT * FROM dg_factory.energy_meter LIMIT 10")   # pyarrow.Table
frame = client.query_pandas("SELECT ...")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

FINISHED = ("succeeded", "failed", "duplicate")


class GatewayError(Exception):
    """An error answer from the gateway: ``status``, ``code``, ``message``, ``detail``."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.detail = status, code, message, detail


class DatashareClient:
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

    def __enter__(self) -> DatashareClient:
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

    def query(self, sql: str) -> pa.Table:
        response = self.request("POST", "/v1/query", json={"sql": sql, "format": "arrow"})
        return pa.ipc.open_stream(response.content).read_all()

    def query_pandas(self, sql: str) -> Any:
        return self.query(sql).to_pandas()

    def explain(self, sql: str) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/query/explain", json={"sql": sql}).json())


def _raise(response: httpx.Response) -> None:
    try:
        error = response.json()["error"]
        raise GatewayError(
            response.status_code, error["code"], error["message"], error.get("detail")
        )
    except (ValueError, KeyError, TypeError):
        raise GatewayError(response.status_code, "http_error", response.text[:500]) from None
