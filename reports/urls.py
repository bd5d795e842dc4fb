"""Routes of the reports API, included at /api/v1/ by trustguard/urls.py."""

from django.urls import path, re_path

from . import api, audit_api

app_name = "reports"

urlpatterns = [
    path("audit", audit_api.AuditEventListView.as_view(), name="audit-list"),
    path("reports/summary", api.ReportSummaryView.as_view(), name="summary"),
    re_path(r"^exports/(?P<dataset>escalations|decisions|audit)\.(?P<fmt>csv|json|xlsx)$",
            api.ExportDownloadView.as_view(), name="export-download"),
    path("exports", api.ExportJobCreateView.as_view(), name="export-jobs"),
    path("exports/jobs/<str:job_id>", api.ExportJobDetailView.as_view(), name="export-job"),
    path("exports/jobs/<str:job_id>/file", api.ExportJobFileView.as_view(), name="export-job-file"),
    path("escalations/<str:escalation_id>/report.pdf", api.EscalationReportPdfView.as_view(), name="escalation-pdf"),
]
