"""Attachments listed in an escalation's payload (a receipt, a screening report), served by signed links.

A source lists them as ``payload["attachments"] = [{"name", "content_type"?, "content_base64" | "url"}]``.
A link is signed for one person, one escalation and one attachment, and lives five minutes, so a
link forwarded to someone else, or found in a browser history later, opens nothing.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core import signing

from accounts.models import User

from .models import Escalation

LINK_TTL = timedelta(minutes=5)
_SALT = "trustguard.escalations.attachment"
# Served inline-safe types; anything else is sent as an opaque download.
SAFE_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "text/csv"}


@dataclass(frozen=True)
class Attachment:
    index: int
    name: str
    content_type: str
    content: bytes | None = None
    url: str = ""

    @property
    def size(self) -> int | None:
        return len(self.content) if self.content is not None else None


def attachments_of(escalation: Escalation) -> list[Attachment]:
    """The well-formed attachments of the payload, in order (malformed entries are skipped, never a 500)."""
    items = escalation.payload.get("attachments") if isinstance(escalation.payload, dict) else None
    found: list[Attachment] = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        name = str(item.get("name") or f"attachment-{i + 1}")[:200]
        content_type = str(item.get("content_type") or "application/octet-stream")[:100]
        content = None
        if isinstance(item.get("content_base64"), str):
            try:
                content = base64.b64decode(item["content_base64"], validate=True)
            except (binascii.Error, ValueError):
                continue
        url = str(item.get("url") or "")
        if content is None and urlsplit(url).scheme not in ("http", "https"):
            continue
        found.append(Attachment(index=i, name=name, content_type=content_type, content=content, url=url))
    return found


def attachment_token(*, user: User, escalation: Escalation, index: int) -> str:
    return signing.TimestampSigner(salt=_SALT).sign_object({"u": user.pk, "e": str(escalation.pk), "i": index})


class LinkExpired(Exception):
    pass


class LinkRefused(Exception):
    pass


def attachment_check(*, token: str, user: User, escalation: Escalation, index: int) -> None:
    """Raise LinkExpired past five minutes, LinkRefused for a link of another person or attachment."""
    try:
        data: Any = signing.TimestampSigner(salt=_SALT).unsign_object(token, max_age=LINK_TTL)
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except signing.BadSignature as exc:
        raise LinkRefused from exc
    if data != {"u": user.pk, "e": str(escalation.pk), "i": index}:
        raise LinkRefused
