"""GET /api/v1/audit: the tenant's audit events, filtered, newest first, cursor-paginated.

Reading the trail is a report: it lives in reports/, above accounts (the caller's capability) and audit
(the rows, through audit.selectors), so audit stays the leaf everybody writes to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actors import Actor
from accounts.roles import Capability
from audit.models import AuditEvent
from audit.selectors import AuditFilter, audit_events_for_tenant
from trustguard.api.pagination import KeysetPagination
from trustguard.errors import PermissionDenied, ValidationFailed

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


class AuditEventSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    seq = serializers.IntegerField(allow_null=True, help_text="The event's place on its tenant's chain; null for a few "
                                   "seconds after it was written, until the sealer chains it (docs/AUDIT.md, "
                                   "\"Sealing\"): its prev_hash is then empty and its hash its own seal.")
    action = serializers.CharField()
    actor = inline_serializer("AuditActor", {"type": serializers.CharField(), "id": serializers.CharField(),
                                             "label": serializers.CharField()})
    target = inline_serializer("AuditTarget", {"type": serializers.CharField(), "id": serializers.CharField()})
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    details = serializers.JSONField()
    ip = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField()
    request_id = serializers.CharField(help_text="The correlation id (X-Request-ID) of the request or job.")
    created_at = serializers.DateTimeField()
    key_id = serializers.CharField(help_text="Id of the audit key that sealed the event (empty: written before the "
                                             "chain was keyed).")
    prev_hash = serializers.CharField()
    hash = serializers.CharField(help_text="HMAC-SHA256 under the audit key `key_id` of prev_hash + the canonical JSON "
                                           "of the event (SHA-256 when key_id is empty); the key is held outside the "
                                           "database, so `manage.py verify_audit` checks it.")


class AuditPageSerializer(serializers.Serializer[Any]):
    next = serializers.CharField(allow_null=True, help_text="URL of the next (older) page, or null.")
    results = AuditEventSerializer(many=True)


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": str(event.pk), "seq": event.seq, "action": event.action,
        "actor": {"type": event.actor_type, "id": event.actor_id, "label": event.actor_label},
        "target": {"type": event.target_type, "id": event.target_id},
        "before": event.before, "after": event.after, "details": event.details,
        "ip": event.ip, "user_agent": event.user_agent, "request_id": event.request_id,
        "created_at": event.created_at.isoformat(), "key_id": event.key_id, "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _moment(params: Any, name: str, errors: dict[str, list[str]]) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)
        if moment is not None:
            # In UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows (e.g. +20:24).
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: e.g. 0001-01-01T00:00+01:00, before the first moment
        pass
    errors[name] = ["An ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z."]
    return None


ACTOR_TYPES = ("user", "api_key", "system")


def audit_paginator() -> KeysetPagination:
    """Newest first, on (created_at, id): the one keyset paginator."""
    return KeysetPagination(key="created_at", descending=True, default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT)


def parse_filters(params: Any) -> AuditFilter:
    # PostgreSQL cannot compare text with a NUL in it: refuse it here, or it would be a 500 there.
    errors: dict[str, list[str]] = {name: ["Contains a NUL character."] for name, value in params.items()
                                    if "\x00" in value}
    if errors:
        raise ValidationFailed("invalid filters: " + ", ".join(sorted(errors)), errors=errors)
    if params.get("actor_type", "").strip() not in ("", *ACTOR_TYPES):
        errors["actor_type"] = [f"One of {', '.join(ACTOR_TYPES)}."]
    actions = tuple(a.strip() for a in params.get("action", "").split(",") if a.strip())
    after, before = _moment(params, "created_after", errors), _moment(params, "created_before", errors)
    audit_paginator().read_limit(params, errors)  # here too, so that one 400 names every bad parameter
    if errors:
        raise ValidationFailed("invalid filters: " + ", ".join(sorted(errors)), errors=errors)
    text = {name: params.get(name, "").strip()[:255] for name in
            ("actor", "actor_type", "actor_id", "target_type", "target_id")}
    return AuditFilter(actions=actions, created_after=after, created_before=before, **text)


_PARAMS = [
    OpenApiParameter("action", OpenApiTypes.STR, description="One action or a comma-separated list "
                     "(escalation.created, decision.recorded, otp.failed, credential.revoked, policy.changed, ...)"),
    OpenApiParameter("actor", OpenApiTypes.STR, description="The actor's label: a username, api_key:<name> or system:<job>"),
    OpenApiParameter("actor_type", OpenApiTypes.STR, enum=list(ACTOR_TYPES)),
    OpenApiParameter("actor_id", OpenApiTypes.STR),
    OpenApiParameter("target_type", OpenApiTypes.STR, description="e.g. escalation, policy, api_key, user"),
    OpenApiParameter("target_id", OpenApiTypes.STR),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Inclusive"),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Exclusive"),
    OpenApiParameter("limit", OpenApiTypes.INT, description=f"Page size, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})"),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="From the previous page's `next`"),
]


class AuditEventListView(APIView):
    @extend_schema(operation_id="audit_list", parameters=_PARAMS, responses=AuditPageSerializer, tags=["audit"],
                   summary="The tenant's audit events, newest first (needs audit.view)")
    def get(self, request: Request) -> Response:
        actor: Actor = request.user  # type: ignore[assignment]  # the API's authenticators make request.user an Actor
        if not actor.can(Capability.AUDIT_VIEW):
            raise PermissionDenied("reading the audit log needs audit.view", slug="missing-capability")
        filters = parse_filters(request.query_params)  # first: it also refuses NULs in the cursor
        paginator = audit_paginator()
        page = paginator.paginate_queryset(audit_events_for_tenant(tenant_id=actor.tenant.pk, filters=filters), request)
        return paginator.get_paginated_response([event_json(e) for e in page])
