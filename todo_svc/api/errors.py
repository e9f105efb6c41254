"""The one place that turns exceptions into statuses and the contract's error body."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi import ResponseSpec
from msgspec import UNSET

from todo_svc.api.compat import body_left_out, validation_errors
from todo_svc.api.schemas import ErrorBody, FieldError
from todo_svc.api.tokens import ExpiredToken
from todo_svc.core.request_id import request_id
from todo_svc.services.errors import (
    AccountGone,
    ChangesExpired,
    DomainError,
    EmailTaken,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidCredentials,
    RefreshTokenInvalid,
    TaskChanged,
    TaskNotFound,
    TasksNotFound,
)

EXPIRED_DETAIL = "The access token expired; get a new one with the refresh token (POST /api/v1/auth/refresh)"
EXPIRED_CHALLENGE = 'Bearer error="invalid_token", error_description="The access token expired"'
DOMAIN_STATUS: dict[type[DomainError], int] = {
    TaskNotFound: 404,
    EmailTaken: 409,
    InvalidCredentials: 401,
    AccountGone: 401,
    RefreshTokenInvalid: 401,
    TasksNotFound: 404,
    TaskChanged: 412,
    IdempotencyKeyInFlight: 409,
    IdempotencyKeyReused: 422,
    ChangesExpired: 410,
}
PLAIN_DETAIL = {
    400: "The request is invalid",
    401: "Authentication is required",
    403: "You may not access this resource",
    404: "The requested resource was not found",
    405: "This method is not allowed on this resource",
    409: "The request conflicts with the current state",
    410: "The since token is older than the deletions kept; read the task list again",
    412: "The task changed since the tag given in If-Match",
    413: "The request body is too large",
    415: "The request body must be JSON (Content-Type: application/json)",
    422: "The Idempotency-Key was used with a different request",
    429: "Too many requests; wait the seconds given in Retry-After (RateLimit-* tell the limit)",
    500: "An unexpected error occurred; quote the request id when reporting it",
}


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    checks: dict[str, str] | None = None,
) -> Response[ErrorBody]:
    body = ErrorBody(
        error=HTTPStatus(status).phrase,
        detail=detail,
        status_code=status,
        timestamp=datetime.now(UTC),
        request_id=request_id(request.scope),
        errors=errors if errors is not None else UNSET,
        checks=checks if checks is not None else UNSET,
    )
    if status == 401:
        headers = {"WWW-Authenticate": _bearer_challenge(request), **(headers or {})}
    return Response(body, status_code=status, headers=headers)


def _bearer_challenge(request: Request[Any, Any, Any]) -> str:
    return 'Bearer error="invalid_token"' if "authorization" in request.headers else "Bearer"


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    if isinstance(exc, DomainError):
        return error_response(request, DOMAIN_STATUS.get(type(exc), 400), str(exc))
    if isinstance(exc, ValidationException) and body_left_out(exc.extra):
        errors = [FieldError(field="body", message="The request body is empty; send a JSON object")]
        return error_response(request, 400, "Request body is not valid JSON", errors=errors)
    if isinstance(exc, ValidationException):
        errors = [FieldError(field=field, message=message) for field, message in validation_errors(exc.extra)]
        # Ours say "Request body …"; Litestar's say "Validation failed for GET <the URL>".
        detail = exc.detail if exc.detail.startswith("Request body") else "Request parameters are invalid"
        return error_response(request, 400, detail, errors=errors)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        detail = exc.detail
        if (
            status >= 500
            or not detail
            or detail == HTTPStatus(status).phrase
            or isinstance(exc, NotAuthorizedException)
        ):
            detail = PLAIN_DETAIL.get(status, HTTPStatus(status).phrase)
        headers = dict(exc.headers or {})
        if isinstance(exc, ExpiredToken):  # RFC 6750: a client can tell "refresh" from "log in again"
            detail = EXPIRED_DETAIL
            headers["WWW-Authenticate"] = EXPIRED_CHALLENGE
        elif isinstance(exc, NotAuthorizedException) and "authorization" in request.headers:
            detail = "The access token is missing, malformed or invalid"
        return error_response(request, status, detail, headers=headers)
    # The one record of it, with its trace; the body says only "quote the request id".
    structlog.get_logger().error(
        "unhandled error",
        logger="todo_svc.errors",
        method=request.method,
        route=request.scope.get("path_template"),
        request_id=request_id(request.scope),
        exc_info=exc,
    )
    return error_response(request, 500, PLAIN_DETAIL[500])


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses an operation can answer, all with the contract's body
    (500 on every one: clients should parse it like any other error, not as "unexpected")."""
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=PLAIN_DETAIL.get(status, HTTPStatus(status).phrase),
            generate_examples=False,
        )
        for status in (*statuses, 500)
    }
