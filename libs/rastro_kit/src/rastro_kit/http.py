"""HTTP plumbing shared by every service: problem+json errors (RFC 9457), auth dependencies,
request metrics, and a body-size limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

from asyncpg.exceptions import DataError as PostgresDataError
from fastapi import Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from rastro_kit import audit
from rastro_kit.auth import Principal
from rastro_kit.db import DB_UNAVAILABLE
from rastro_kit.logs import get_logger
from rastro_kit.metrics import HTTP_REQUESTS
from rastro_kit.openapi_problems import document_problems

__all__ = [
    "PROBLEM_JSON",
    "ProblemError",
    "field_errors",
    "install_http_plumbing",
    "problem",
    "require_key",
    "require_scope",
    "tenant_scope",
]

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://rastro.dev/problems/"
log = get_logger(__name__)
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.type_, self.title = status, detail, type_, title
        self.headers, self.extensions = headers or {}, extensions


def problem(
    status: int,
    detail: str | None = None,
    *,
    type_: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (type_ or str(status)),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(exc: RequestValidationError | Any, skip: int = 1) -> list[dict[str, str]]:
    """``[{"field": "events.3.occurred_at", "message": …}]`` from pydantic errors (``skip`` drops 'body')."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())][skip:]
        out.append({"field": ".".join(loc) or "(body)", "message": err.get("msg", "invalid")})
    return out


def install_http_plumbing(
    app: FastAPI, service: str, *, max_body_bytes: int = 1024 * 1024, streaming_paths: tuple[str, ...] = ()
) -> None:
    """Problem+json handlers, request metrics, and the body limit; ``streaming_paths`` (prefixes) read
    their bodies as a stream and set no size limit (e.g. CSV imports)."""
    document_problems(app)

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> Response:
        return problem(
            exc.status, exc.detail, type_=exc.type_, title=exc.title, headers=exc.headers, **exc.extensions
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        return problem(
            422,
            "The request body or parameters are invalid.",
            type_="validation-error",
            errors=field_errors(exc),
        )

    @app.exception_handler(PostgresDataError)
    async def _unstorable(_: Request, exc: Exception) -> Response:
        # Input that passed validation yet cannot be a query argument or a value in Postgres: an integer
        # over 64 bits, NUL in text, a time without a UTC equivalent. The request's fault: 422, not 500.
        log.warning("request_value_refused_by_database", error=repr(exc))
        return problem(
            422,
            "A value is out of range, or holds characters that cannot be stored (such as NUL).",
            type_="validation-error",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, str(exc.detail) if exc.detail else None, headers=headers)

    async def _db_down(_: Request, exc: Exception) -> Response:
        log.warning("database_unavailable", error=repr(exc))
        return problem(
            503,
            "The database is unavailable; nothing was accepted. Try again.",
            type_="unavailable",
            headers={"Retry-After": "5"},
        )

    for unavailable in DB_UNAVAILABLE:
        app.add_exception_handler(cast(type[Exception], unavailable), _db_down)

    @app.middleware("http")
    async def _limits_and_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        limited = not request.url.path.startswith(streaming_paths) if streaming_paths else True
        if limited and length and length.isdigit() and int(length) > max_body_bytes:
            response: Response = problem(
                413, f"The body is larger than {max_body_bytes} bytes.", type_="body-too-large"
            )
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        HTTP_REQUESTS.labels(service, path, str(response.status_code)).inc()
        return response


# Documents the key in the OpenAPI (a security scheme on each route that needs one); the key itself is
# read from the raw header below, so a malformed one is a 401 like a missing one.
_BEARER = HTTPBearer(
    scheme_name="apiKey", description="An API key: `Authorization: Bearer <key>`.", auto_error=False
)


async def _principal(
    request: Request, _documented: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]
) -> Principal:
    runtime = request.app.state.runtime
    principal: Principal | None = await runtime.authenticator.authenticate(
        request.headers.get("authorization")
    )
    if principal is None:
        raise ProblemError(
            401,
            "A valid API key is required: Authorization: Bearer <key>.",
            type_="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    audit.bind(principal, request)  # who and from where, for audit entries written below the route
    return principal


def require_key() -> Any:
    """FastAPI dependency: the caller's principal, any valid key (no scope needed)."""
    return Depends(_principal)


def require_scope(scope: str) -> Any:
    """FastAPI dependency: the caller's principal, which must hold ``scope``."""

    async def dependency(principal: Principal = Depends(_principal)) -> Principal:
        if not principal.can(scope):
            raise ProblemError(403, f"This API key lacks the scope {scope!r}.", type_="forbidden")
        return principal

    return Depends(dependency)


def tenant_scope(principal: Principal, requested: str | None) -> str | None:
    """The tenant a request acts on. A tenant key acts on its own tenant only (another one is 404, so
    its existence does not leak) or, for a 3PL key, on a tenant it lists (docs/roles.md); an operator key
    acts on the one it names, or on all (None)."""
    if principal.tenant_id is None:
        return requested
    if requested is not None and not principal.acts_for(requested):
        raise ProblemError(404, "Not found.")
    return requested or principal.tenant_id
