from django.contrib import admin
from django.urls import include, path

from .health import healthz
from .metrics import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="prometheus-metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("audit.urls")),
    path("api/v1/", include("reports.urls")),
    path("ops/", include("reports.page_urls")),
    path("api/v1/", include("notifications.urls")),
    path("accounts/", include("accounts.urls")),
    path("", include("escalations.dashboard_urls")),
]
