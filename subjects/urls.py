from django.urls import path

from .api import SubjectEraseView, SubjectExportPdfView, SubjectExportView

urlpatterns = [
    path("subjects/export", SubjectExportView.as_view(), name="subjects-export"),
    path("subjects/export.pdf", SubjectExportPdfView.as_view(), name="subjects-export-pdf"),
    path("subjects/erase", SubjectEraseView.as_view(), name="subjects-erase"),
]
