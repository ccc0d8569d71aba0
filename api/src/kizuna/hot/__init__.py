"""The three hot endpoints, each implemented once, as plain ASGI, in front of FastAPI's own
middleware stack: ``GET /api/userinfo`` (every server-rendered page), ``POST /auth/refresh``
(every tab, once per access-token lifetime) and ``POST /auth/login`` (a burst of logins must not
slow page views down). Why they bypass FastAPI's routing, dependency and validation layers, with
the measurements: docs/architecture.md, "Hot endpoints".

Each module declares its endpoint once: method, path, the handler, and its OpenAPI operation.
They answer every case of their endpoint themselves — success, every error, the body limit —
through the same functions as the rest of the app (``kizuna.problems.problem_response`` for
errors, ``kizuna.middleware`` for the standard headers and the body limit).
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from kizuna.hot import login, refresh, userinfo
from kizuna.hot.endpoint import Endpoint
from kizuna.problems import problem_responses


def endpoints() -> tuple[Endpoint, ...]:
    """The hot endpoints of one app (each call: fresh ones, with empty caches)."""
    return (userinfo.endpoint(), refresh.endpoint(), login.endpoint())


def document(schema: dict[str, Any], hot: tuple[Endpoint, ...]) -> None:
    """Adds the hot endpoints' operations to FastAPI's OpenAPI document, as FastAPI would have
    described the same routes."""
    models = [(e.response_model, "serialization") for e in hot]
    models += [(e.body_model, "validation") for e in hot if e.body_model is not None]
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    schema.setdefault("components", {}).setdefault("schemas", {}).update(top.get("$defs", {}))

    def ref(model: Any) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    for e in hot:
        responses: dict[str, Any] = {
            "200": {
                "description": "Successful Response",
                "content": {"application/json": {"schema": ref(e.response_model)}},
            }
        }
        responses.update({str(k): v for k, v in problem_responses(*e.problems).items()})
        operation: dict[str, Any] = {
            "tags": [e.tag],
            "summary": e.summary,
            "operationId": e.operation_id,
            "responses": responses,
        }
        if e.body_model is not None:
            operation["requestBody"] = {
                "content": {"application/json": {"schema": ref(e.body_model)}},
                "required": True,
            }
        schema.setdefault("paths", {}).setdefault(e.path, {})[e.method.lower()] = operation
