"""Links that leave the server (email, SMS, in-app, push): absolute, on TRUSTGUARD_SITE_URL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.crypto import salted_hmac

# A dedicated salt: a token signed for anything else (an attachment link, a session) never opens a status page.
_REQUESTER_SALT = "trustguard.links.requester-status"


def absolute_url(path: str) -> str:
    """TRUSTGUARD_SITE_URL + an absolute path ("/e/<id>/")."""
    return settings.SITE_URL.rstrip("/") + "/" + path.lstrip("/")


def case_url(escalation_id: object) -> str:
    """The case page a person opens from a message (the sign-in page sends them back to it)."""
    return absolute_url(reverse("dashboard:detail", args=[str(escalation_id)]))


def requester_email_digest(email: str) -> str:
    """Who a status link was made for, without the email itself (the token is readable by whoever holds it)."""
    return salted_hmac(_REQUESTER_SALT, email.strip().lower(), algorithm="sha256").hexdigest()[:32]


def requester_status_url(escalation_id: object, email: str) -> str:
    """The read-only status page of a case for a requester known only by email (no account: no case page).
    Signed for that case and that email; it works for TRUSTGUARD_REQUESTER_LINK_DAYS."""
    token = signing.TimestampSigner(salt=_REQUESTER_SALT).sign_object(
        {"e": str(escalation_id), "m": requester_email_digest(email)})
    return absolute_url(reverse("dashboard:requester_status", args=[token]))


class RequesterLinkExpired(Exception):
    pass


class RequesterLinkInvalid(Exception):
    pass


def requester_status_claims(token: str) -> tuple[str, str]:
    """(escalation id, email digest) of a status link; RequesterLinkExpired past its days, RequesterLinkInvalid for
    anything we did not sign with this salt."""
    try:
        data: Any = signing.TimestampSigner(salt=_REQUESTER_SALT).unsign_object(
            token, max_age=timedelta(days=settings.REQUESTER_LINK_DAYS))
    except signing.SignatureExpired as exc:
        raise RequesterLinkExpired from exc
    except (signing.BadSignature, ValueError) as exc:  # ValueError: a valid signature over a body that is not JSON
        raise RequesterLinkInvalid from exc
    if not isinstance(data, dict) or not isinstance(data.get("e"), str) or not isinstance(data.get("m"), str):
        raise RequesterLinkInvalid
    return data["e"], data["m"]
