# django-simple-history's admin (3.x) as the product extends it: a ModelAdmin with the history views.
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

class SimpleHistoryAdmin(admin.ModelAdmin[Any]):
    history_list_display: list[str]
    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = ...) -> HttpResponse: ...
    def history_form_view(self, request: HttpRequest, object_id: str, version_id: str,
                          extra_context: dict[str, Any] | None = ...) -> HttpResponse: ...
    def __getattr__(self, name: str) -> Any: ...

def __getattr__(name: str) -> Any: ...
