from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("escalations.urls")),
    # Public: the OpenAPI schema and its interactive docs (assets served locally by drf-spectacular-sidecar).
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema", authentication_classes=[],
                                                     permission_classes=[]), name="api-docs"),
]
