"""Links that leave the server (email, SMS, in-app, push): absolute, on TRUSTGUARD_SITE_URL."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def absolute_url(path: str) -> str:
    """TRUSTGUARD_SITE_URL + an absolute path ("/e/<id>/")."""
    return settings.SITE_URL.rstrip("/") + "/" + path.lstrip("/")


def case_url(escalation_id: object) -> str:
    """The case page a person opens from a message (the sign-in page sends them back to it)."""
    return absolute_url(reverse("dashboard:detail", args=[str(escalation_id)]))
