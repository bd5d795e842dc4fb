"""Operator pages, included at /ops/ by trustguard/urls.py."""

from django.urls import path

from . import views

app_name = "ops"

urlpatterns = [
    path("reports/", views.reports_page, name="reports"),
    path("health/", views.health_page, name="health"),
    path("exports/", views.export_start, name="export-start"),
    path("exports/<str:job_id>/file", views.export_file, name="export-file"),
    path("escalations/<str:pk>/report.pdf", views.escalation_pdf, name="escalation-pdf"),
]
