"""The authorization server: authlib's framework-agnostic core wired to Starlette.

authlib is synchronous while Starlette reads bodies asynchronously, so the
token route first awaits ``read_token_request`` (content type, size cap, no
query string, no repeated parameters, one client-authentication method) and
hands the resulting ``TokenRequest`` to ``AuthorizationServer.create_token_response``
in a worker thread (argon2 and the catalog queries block).

What authlib does not do for us, and this module does:
- client secrets are argon2id hashes, verified by our own ``client_secret_basic``/
  ``client_secret_post`` functions, which also spend the hash time for unknown
  clients (authlib answers "client does not exist" before touching a secret);
- requested scopes must all be in ``scopes_supported`` (authlib skips the check
  when that list is empty) and are intersected with the client's registration;
- the access token carries ``kid`` (a one-key ``KeySet`` makes joserfc add it),
  ``nbf`` and the organisation claims, with ``aud`` = the resource audience
  (authlib's default audience is the client id).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    InvalidScopeError,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import Key, KeySet
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from typing_extensions import override  # typing.override needs 3.12; ruff/mypy honour both

from catalog.clients import get_client, split_scope, verify_client_secret
from catalog.errors import InvalidInput
from catalog.models import OAuthClient, Organisation
from catalog.regions import Region

log = logging.getLogger(__name__)

GRANT_TYPES: Final = ("client_credentials",)
TOKEN_ENDPOINT_AUTH_METHODS: Final = ("client_secret_basic", "client_secret_post")
MAX_TOKEN_REQUEST_BYTES: Final = 8 * 1024
MAX_TOKEN_REQUEST_FIELDS: Final = 16
NO_STORE_HEADERS: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


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


class _FormRequest(OAuth2Request):  # type: ignore[misc]  # authlib ships no type information
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


async def read_token_request(request: Request) -> TokenRequest:
    """Read and pre-check a token request; raises authlib ``OAuth2Error`` (invalid_request)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise InvalidRequestError("Send the token request as application/x-www-form-urlencoded.")
    if request.url.query:
        raise InvalidRequestError("The token endpoint takes no URL parameters; use the body.")
    form = _parse_form(await _read_capped(request))
    _check_parameters(form, request.headers)
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


def _check_parameters(form: tuple[tuple[str, str], ...], headers: Mapping[str, str]) -> None:
    names = [name for name, _ in form]
    if len(names) != len(set(names)):
        raise InvalidRequestError("Request parameters must not be repeated.")
    data = dict(form)
    if not data.get("grant_type"):
        raise InvalidRequestError("Missing grant_type parameter.")
    basic_id, _ = extract_basic_authorization(headers)
    if basic_id is not None and "client_secret" in data:
        raise InvalidRequestError("Use exactly one client authentication method.")
    if basic_id is not None and data.get("client_id", basic_id) != basic_id:
        raise InvalidRequestError("client_id does not match the Authorization header.")


# --- clients -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RegisteredClient(ClientMixin):  # type: ignore[misc]  # authlib ships no type information
    """A confidential machine client as authlib sees it (a snapshot of catalog rows)."""

    record: OAuthClient = field(repr=False)
    org_slug: str
    region: Region
    scopes: tuple[str, ...]  # registered scopes that the server still supports

    @override
    def get_client_id(self) -> str:
        return self.record.client_id

    @override
    def get_default_redirect_uri(self) -> None:
        return None

    @override
    def get_allowed_scope(self, scope: str | None) -> str | None:
        """Omitted scope → every registered scope; otherwise the intersection (None if empty)."""
        if not scope:
            return " ".join(self.scopes)
        granted = [token for token in scope.split() if token in self.scopes]
        return " ".join(dict.fromkeys(granted)) if granted else None

    @override
    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    @override
    def check_client_secret(self, client_secret: str) -> bool:
        return verify_client_secret(self.record, client_secret)

    @override
    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in TOKEN_ENDPOINT_AUTH_METHODS

    @override
    def check_response_type(self, response_type: str) -> bool:
        return False

    @override
    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES

    def identity_claims(self) -> dict[str, Any]:
        return {
            "org": self.record.org_id,
            "org_slug": self.org_slug,
            "region": self.region.value,
            "jurisdiction": self.region.jurisdiction,
            "roles": [str(role) for role in self.record.roles],
        }


QueryClient = Callable[[str], RegisteredClient | None]


def _authenticate_basic(query_client: QueryClient, request: OAuth2Request) -> Any:
    client_id, secret = extract_basic_authorization(request.headers)
    return _authenticate(query_client, client_id, secret)


def _authenticate_post(query_client: QueryClient, request: OAuth2Request) -> Any:
    data = request.payload.data
    return _authenticate(query_client, data.get("client_id"), data.get("client_secret"))


def _authenticate(
    query_client: QueryClient, client_id: str | None, secret: str | None
) -> RegisteredClient | None:
    if not client_id or not secret:
        return None
    client = query_client(client_id)
    if client is None:
        verify_client_secret(None, secret)  # same cost as a real check: no existence oracle
        return None
    return client if client.check_client_secret(secret) else None


# --- tokens ------------------------------------------------------------------------------


class AccessTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]  # untyped authlib
    """RFC 9068 access tokens signed with the current key from ``signing_key()``."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithm: str,
        ttl_seconds: int,
        signing_key: Callable[[], Key],
    ) -> None:
        super().__init__(issuer, alg=algorithm, expires_generator=ttl_seconds)
        self._audience = audience
        self._signing_key = signing_key

    @override
    def get_jwks(self) -> KeySet:
        return KeySet([self._signing_key()])  # one-key set: joserfc writes its kid in the header

    @override
    def get_audiences(self, client: RegisteredClient, user: object, scope: str) -> str:
        return self._audience

    @override
    def get_jti(self, client: RegisteredClient, grant_type: str, user: object, scope: str) -> str:
        return secrets.token_urlsafe(16)

    @override
    def get_extra_claims(
        self, client: RegisteredClient, grant_type: str, user: object, scope: str
    ) -> dict[str, Any]:
        return {"nbf": int(time.time()), **client.identity_claims()}


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]  # untyped authlib
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(TOKEN_ENDPOINT_AUTH_METHODS)


# --- server ------------------------------------------------------------------------------


class GatewayAuthorizationServer(AuthorizationServer):  # type: ignore[misc]  # untyped authlib
    """authlib ``AuthorizationServer`` for Starlette, backed by the catalog."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        token_endpoint: str,
        scopes_supported: list[str],
        token_generator: AccessTokenGenerator,
    ) -> None:
        super().__init__(scopes_supported=list(scopes_supported))
        self._sessions = sessions
        self._token_endpoint = token_endpoint
        self.register_client_auth_method("client_secret_basic", _authenticate_basic)
        self.register_client_auth_method("client_secret_post", _authenticate_post)
        self.register_grant(_ClientCredentials)
        self.register_token_generator("client_credentials", token_generator)

    @override
    def query_client(self, client_id: str) -> RegisteredClient | None:
        """An enabled client with its organisation, or None."""
        with self._sessions() as session:
            record = get_client(session, client_id)
            if record is None or record.disabled_at is not None:
                return None
            org = session.get(Organisation, record.org_id)
            if org is None:
                return None
            supported = set(self.scopes_supported)
            scopes = tuple(token for token in record.scope.split() if token in supported)
            return RegisteredClient(record, org.slug, Region(org.region), scopes)

    @override
    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Self-contained JWTs need no storage; revocation will record jti here."""

    @override
    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        log.debug("oauth signal %s", name)

    @override
    def create_oauth2_request(self, request: TokenRequest | OAuth2Request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return _FormRequest(self._token_endpoint, request)

    @override
    def create_json_request(self, request: JsonBodyRequest) -> JsonRequest:
        json_request = JsonRequest(request.method, self._token_endpoint, request.headers)
        json_request.payload = _JsonPayload(request.data)
        return json_request

    @override
    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        merged = {**dict(headers), **NO_STORE_HEADERS}
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=merged)
        return Response(body, status_code=status, headers=merged)

    @override
    def validate_requested_scope(self, scope: str | None) -> None:
        """Every requested scope must be one this server knows, even if the list is empty."""
        if not scope:
            return
        try:
            tokens = split_scope(scope)
        except InvalidInput as error:
            raise InvalidScopeError() from error
        if not set(tokens) <= set(self.scopes_supported):
            raise InvalidScopeError()

    @override
    def get_token_grant(self, request: OAuth2Request) -> Any:
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError as error:
            error.description = "Only grant_type=client_credentials is supported."
            raise

    def error_response(self, error: OAuth2Error) -> Response:
        """An RFC 6749 error response for failures found before authlib runs."""
        response: Response = self.handle_error_response(None, error)
        return response
