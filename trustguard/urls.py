from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from .api.schema import CachedSchemaView
from .health import healthz, readyz
from .metrics import metrics_view

# Public: the OpenAPI schema and its interactive docs (assets served locally by drf-spectacular-sidecar).
schema_view = CachedSchemaView.as_view(authentication_classes=[], permission_classes=[])
docs_view = SpectacularSwaggerView.as_view(url_name="api-schema", authentication_classes=[], permission_classes=[])

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="prometheus-metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("escalations.urls")),
    path("api/v1/", include("reports.urls")),
    path("ops/", include("reports.page_urls")),
    path("api/v1/", include("notifications.urls")),
    path("api/v1/", include("subjects.urls")),
    path("privacy/", include("subjects.page_urls")),
    path("api/schema/", schema_view, name="api-schema"),
    path("api/docs/", docs_view, name="api-docs"),
    # Also without the slash: a POST there gets a 405 problem instead of Django's APPEND_SLASH error.
    path("api/schema", schema_view),
    path("api/docs", docs_view),
    path("accounts/", include("accounts.urls")),
    path("", include("dashboard.urls")),
]
