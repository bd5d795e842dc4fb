"""OpenAPI (drf-spectacular) plumbing, applied to every app's endpoints without per-view code.

- the Bearer security scheme of accounts.authentication.BearerAuthentication;
- request bodies of StrictSerializer declare `additionalProperties: false` (they do refuse unknown keys);
- every /api/v1/ operation documents its problem+json error responses and, for writes, the
  Idempotency-Key header (required on POST /api/v1/escalations).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension

from .errors import PROBLEM_CONTENT_TYPE
from .idempotency import HEADER, MAX_KEY_LENGTH, METHODS, PREFIX, REPLAYED_HEADER

# Writes whose Idempotency-Key is required, as (method, path template).
IDEMPOTENCY_REQUIRED: set[tuple[str, str]] = {("post", "/api/v1/escalations")}

ERROR_RESPONSES: dict[str, str] = {
    "400": "Invalid request: malformed JSON, a wrong type, an unknown field or value (see `errors`).",
    "401": "Missing, unknown or revoked bearer secret.",
    "403": "The credential may not do this (missing capability, not assigned, not the requester, four-eyes).",
    "404": "No such object in your tenant (objects of other tenants are never shown).",
    "406": "The Accept header asks for a format the API does not produce (use application/json).",
    "409": "Conflict with the current state, or a request with the same Idempotency-Key is still running.",
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
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
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


def postprocess_api(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
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
