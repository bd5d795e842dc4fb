"""The product's URLs plus the baselines the HTTP benchmarks compare against, on the same server, settings and
middleware:
- bench 1: a bare JSON view (parses the body, writes nothing), the one-INSERT floor (one INSERT + COMMIT into
  its own scratch table) and the DRF-create floor (a ModelSerializer create of bench.floor's model);
- bench 6: a bare template (25 rows, no layout) and the signed-in baseline page: login required, the tenant
  resolved, the product's base template (nav, account menu, tenant) and a 25-row list, without the queue's
  queries.
"""

import json
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers
from rest_framework.generics import CreateAPIView
from rest_framework.permissions import AllowAny

from accounts.web import tenant_view
from trustguard.urls import urlpatterns as product_urlpatterns

from .floor.models import FloorEscalation

INSERT_FLOOR_TABLE = "bench_floor_insert"


@csrf_exempt
def bare_json(request: HttpRequest) -> HttpResponse:
    """Parse a JSON body and answer JSON: what any JSON endpoint costs before it does any work."""
    body = json.loads(request.body or b"{}")
    return JsonResponse({"ok": True, "received": len(body)}, status=201 if request.method == "POST" else 200)


@csrf_exempt
def insert_floor(request: HttpRequest) -> HttpResponse:
    """Parse the JSON body, one INSERT of it into a scratch table, COMMIT, answer its id: a write endpoint's floor."""
    body = json.loads(request.body or b"{}")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {INSERT_FLOOR_TABLE} (entity_id, body) VALUES (%s, %s) RETURNING id",
                       [str(body.get("source", {}).get("entity_id", "")), json.dumps(body)])
        (pk,) = cursor.fetchone()
    return JsonResponse({"id": pk}, status=201)


class _FloorSource(serializers.Serializer):
    system = serializers.CharField(max_length=64)
    entity_type = serializers.CharField(max_length=64)
    entity_id = serializers.CharField(max_length=128)
    url = serializers.URLField(required=False, allow_blank=True)


class _FloorAmount(serializers.Serializer):
    value_minor = serializers.IntegerField()
    currency = serializers.CharField(max_length=3)


class FloorEscalationSerializer(serializers.ModelSerializer):
    """The create's body, validated by DRF (nested source and amount) and saved as one row."""

    source = _FloorSource(write_only=True)  # type: ignore[assignment]
    amount = _FloorAmount(write_only=True, required=False)

    class Meta:
        model = FloorEscalation
        fields = ["id", "reason", "source", "amount", "urgency", "payload", "requested_by", "source_entity_id",
                  "amount_minor", "currency", "created_at"]
        read_only_fields = ["source_entity_id", "amount_minor", "currency", "created_at"]

    def create(self, validated_data: dict[str, Any]) -> FloorEscalation:
        source, amount = validated_data.pop("source"), validated_data.pop("amount", None) or {}
        return FloorEscalation._default_manager.create(
            **validated_data, source_system=source["system"], source_entity_type=source["entity_type"],
            source_entity_id=source["entity_id"], source_url=source.get("url", ""),
            amount_minor=amount.get("value_minor"), currency=amount.get("currency", ""))


class DrfCreateFloor(CreateAPIView):
    """A DRF ModelSerializer create, no authentication: what DRF's create costs on this server."""

    serializer_class = FloorEscalationSerializer
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]


def bare_template(request: HttpRequest) -> HttpResponse:
    """Render a page of 25 rows from a template, without the database: a template view's floor."""
    rows = [{"id": i, "title": f"Order ORD-{i}", "amount": f"NGN {i * 1000:,}"} for i in range(25)]
    return render(request, "bench/bare.html", {"rows": rows})


@tenant_view
def signed_in_list(request: HttpRequest) -> HttpResponse:
    """A signed-in page with the queue page's layout (base template, nav, account menu, tenant) and 25 rows."""
    rows = [{"id": i, "title": f"Order ORD-{i}", "amount": f"NGN {i * 1000:,}", "role": "compliance_officer"}
            for i in range(25)]
    return render(request, "bench/signed_in.html", {"rows": rows})


urlpatterns = [
    path("bench/bare-json", bare_json),
    path("bench/insert-floor", insert_floor),
    path("bench/drf-create", csrf_exempt(DrfCreateFloor.as_view())),
    path("bench/bare-template", bare_template),
    path("bench/signed-in-list", signed_in_list),
    *product_urlpatterns,
]
