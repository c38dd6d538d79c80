"""Reading OAuth requests: form bodies for the token, revocation and introspection
endpoints, query strings for the authorization endpoint, as authlib ``OAuth2Request``s.

authlib is synchronous while Starlette reads bodies asynchronously, so routes first
await ``read_token_request`` (content type, size cap, no query string, no repeated
parameters, one client-authentication method) and hand the resulting ``TokenRequest``
to the server in a worker thread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from starlette.requests import Request
from typing_extensions import override

MAX_TOKEN_REQUEST_BYTES: Final = 8 * 1024
MAX_TOKEN_REQUEST_FIELDS: Final = 16

# --- requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    """A token-endpoint request whose body has already been read and checked."""

    method: str
    headers: Mapping[str, str]
    form: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class JsonBodyRequest:
    """A JSON request read by an async route (for later endpoints such as registration)."""

    method: str
    headers: Mapping[str, str]
    data: dict[str, Any]


class _FormPayload(OAuth2Payload):  # type: ignore[misc]  # authlib ships no type information
    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @override
    @property
    def data(self) -> dict[str, str]:
        return self._data

    @override
    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class FormRequest(OAuth2Request):  # type: ignore[misc]  # authlib ships no type information
    def __init__(self, uri: str, request: TokenRequest) -> None:
        super().__init__(request.method, uri, headers=request.headers)
        self.payload = _FormPayload(request.form)

    @override
    @property
    def args(self) -> dict[str, str]:
        return {}  # query parameters are refused before authlib sees the request

    @override
    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data


class _JsonPayload:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


async def read_token_request(request: Request, *, grant: bool = True) -> TokenRequest:
    """Read and pre-check a token (``grant``), revocation or introspection request; raises
    authlib ``OAuth2Error`` (invalid_request)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise InvalidRequestError("Send the token request as application/x-www-form-urlencoded.")
    if request.url.query:
        raise InvalidRequestError("The token endpoint takes no URL parameters; use the body.")
    form = _parse_form(await _read_capped(request))
    _check_parameters(form, request.headers, grant=grant)
    return TokenRequest(request.method, request.headers, form)


async def _read_capped(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_TOKEN_REQUEST_BYTES:
            raise InvalidRequestError("The token request body is too large.")
    return bytes(body)


def _parse_form(body: bytes) -> tuple[tuple[str, str], ...]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_TOKEN_REQUEST_FIELDS)
    except ValueError as error:  # UnicodeDecodeError is a ValueError
        raise InvalidRequestError("The token request body is not valid form data.") from error
    return tuple(pairs)


def _check_parameters(
    form: tuple[tuple[str, str], ...], headers: Mapping[str, str], *, grant: bool
) -> None:
    names = [name for name, _ in form]
    if len(names) != len(set(names)):
        raise InvalidRequestError("Request parameters must not be repeated.")
    data = dict(form)
    if grant and not data.get("grant_type"):
        raise InvalidRequestError("Missing grant_type parameter.")
    basic_id, _ = extract_basic_authorization(headers)
    methods = (basic_id is not None) + ("client_secret" in data) + ("client_assertion" in data)
    if methods > 1:
        raise InvalidRequestError("Use exactly one client authentication method.")
    if basic_id is not None and data.get("client_id", basic_id) != basic_id:
        raise InvalidRequestError("client_id does not match the Authorization header.")


class QueryRequest(OAuth2Request):  # type: ignore[misc]  # authlib ships no type information
    """An authorization request (GET /oauth/authorize): its parameters are the query string."""

    def __init__(self, uri: str, headers: Mapping[str, str], pairs: tuple[tuple[str, str], ...]):
        super().__init__("GET", uri, headers=headers)
        self.payload = _FormPayload(pairs)

    @override
    @property
    def args(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data

    @override
    @property
    def form(self) -> dict[str, str]:
        return {}


def parse_authorization_query(query: str) -> tuple[tuple[str, str], ...]:
    """The authorization request's parameters; repeated ones are refused by authlib later."""
    if len(query) > MAX_TOKEN_REQUEST_BYTES:
        raise InvalidRequestError("The authorization request is too large.")
    return _parse_form(query.encode("utf-8", errors="replace"))
