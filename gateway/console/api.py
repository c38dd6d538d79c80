"""The console's way to the platform: the gateway's own JSON API, called in-process with
the signed-in user's access token.

Every rule (who may read, upload, request, approve; what is masked; what is audited)
stays in the API and the services behind it; the console only renders the answers. The
calls go through the same ASGI application (and its middleware) as any HTTP client's,
without a network hop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final
from urllib.parse import urlencode

import httpx
from starlette.types import ASGIApp

from gateway.console.asgi_stream import StreamedResponse, call_streaming

INTERNAL_BASE: Final = "http://gateway.internal"


class ApiError(Exception):
    """The API answered with its error envelope (or something unexpected)."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail if detail is not None else {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return cls(
                response.status_code,
                str(error.get("code", "error")),
                str(error.get("message", "")),
                error.get("detail"),
            )
        if isinstance(body, dict) and "error" in body:  # OAuth endpoints (RFC 6749 §5.2)
            return cls(
                response.status_code,
                str(body["error"]),
                str(body.get("error_description", body["error"])),
            )
        return cls(response.status_code, "unexpected_response", response.text[:300])

    @property
    def missing_endpoint(self) -> bool:
        """The route itself does not exist (a capability not installed on this gateway)."""
        return self.status in (404, 405) and self.message in ("Not Found", "Method Not Allowed")


class Api:
    """JSON API calls on behalf of one user (``token``) or anonymously (``None``)."""

    def __init__(self, app: ASGIApp, token: str | None, *, request_id: str | None = None) -> None:
        self._app = app
        self._token = token
        self._headers = {"x-request-id": request_id} if request_id else {}

    def _client(self, timeout: float = 60.0) -> httpx.AsyncClient:
        headers = dict(self._headers)
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self._app),
            base_url=INTERNAL_BASE,
            headers=headers,
            timeout=timeout,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: AsyncIterator[bytes] | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The raw response; errors raise :class:`ApiError`."""
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        async with self._client() as client:
            response = await client.request(
                method,
                path,
                params=clean,
                json=json,
                data=data,
                content=content,
                headers=dict(headers or {}),
            )
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.request("GET", path, params=params)).json()

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        response = await self.request("POST", path, json=body, params=params)
        return response.json() if response.content else None

    async def put(self, path: str, body: Any = None) -> Any:
        return (await self.request("PUT", path, json=body)).json()

    async def delete(self, path: str) -> Any:
        response = await self.request("DELETE", path)
        return response.json() if response.content else None

    async def stream(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> StreamedResponse:
        """The response with its body read as the app produces it (downloads, previews)."""
        payload = b"" if json_body is None else json.dumps(json_body).encode()
        headers = [(k.encode(), v.encode()) for k, v in self._headers.items()]
        if self._token:
            headers.append((b"authorization", f"Bearer {self._token}".encode()))
        if json_body is not None:
            headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(payload)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(dict(params or {})).encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 0),
            "server": ("gateway.internal", 80),
        }
        streamed = await call_streaming(self._app, scope, payload)
        if streamed.status >= 400:
            content = b"".join([chunk async for chunk in streamed.body])
            raise ApiError.from_response(
                httpx.Response(streamed.status, content=content, headers=streamed.headers)
            )
        return streamed

    async def optional(self, path: str, default: Any = None, **params: Any) -> Any:
        """GET an endpoint that a gateway may not have yet (a capability still landing):
        its absence gives ``default`` instead of an error page."""
        try:
            return await self.get(path, **params)
        except ApiError as error:
            if error.missing_endpoint:
                return default
            raise


def explain_error(error: ApiError) -> str:
    """The API's message plus the fields its request validation named."""
    problems = error.detail.get("errors") if isinstance(error.detail, dict) else None
    if not problems:
        return error.message
    listed = "; ".join(f"{p.get('location', '')}: {p.get('message', '')}" for p in problems[:8])
    return f"{error.message} — {listed}"
