"""OpenAPI (drf-spectacular) plumbing, applied to every app's endpoints without per-view code.

- the Bearer security scheme of accounts.authentication.BearerAuthentication;
- request bodies of StrictSerializer declare `additionalProperties: false` (they do refuse unknown keys);
- every /api/v1/ operation documents its problem+json error responses and, for writes, the
  Idempotency-Key header (required on POST /api/v1/escalations);
- the document is generated once per process, under a lock, and served from memory: drf-spectacular's
  generator is not thread-safe (12 concurrent first requests on a fresh gthread server got 500s).
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

from django.utils import translation
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from .errors import PROBLEM_CONTENT_TYPE
from .idempotency import HEADER, MAX_KEY_LENGTH, METHODS, PREFIX, REPLAYED_HEADER

# Writes whose Idempotency-Key is required, as (method, path template).
IDEMPOTENCY_REQUIRED: set[tuple[str, str]] = {("post", "/api/v1/escalations")}

ERROR_RESPONSES: dict[str, str] = {
    "400": "Invalid request: malformed JSON, a body that is not a JSON object, a wrong type, an unknown field or "
           "value, or a query parameter this operation does not document (see `errors`).",
    "401": "Missing, unknown or revoked bearer secret.",
    "403": "The credential may not do this (missing capability, not assigned, not the requester, four-eyes).",
    "404": "No such object in your tenant (objects of other tenants are never shown).",
    "406": "The Accept header asks for a format the API does not produce (use application/json).",
    "409": "Conflict with the current state; a request with the same Idempotency-Key is still running; or "
           "`concurrent-write`: a concurrent request changed the same data, nothing was changed, retry after "
           "`Retry-After` seconds (docs/CONCURRENCY.md).",
    "413": "The request body is too large.",
    "415": "The request body is not application/json.",
    "422": "Well-formed but unprocessable, or an Idempotency-Key reused with a different request.",
    "429": "Too many requests: wait for `Retry-After` seconds.",
}


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer",
                "description": "A tenant API key (`tgk_...`, source systems) or a personal token (`tgp_...`, people)."}


class StrictSerializerExtension(OpenApiSerializerExtension):
    target_class = "trustguard.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details. Every error of the API has this shape.",
    "properties": {
        "type": {"type": "string", "format": "uri", "example": "https://trustguard.dev/problems/validation-error"},
        "title": {"type": "string", "example": "Invalid request"},
        "status": {"type": "integer", "example": 400},
        "detail": {"type": "string", "example": "Invalid fields: amount.value_minor"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                   "example": {"amount.value_minor": ["Expected an integer."]},
                   "description": "Per-field messages (400 only)."},
    },
    "required": ["type", "title", "status", "detail"],
}


def _idempotency_parameter(required: bool) -> dict[str, Any]:
    return {
        "in": "header", "name": HEADER, "required": required,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": r"^[!-~]+$"},
        "description": (
            ("Required. " if required else "Optional. ")
            + "A unique key per logical request (a UUID). Retrying with the same key and body returns the first "
            "response again with `Idempotent-Replayed: true`; the same key with another body is refused (422); "
            "while the first request still runs, 409. Keys are per credential and kept 24 hours."),
    }


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from what a POST creates (`id` in its 201/202 body) to the operations on that object:
    POST /webhooks -> /webhooks/{endpoint_id}..., POST /exports -> /exports/jobs/{job_id}...; clients (and
    schemathesis' stateful phase) follow them."""
    for path, operations in paths.items():
        post = operations.get("post")
        if not path.startswith(PREFIX) or post is None:
            continue
        for code in ("201", "202"):
            if code not in post.get("responses", {}):
                continue
            links = post["responses"][code].setdefault("links", {})
            for other, other_ops in paths.items():
                match = re.fullmatch(re.escape(path) + r"(?:/[a-z]+)?/\{(\w+)\}(/[\w./-]*)?", other)
                if not match or "{" in (match.group(2) or ""):
                    continue
                for operation in other_ops.values():
                    if isinstance(operation, dict) and "operationId" in operation:
                        links[operation["operationId"]] = {"operationId": operation["operationId"],
                                                           "parameters": {match.group(1): "$response.body#/id"}}


def postprocess_api(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    _add_links(result.get("paths", {}))
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(PREFIX):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            for param in operation.get("parameters", []):
                # DRF reads `?name=` (empty) of an optional query parameter as "not given"; say so.
                if param.get("in") == "query" and not param.get("required"):
                    param["allowEmptyValue"] = True
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_RESPONSES.items():
                responses.setdefault(code, {"description": description,
                                            "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_ref}}})
            if method.upper() in METHODS:
                required = (method, path) in IDEMPOTENCY_REQUIRED
                params = [p for p in operation.get("parameters", []) if p.get("name") != HEADER]
                params.append(_idempotency_parameter(required))
                operation["parameters"] = params
                for code, response in responses.items():
                    if code.startswith("2"):
                        response.setdefault("headers", {})[REPLAYED_HEADER] = {
                            "description": "`true` when this is the stored response of an earlier request "
                                           "with the same Idempotency-Key.",
                            "schema": {"type": "string", "enum": ["true"]}}
    return result


_schemas: dict[tuple[str | None, str], dict[str, Any]] = {}
_schema_lock = threading.Lock()


def api_schema(version: str | None = None) -> dict[str, Any]:
    """The OpenAPI document (as served at /api/schema/), generated once per process and language."""
    key = (version, translation.get_language() or "")
    schema = _schemas.get(key)
    if schema is None:
        with _schema_lock:
            schema = _schemas.get(key)
            if schema is None:
                generator = SpectacularAPIView.generator_class(api_version=version)
                schema = _schemas[key] = generator.get_schema(request=None, public=True)
    return schema


class CachedSchemaView(SpectacularAPIView):
    """drf-spectacular's schema view, serving the one document api_schema() generated."""

    def _get_schema_response(self, request: Request) -> Response:
        version = self.api_version or request.version or self._get_version_parameter(request)  # type: ignore[no-untyped-call]  # drf-spectacular's, unannotated
        return Response(data=api_schema(version), headers={  # renderers only read it
            "Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'})  # type: ignore[no-untyped-call]  # as above


# --- query parameters: refused unless the schema names them, and checked against what it says ----------

_BOOLEAN_WORDS = frozenset({"true", "false", "1", "0"})


@functools.cache
def _operations() -> list[tuple[re.Pattern[str], dict[str, Any]]]:
    """(path regex, operations) of every /api/v1/ path of the schema; literal paths before templated ones."""
    paths = [(path, ops) for path, ops in api_schema().get("paths", {}).items() if path.startswith(PREFIX)]
    paths.sort(key=lambda item: item[0].count("{"))
    return [(re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))), ops) for path, ops in paths]


def query_parameters(method: str, path: str) -> dict[str, dict[str, Any]] | None:
    """The query parameters the schema documents for this request, by name; None if it documents no such
    operation (the URL resolver and the view answer 404 or 405)."""
    for pattern, operations in _operations():
        if pattern.fullmatch(path):
            operation = operations.get(method.lower())
            if operation is None:
                return None
            return {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "query"}
    return None


def query_errors(query: Any, documented: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """What is wrong with the query string against the documented parameters (name -> messages)."""
    errors: dict[str, list[str]] = {}
    for name, values in query.lists():
        param = documented.get(name)
        if param is None:
            errors[name or "(empty name)"] = ["Unknown query parameter."]
            continue
        for value in values:
            if value == "" and param.get("allowEmptyValue"):
                continue  # "not given", as DRF reads it
            problem = _value_error(value, param.get("schema", {}))
            if problem:
                errors[name] = [problem]
    return errors


def _value_error(value: str, schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if "enum" in schema and value not in {str(v) for v in schema["enum"]}:
        return "One of: " + ", ".join(str(v) for v in schema["enum"]) + "."
    if kind == "integer":
        if not re.fullmatch(r"-?[0-9]{1,18}", value):
            return "A whole number."
        number = int(value)
        if not schema.get("minimum", number) <= number <= schema.get("maximum", number):
            return f"From {schema.get('minimum', '-inf')} to {schema.get('maximum', 'inf')}."
    elif kind == "boolean":
        if value.lower() not in _BOOLEAN_WORDS:
            return "true or false (or 1 or 0)."
    elif kind == "string":
        if len(value) > schema.get("maxLength", len(value)) or len(value) < schema.get("minLength", 0):
            return f"From {schema.get('minLength', 0)} to {schema.get('maxLength')} characters."
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"Must match {schema['pattern']}."
    return None
