"""Keyset (cursor) pagination on (sort key, id), stable under inserts, nulls last.

DRF's CursorPagination cannot order on a nullable column (closed escalations have no deadline),
so this one encodes the last row's (key, id) and continues strictly after it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, Q, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from trustguard.errors import ValidationFailed

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


@dataclass
class Page:
    items: list[Any]
    next: str | None


def _encode(key: datetime | None, pk: Any) -> str:
    raw = json.dumps([key.isoformat() if key else None, str(pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime | None, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, pk = json.loads(raw)
        parsed = parse_datetime(key) if key is not None else None
        if (key is not None and parsed is None) or not isinstance(pk, str):
            raise ValueError
        return parsed, pk
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("the cursor is invalid; use the `next` link as given",
                               errors={"cursor": ["Invalid cursor."]}) from None


def parse_limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if not raw:  # absent, or empty (= not given, as for every optional query parameter)
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be a whole number from 1 to {MAX_LIMIT}",
                               errors={"limit": [f"A whole number from 1 to {MAX_LIMIT}."]})
    return int(raw)


def keyset_page(request: Request, queryset: QuerySet[Any], *, key: str) -> Page:
    """One page of `queryset` ordered by (`key` ascending nulls last, id)."""
    limit = parse_limit(request)
    qs = queryset.order_by(F(key).asc(nulls_last=True), "id")
    cursor = request.query_params.get("cursor")
    if cursor:
        after_key, raw_pk = _decode(cursor)
        try:
            after_pk = queryset.model._meta.pk.to_python(raw_pk)
        except DjangoValidationError:
            raise ValidationFailed("the cursor is invalid; use the `next` link as given",
                                   errors={"cursor": ["Invalid cursor."]}) from None
        if after_key is None:
            qs = qs.filter(Q(**{f"{key}__isnull": True}, id__gt=after_pk))
        else:
            qs = qs.filter(Q(**{f"{key}__gt": after_key}) | Q(**{key: after_key}, id__gt=after_pk)
                           | Q(**{f"{key}__isnull": True}))
    items = list(qs[: limit + 1])
    next_url = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        next_url = replace_query_param(request.build_absolute_uri(), "cursor", _encode(getattr(last, key), last.pk))
    return Page(items=items, next=next_url)
