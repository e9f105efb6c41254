"""Register, login and the caller's account; the JWT auth that protects everything else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

from litestar import Controller, Request, delete, get, post
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AuthenticationResult
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import JSONBody
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Struct

from todo_svc.api.body import OptionalBodyOperation, StrictBody
from todo_svc.api.errors import error_responses
from todo_svc.api.rate_limits import AUTH_LIMITED, LOGIN_LIMITED, RATE_LIMIT_HEADERS, TASKS_LIMITED
from todo_svc.api.schemas import Credentials, RefreshRequest, TokenPair, UserOut
from todo_svc.api.tokens import AccessToken
from todo_svc.core.scope_headers import first_header
from todo_svc.services.auth import AuthService
from todo_svc.services.sessions import SessionService
from todo_svc.settings import Settings

BEARER_SCHEME = "BearerToken"
PUBLIC: dict[str, Any] = {"exclude_from_auth": True}
NO_SECURITY: list[dict[str, list[str]]] = []  # no requirement: public
BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]


class Principal(Struct, frozen=True):
    """Who is calling, read from the token's claims alone (no database query per request)."""

    id: int
    email: str


class BearerJWTMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, but only for `Authorization: Bearer <token>`.

    Litestar takes whatever follows the first space, so `Basic <jwt>` would pass.
    """

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, token = _authorization(connection.scope).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("Missing bearer token")
        return await self.authenticate_token(encoded_token=token.strip(), connection=connection)


def _authorization(scope: Any) -> str:
    """The Authorization header (from the scope: building the header map costs more)."""
    value = first_header(scope, b"authorization")
    return value.decode("latin-1") if value is not None else ""


async def principal_from_token(token: AccessToken, _: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    return Principal(id=int(token.sub), email=token.email)


class BearerJWTAuth(JWTAuth[Principal, AccessToken]):
    """Litestar's JWT auth, documented as OpenAPI 3.1 and SDK generators read it.

    Litestar adds the bearer requirement to the whole document and gives the http scheme a
    `name` (which OpenAPI allows only on apiKey schemes); generators read security per
    operation, so each protected operation names the scheme itself (`BEARER`) and public ones
    name none.
    """

    @property
    def openapi_components(self) -> Components:
        scheme = SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT", description=self.description
        )
        return Components(security_schemes={self.openapi_security_scheme_name: scheme})

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config = super().on_app_init(app_config)
        if app_config.openapi_config is not None:
            app_config.openapi_config.security = None
        return app_config


def build_jwt_auth(settings: Settings) -> BearerJWTAuth:
    token_cls = type("AccessToken", (AccessToken,), {"leeway_seconds": settings.jwt_leeway_seconds})
    return BearerJWTAuth(
        retrieve_user_handler=principal_from_token,
        token_secret=settings.jwt_secret_key,
        algorithm="HS256",
        token_cls=token_cls,
        default_token_expiration=timedelta(minutes=settings.access_token_expire_minutes),
        authentication_middleware_class=BearerJWTMiddleware,
        accepted_issuers=[settings.jwt_issuer] if settings.jwt_issuer else None,
        accepted_audiences=[settings.jwt_audience] if settings.jwt_audience else None,
        openapi_security_scheme_name=BEARER_SCHEME,
        description="An access token from register or login.",
    )


class TokenIssuer:
    """Signs access tokens with the app's JWT settings (the services' `TokenSigner`)."""

    def __init__(self, jwt_auth: BearerJWTAuth) -> None:
        self._jwt_auth = jwt_auth
        self.lifetime_seconds = int(jwt_auth.default_token_expiration.total_seconds())

    def sign(self, user_id: int, email: str, session_id: str) -> str:
        return self._jwt_auth.create_token(
            identifier=str(user_id),
            token_expiration=self._jwt_auth.default_token_expiration,
            token_issuer=next(iter(self._jwt_auth.accepted_issuers or ()), None),
            token_audience=next(iter(self._jwt_auth.accepted_audiences or ()), None),
            token_unique_jwt_id=uuid4().hex,
            email=email,
            sid=session_id,
        )


async def registration_open(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A closed deployment (REGISTRATION_ENABLED=false) refuses sign-ups before reading the body."""
    if not connection.app.state.settings.registration_enabled:
        raise PermissionDeniedException("Registration is closed on this deployment; ask its operators")


Accounts = NamedDependency[AuthService]
Sessions = NamedDependency[SessionService]


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar reads these class attributes
    opt = {**PUBLIC, **AUTH_LIMITED}  # noqa: RUF012
    response_headers = RATE_LIMIT_HEADERS

    @post(
        "/register",
        status_code=HTTP_201_CREATED,
        dto=StrictBody[Credentials],
        return_dto=None,
        security=NO_SECURITY,
        guards=[registration_open],
        responses=error_responses(400, 403, 409, 413, 415, 429),
    )
    async def register(self, data: JSONBody[Credentials], auth_service: Accounts) -> TokenPair:
        """Create an account and return a token pair for it."""
        return TokenPair.of(await auth_service.register(data.email, data.password))

    @post(
        "/login",
        status_code=HTTP_200_OK,
        dto=StrictBody[Credentials],
        return_dto=None,
        security=NO_SECURITY,
        opt=LOGIN_LIMITED,
        responses=error_responses(400, 401, 413, 415, 429),
    )
    async def login(self, data: JSONBody[Credentials], auth_service: Accounts) -> TokenPair:
        """Exchange email and password for a token pair."""
        return TokenPair.of(await auth_service.login(data.email, data.password))


class SessionController(Controller):
    """Refresh and logout: canonical only (the original design had neither)."""

    path = "/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar reads these class attributes
    opt = {**PUBLIC, **AUTH_LIMITED}  # noqa: RUF012
    response_headers = RATE_LIMIT_HEADERS

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        dto=StrictBody[RefreshRequest],
        return_dto=None,
        security=NO_SECURITY,
        responses=error_responses(400, 401, 413, 415, 429),
    )
    async def refresh(self, data: JSONBody[RefreshRequest], auth_service: Accounts) -> TokenPair:
        """Trade a refresh token for a new pair; a token used twice revokes its whole family."""
        return TokenPair.of(await auth_service.refresh(data.refresh_token))

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        dto=StrictBody[RefreshRequest],
        operation_class=OptionalBodyOperation,
        return_dto=None,
        opt={"exclude_from_auth": False},
        security=BEARER,
        responses=error_responses(400, 401, 413, 415, 429),
    )
    async def logout(
        self,
        request: Request[Principal, AccessToken, Any],
        sessions: Sessions,
        data: JSONBody[RefreshRequest | None] = None,
    ) -> None:
        """End the session: the one the access token was issued for, or the refresh token's (the
        caller's own only); its refresh tokens stop working."""
        if data is not None:
            await sessions.end(request.user.id, data.refresh_token)
        elif request.auth.sid is not None:
            await sessions.end_session(request.user.id, request.auth.sid)
        else:  # a token issued before tokens named their session
            raise ValidationException(
                "Request body is invalid",
                extra=[{"field": "refresh_token", "message": "this access token names no session: send it"}],
            )


class AccountController(Controller):
    path = "/users/me"
    tags = ["users"]  # noqa: RUF012
    security = BEARER
    opt = TASKS_LIMITED
    response_headers = RATE_LIMIT_HEADERS

    @get(responses=error_responses(401, 429))
    async def get_current_user(
        self,
        request: Request[Principal, AccessToken, Any],
        auth_service: Accounts,
    ) -> UserOut:
        """The caller's account."""
        return UserOut.of(await auth_service.get_account(request.user.id))

    @delete(status_code=HTTP_204_NO_CONTENT, responses=error_responses(401, 429))
    async def delete_current_user(
        self,
        request: Request[Principal, AccessToken, Any],
        auth_service: Accounts,
    ) -> None:
        """Delete the caller's account with all its tasks."""
        await auth_service.delete_account(request.user.id)
