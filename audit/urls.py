from django.urls import path

from .api import AuditEventListView

urlpatterns = [
    path("audit", AuditEventListView.as_view(), name="audit-list"),
]
