"""The one place that maps exceptions to HTTP, and the one error envelope.

Every error response is ``{"error": {"code", "message", "detail"}}`` with the
right status — including 422 request validation, 401, 403 and 404 — and never a
stack trace. (OAuth endpoints answer in RFC 6749's shape, which OAuth clients
expect.)
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.errors import (
    CatalogError,
    Conflict,
    InvalidInput,
    NotFound,
    PlatformError,
    QueryError,
    QueryRateLimited,
    QueryResourceExceeded,
    QueryTimeout,
    StorageUnavailable,
)
from gateway.oauth.errors import InsufficientRole, InsufficientScope, InvalidToken
from ingest.errors import FileTooLarge, IngestError
from policies.errors import AccessDenied, PolicyError, QueryRefused, UnknownDataset

log = logging.getLogger("datashare.errors")


class AuthenticationRequired(PlatformError):
    code = "authentication_required"


class Forbidden(PlatformError):
    code = "forbidden"


# Most specific first: the first matching class decides the status.
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidToken, 401),
    (AuthenticationRequired, 401),
    (InsufficientScope, 403),
    (InsufficientRole, 403),
    (AccessDenied, 403),
    (Forbidden, 403),
    (UnknownDataset, 404),
    (NotFound, 404),
    (Conflict, 409),
    (FileTooLarge, 413),
    (InvalidInput, 422),
    (QueryRefused, 400),
    (PolicyError, 403),
    (IngestError, 422),
    (QueryRateLimited, 429),
    (QueryTimeout, 408),
    (QueryResourceExceeded, 422),
    (QueryError, 422),
    (StorageUnavailable, 503),
    (CatalogError, 500),
    (PlatformError, 500),
)


def status_for(exc: BaseException) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def envelope(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "detail": detail if detail is not None else {}}
    }


def error_response(
    status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(envelope(code, message, detail), status_code=status, headers=headers)


def _platform_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PlatformError)
    status = status_for(exc)
    level = logging.WARNING if status < 500 else logging.ERROR
    log.log(
        level,
        "request failed",
        extra={
            "code": exc.code,
            "status": status,
            "path": request.url.path,
            **{f"err_{k}": v for k, v in exc.attrs().items()},
        },
    )
    headers = None
    if isinstance(exc, InsufficientScope):
        headers = {"WWW-Authenticate": exc.www_authenticate}
    if status == 401:
        challenge = exc.www_authenticate if isinstance(exc, InvalidToken) else "Bearer"
        headers = {"WWW-Authenticate": challenge}
    if status == 429:
        headers = {"Retry-After": str(exc.attrs().get("retry_after_s", 1))}
    return error_response(status, exc.code, exc.message, exc.attrs(), headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "location": ".".join(str(p) for p in e.get("loc", ())),
            "message": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in exc.errors()
    ]
    return error_response(
        422, "invalid_request", "the request does not match the API schema", {"errors": problems}
    )


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "authentication_required"}
    return error_response(
        exc.status_code,
        codes.get(exc.status_code, "http_error"),
        str(exc.detail),
        headers=dict(exc.headers or {}),
    )


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path}, exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "the gateway hit an unexpected error; it has been logged",
        {"request_id": getattr(request.state, "request_id", None)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PlatformError, _platform_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
