"""Errors as RFC 9457 problem+json with a stable ``code``; nothing internal reaches a client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from kizuna.errors import CATALOGUE, TITLES, Code
from kizuna.password_hasher import HashingBusy
from kizuna.schemas import ProblemDetails

log = structlog.get_logger("kizuna.errors")

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An answer from the catalogue (``kizuna.errors``), raised anywhere while a request is
    handled and turned into a response at one edge (``install``). ``detail`` replaces the
    catalogue's sentence where the case says more (which policy rule a password broke);
    ``headers`` adds to the entry's own (the seconds of a Retry-After)."""

    def __init__(
        self,
        code: Code,
        *,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code.value)
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_response(
    code: Code,
    *,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The one way an error becomes a response: RFC 9457 problem details."""
    entry = CATALOGUE[code]
    body: dict[str, Any] = {
        "type": f"https://kizuna.dev/problems/{code.value.replace('_', '-')}",
        "title": TITLES.get(entry.status, "Error"),
        "status": entry.status,
        "detail": detail or entry.detail,
        "code": code.value,
    }
    body.update(extra or {})
    # An error is never worth caching, and /auth/* must never be cached at all.
    all_headers = {"Cache-Control": "no-store", **dict(entry.headers), **(headers or {})}
    return JSONResponse(
        body, status_code=entry.status, headers=all_headers, media_type=PROBLEM_JSON
    )


def response_of(problem: Problem) -> JSONResponse:
    return problem_response(
        problem.code, detail=problem.detail, headers=problem.headers, extra=problem.extra
    )


def internal_error(path: str, exc: Exception) -> JSONResponse:
    """Our bug, whatever it is: logged with its traceback, answered without a word of it."""
    log.error("unhandled_error", path=path, error=type(exc).__name__, exc_info=exc)
    return problem_response(Code.internal_error)


# Statuses Starlette itself raises (routing, its own body parsing).
_HTTP_CODES = {
    400: Code.bad_request,
    404: Code.not_found,
    405: Code.method_not_allowed,
    413: Code.payload_too_large,
    415: Code.unsupported_media_type,
}


# What "the store cannot answer" looks like; IntegrityError (a DBAPIError) is our bug instead.
STORE_FAILURES: tuple[type[Exception], ...] = (
    PoolTimeout,
    DisconnectionError,
    DBAPIError,
    OSError,
)


def is_store_failure(exc: Exception) -> bool:
    return isinstance(exc, STORE_FAILURES) and not isinstance(exc, IntegrityError)


# -- the OpenAPI document: every problem a route can answer is declared -----------------------

_SCHEMA_NAME = ProblemDetails.__name__
_REF = {"$ref": f"#/components/schemas/{_SCHEMA_NAME}"}
_DESCRIPTIONS = {
    400: "The request body cannot be read (not JSON, or not UTF-8).",
    401: "Not signed in, or the credential is invalid, expired or revoked.",
    403: "Not allowed.",
    404: "No such resource.",
    409: "Conflict with the current state.",
    413: "The request body is too large.",
    422: "The request is malformed.",
    429: "Too many attempts; see Retry-After.",
    503: "The store is not answering, or the password hashers are busy; see Retry-After.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the problems it answers itself, as problem+json. Those that
    come from its dependencies and from the middleware are added by ``install`` (see
    ``document``): 401 and 503 for a signed-in route, 403 for an admin one, 400, 413 and 422
    for one that takes a body, 422 for one that takes parameters."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, TITLES.get(status, "Error")),
            "content": {PROBLEM_JSON: {"schema": dict(_REF)}},
        }
        for status in statuses
    }


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Every route with its full path, also those of included routers (which recent FastAPI
    keeps nested, and shows flattened only through ``iter_route_contexts``)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI: the routes are flat already
        yield from (route for route in app.routes if isinstance(route, APIRoute))
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _kizunas(route: Any) -> bool:
    """A route of Kizuna's routers (``routing.KizunaRoute``), in whatever app it is mounted."""
    return bool(getattr(getattr(route, "original_route", route), "answers_for_itself", False))


def document(app: FastAPI, schema: dict[str, Any]) -> None:
    """Declares in ``schema`` (FastAPI's OpenAPI document) the problems each of Kizuna's routes
    answers without saying so itself: validation errors are problem+json, not FastAPI's default
    application/json; 400 and 413 wherever a body is read; 401 and 503 behind a principal;
    403 behind the admin role. Other routes of a host app are left as they are."""
    from kizuna import deps  # deps answers with this module's problems: imported late

    _, top = models_json_schema(
        [(ProblemDetails, "serialization")], ref_template="#/components/schemas/{model}"
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(top.get("$defs", {}))
    for route in _api_routes(app):
        if not route.include_in_schema or not _kizunas(route):
            continue
        calls = set(_calls(route.dependant))
        wanted: set[int] = set()
        if deps.get_principal in calls:
            wanted |= {401, 503}
        if deps.get_admin in calls:
            wanted.add(403)
        for method in route.methods:
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            statuses = set(wanted)
            if "requestBody" in operation:
                statuses |= {400, 413, 422}
            if "422" in responses:
                statuses.add(422)
                del responses["422"]
            for status, documented in problem_responses(*sorted(statuses)).items():
                responses.setdefault(str(status), documented)
    # FastAPI's validation-error models, unless a route of the host still refers to them.
    if "/HTTPValidationError" not in json.dumps(schema.get("paths", {})):
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)


def validation_problem(
    errors: Iterable[Mapping[str, Any]], *, within: tuple[str, ...] = ()
) -> JSONResponse:
    """422 ``validation_error`` listing each error's location (under ``within``, e.g. "body")
    and message: never the submitted input (it may be a password)."""
    listed = [
        {
            "loc": [*within, *(str(part) for part in err.get("loc", ()))],
            "msg": str(err.get("msg", "")),
        }
        for err in errors
    ]
    return problem_response(Code.validation_error, extra={"errors": listed})


def answer_for(path: str, exc: Exception) -> Response:
    """The response to an exception raised while one of Kizuna's requests was handled."""
    if isinstance(exc, Problem):
        return response_of(exc)
    if isinstance(exc, RequestValidationError):
        return validation_problem(exc.errors())
    if isinstance(exc, StarletteHTTPException):
        fallback = Code.bad_request if exc.status_code < 500 else Code.internal_error
        return problem_response(_HTTP_CODES.get(exc.status_code, fallback), headers=exc.headers)
    if isinstance(exc, HashingBusy):
        return problem_response(Code.server_busy)
    if is_store_failure(exc):
        log.warning("store_unavailable", path=path, error=type(exc).__name__)
        return problem_response(Code.store_unavailable)
    return internal_error(path, exc)


def install(app: FastAPI) -> None:
    """Kizuna's own app: its answers to requests no route of Kizuna takes (an unknown path, a
    method a path does not take) in the same problem+json."""

    async def _answer(request: Request, exc: Exception) -> Response:
        return answer_for(request.url.path, exc)

    for kind in (StarletteHTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, _answer)
