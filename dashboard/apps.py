from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The approvers' pages, template tags and queue cards; no models, no business rule."""

    name = "dashboard"
