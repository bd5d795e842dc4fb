"""API of the reports app: summary, exports (direct and as jobs), and the PDF report of one escalation.

Plain DRF APIViews with explicit serializers; authorisation and auditing live in services.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actors import Actor
from accounts.roles import Capability
from escalations.models import EscalationStatus
from trustguard.api.serializers import reject_unknown_query_params
from trustguard.errors import NotFound, Unprocessable

from .exports import CONTENT_TYPES, ExportFilters, export_queryset, stream_export, write_export
from .models import ExportDataset, ExportFormat, ExportJob
from .pdf import escalation_report_pdf
from .selectors import ReportFilters, report_summary
from .services import (
    escalation_report_record,
    export_download_record,
    export_job_create,
    export_job_file_open,
    export_job_get,
    require_capability,
)

PROBLEM = OpenApiResponse(description="application/problem+json")


# A JSON export is an array of row objects (columns as in the CSV header).
JSON_ROWS: dict[str, Any] = {"type": "array", "items": {"type": "object", "additionalProperties": True}}


def _validated(serializer: serializers.Serializer[Any]) -> dict[str, Any]:
    # A misspelt filter is a 400, not a silently unfiltered report or export.
    reject_unknown_query_params(serializer.initial_data, set(serializer.fields))
    # raise_exception gives DRF's ValidationError, which the project handler turns into problem+json.
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _uuid_or_404(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no such {what}") from None


class _FileView(APIView):
    """Views whose success is a file: errors still come out as problem+json, whatever Accept says."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)


# --- summary -------------------------------------------------------------------------------------

SummaryQuerySerializer = type("SummaryQuerySerializer", (serializers.Serializer,), {
    "from": serializers.DateTimeField(required=False, help_text="Escalations created at or after (ISO 8601)."),
    "to": serializers.DateTimeField(required=False, help_text="Escalations created before (ISO 8601)."),
    "type": serializers.CharField(required=False, max_length=64),
    "validate": lambda self, data: _checked_period(data, "from", "to"),
})


def _checked_period(data: dict[str, Any], start_name: str, end_name: str) -> dict[str, Any]:
    start, end = data.get(start_name), data.get(end_name)
    if start and end and start >= end:
        raise serializers.ValidationError({end_name: [f"Must be after {start_name}."]})
    return data


class ReportSummaryView(APIView):
    @extend_schema(
        summary="Operator summary: counts, approval rate, timings, SLA breaches, backlog by role",
        parameters=[SummaryQuerySerializer], responses={200: OpenApiTypes.OBJECT, 400: PROBLEM, 403: PROBLEM},
        description="All figures are over the tenant's escalations created in [from, to) (and of `type`), except "
                    "`bottlenecks`, which is the open backlog now. Times are seconds; percentiles interpolate "
                    "linearly (percentile_cont). `approval_rate` is approved / (approved + rejected) of the requests "
                    "people decided; `auto_approved` (no approval needed) are counted apart.",
    )
    def get(self, request: Request) -> Response:
        actor: Actor = request.user  # type: ignore[assignment]  # the API's authenticators make request.user an Actor
        require_capability(actor, Capability.AUDIT_VIEW)
        query = _validated(SummaryQuerySerializer(data=request.query_params))
        filters = ReportFilters(period_from=query.get("from"), period_to=query.get("to"), type=query.get("type"))
        return Response(report_summary(tenant=actor.tenant, filters=filters))


# --- exports -------------------------------------------------------------------------------------

class ExportFiltersSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=EscalationStatus.choices, required=False)
    type = serializers.CharField(required=False, max_length=64)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        return _checked_period(data, "created_after", "created_before")


def _filters(data: dict[str, Any]) -> ExportFilters:
    return ExportFilters(status=data.get("status"), type=data.get("type"), created_after=data.get("created_after"),
                         created_before=data.get("created_before"))


class ExportDownloadView(_FileView):
    @extend_schema(
        summary="Download an export (streamed)",
        parameters=[ExportFiltersSerializer,
                    OpenApiParameter("dataset", str, OpenApiParameter.PATH, enum=ExportDataset.values),
                    OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=ExportFormat.values)],
        responses={(200, "text/csv"): OpenApiTypes.BINARY,
                   (200, "application/json"): JSON_ROWS,
                   (200, CONTENT_TYPES[ExportFormat.XLSX]): OpenApiTypes.BINARY, 400: PROBLEM, 403: PROBLEM,
                   422: PROBLEM},
        description="CSV and JSON stream in constant memory, whatever the size. XLSX is built first, so it is "
                    f"limited to {settings.EXPORT_SYNC_XLSX_MAX_ROWS} rows here; larger ones: POST /exports. "
                    "Filters: escalations by created_at; decisions by decided_at (status/type of their escalation); "
                    "audit by event time (status/type select the events of matching escalations). Spreadsheet "
                    "formulas in cells are neutralised with a leading apostrophe.",
    )
    def get(self, request: Request, dataset: str, fmt: str) -> HttpResponseBase:
        actor: Actor = request.user  # type: ignore[assignment]  # the API's authenticators make request.user an Actor
        filters = _filters(_validated(ExportFiltersSerializer(data=request.query_params)))
        if fmt == ExportFormat.XLSX:
            require_capability(actor, Capability.AUDIT_EXPORT)
            rows = export_queryset(dataset=dataset, tenant=actor.tenant, filters=filters).count()
            if rows > settings.EXPORT_SYNC_XLSX_MAX_ROWS:
                raise Unprocessable(f"{rows} rows is too many for a direct XLSX download; POST /api/v1/exports "
                                    "runs it as a job", slug="export-too-large")
        export_download_record(actor=actor, dataset=dataset, fmt=fmt, filters=filters)
        file_name = f"{actor.tenant.slug}-{dataset}.{fmt}"
        if fmt == ExportFormat.XLSX:
            handle = tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False)  # noqa: SIM115 - FileResponse closes it
            try:
                write_export(dataset=dataset, fmt=fmt, tenant=actor.tenant, filters=filters, out=handle)
                handle.seek(0)
            finally:
                # The open handle keeps the data; the name goes now, so nothing is left behind.
                os.unlink(handle.name)
            return FileResponse(handle, as_attachment=True, filename=file_name, content_type=CONTENT_TYPES[fmt])
        response = StreamingHttpResponse(stream_export(dataset=dataset, fmt=fmt, tenant=actor.tenant, filters=filters),
                                         content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{file_name}"'
        response["Cache-Control"] = "no-store"
        return response


class ExportJobRequestSerializer(serializers.Serializer[Any]):
    dataset = serializers.ChoiceField(choices=ExportDataset.choices)
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    filters = ExportFiltersSerializer(required=False)


class ExportJobSerializer(serializers.ModelSerializer[ExportJob]):
    progress = serializers.FloatField(read_only=True, allow_null=True, help_text="0..1 once the row count is known.")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = ["id", "dataset", "format", "filters", "status", "progress", "rows_done", "rows_total", "file_size",
                  "error", "requested_by_label", "created_at", "started_at", "finished_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != ExportJob.Status.DONE:
            return None
        request: Request = self.context["request"]
        return request.build_absolute_uri(reverse("reports:export-job-file", args=[job.pk]))


class ExportJobCreateView(APIView):
    @extend_schema(summary="Run an export as a background job", request=ExportJobRequestSerializer,
                   responses={202: ExportJobSerializer, 400: PROBLEM, 403: PROBLEM})
    def post(self, request: Request) -> Response:
        actor: Actor = request.user  # type: ignore[assignment]  # the API's authenticators make request.user an Actor
        require_capability(actor, Capability.AUDIT_EXPORT)
        data = _validated(ExportJobRequestSerializer(data=request.data))
        job = export_job_create(actor=actor, dataset=data["dataset"], fmt=data["format"],
                                filters=_filters(dict(data.get("filters") or {})))
        location = reverse("reports:export-job", args=[job.pk])
        return Response(ExportJobSerializer(job, context={"request": request}).data, status=202,
                        headers={"Location": location})


class ExportJobDetailView(APIView):
    @extend_schema(summary="An export job's status and progress", responses={200: ExportJobSerializer, 404: PROBLEM})
    def get(self, request: Request, job_id: str) -> Response:
        job = export_job_get(actor=request.user, job_id=_uuid_or_404(job_id, "export job"))  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
        return Response(ExportJobSerializer(job, context={"request": request}).data)


class ExportJobFileView(_FileView):
    @extend_schema(summary="Download a finished export job's file",
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: PROBLEM, 409: PROBLEM})
    def get(self, request: Request, job_id: str) -> HttpResponseBase:
        job, path = export_job_file_open(actor=request.user,  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
                                         job_id=_uuid_or_404(job_id, "export job"))
        actor: Actor = request.user  # type: ignore[assignment]  # the API's authenticators make request.user an Actor
        return FileResponse(path.open("rb"), as_attachment=True, content_type=CONTENT_TYPES[job.format],
                            filename=f"{actor.tenant.slug}-{job.dataset}-{job.pk}.{job.format}")


# --- PDF -----------------------------------------------------------------------------------------

class EscalationReportPdfView(_FileView):
    @extend_schema(summary="A regulator's PDF of one escalation: the case, its decisions, its audit trail",
                   responses={(200, "application/pdf"): OpenApiTypes.BINARY, 403: PROBLEM, 404: PROBLEM})
    def get(self, request: Request, escalation_id: str) -> HttpResponse:
        actor: Actor = request.user  # type: ignore[assignment]  # the API's authenticators make request.user an Actor
        escalation = escalation_report_record(actor=actor, escalation_id=_uuid_or_404(escalation_id, "escalation"))
        pdf = escalation_report_pdf(escalation=escalation, generated_by=actor.actor_label)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="escalation-{escalation.pk}.pdf"'
        response["Cache-Control"] = "no-store"
        return response


