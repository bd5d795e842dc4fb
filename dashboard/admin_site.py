"""The operators' admin as a product: TrustGuard's name, a home of what needs attention, and the
third-party apps (authenticator devices, login lockouts, periodic-task schedules) grouped last as "System",
shown to superusers only.

settings.INSTALLED_APPS names TrustGuardAdminConfig instead of django.contrib.admin, so every
`@admin.register` in the apps lands on this site.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext

# Apps that are machinery, not the product: grouped as "System", for superusers only.
SYSTEM_APPS = frozenset({"auth", "axes", "django_celery_beat", "otp_totp", "django_otp", "sites"})


class TrustGuardAdminSite(admin.AdminSite):
    site_header = "TrustGuard operations"
    site_title = "TrustGuard"
    index_title = "Operators' home"
    index_template = "admin/operators_home.html"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        ours = [app for app in apps if app["app_label"] not in SYSTEM_APPS]
        if not getattr(request.user, "is_superuser", False):
            return ours
        system = [{**app, "name": gettext("System · %(app)s") % {"app": app["name"]}}
                  for app in apps if app["app_label"] in SYSTEM_APPS]
        return ours + system

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        from .operators import operators_home  # imports models: only once the apps are ready

        return super().index(request, {**(extra_context or {}), "attention": operators_home()})


class TrustGuardAdminConfig(AdminConfig):
    default_site = "dashboard.admin_site.TrustGuardAdminSite"
