"""The one keyset (cursor) paginator: every list pages on (sort key, id), stable under inserts, nulls last.

Used by the API lists (GET /escalations, GET /audit) and the dashboard queue. DRF's CursorPagination
cannot order on a nullable column (closed escalations have no deadline), so this one encodes the last
row's (key, id) and continues strictly after it with a row comparison, `(key, id) > (%s, %s)`, which
PostgreSQL answers by walking the queue index from the cursor; the equivalent OR of two comparisons
makes it fall back to a bitmap scan and a sort (docs/PERFORMANCE.md, "Approver queue (bench 3)").
Rows with a NULL key come after all others, in id order, as a branch of their own: a `key IS NULL`
OR'ed into the row comparison would cost the index walk again.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, QuerySet
from django.db.models.expressions import OrderBy
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan, TupleLookupMixin
from django.utils.dateparse import parse_datetime
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from trustguard.errors import ValidationFailed

INVALID_CURSOR = "the cursor is invalid; use the `next` link as given"
BIGINT = 2**63


class _RowComparison:
    """`(a, b) > (x, y)` sent as a row comparison on every engine.

    Django 5.2 writes tuple lookups on SQLite as the OR form, because SQLite's tuple IN needs a VALUES
    list; SQLite compares row values since 3.15, and the row form is the one a planner walks an index with.
    """

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        return super(TupleLookupMixin, self).as_sql(compiler, connection)  # type: ignore[misc]  # skips TupleLookupMixin on purpose


class RowAfter(_RowComparison, TupleGreaterThan):
    pass


class RowBefore(_RowComparison, TupleLessThan):
    pass


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None = None


class KeysetPagination(BasePagination):
    """One page of a queryset ordered by (`key` nulls last, id), ascending or (`descending`) newest first.

    The cursor on the wire is opaque: url-safe base64 of `[key as ISO 8601 in UTC or null, id]`, the same
    bytes the lists gave out before they shared this class, so a `next` link taken earlier still works.
    """

    def __init__(self, *, key: str, descending: bool = False, default_limit: int = 25, max_limit: int = 100) -> None:
        self.key, self.descending = key, descending
        self.default_limit, self.max_limit = default_limit, max_limit
        self.request: Request | None = None
        self.page: Page | None = None

    # --- DRF ---------------------------------------------------------------------------------------------

    def paginate_queryset(self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: Any = None) -> list[Any]:
        if not isinstance(queryset, QuerySet):
            raise TypeError("keyset pagination pages a QuerySet")  # a list has no index to walk
        self.request = request
        self.page = self.page_of(queryset, cursor=request.query_params.get("cursor", ""), limit=self.get_limit(request))
        return self.page.items

    def get_next_link(self) -> str | None:
        if self.page is None or self.page.next_cursor is None or self.request is None:
            return None
        return replace_query_param(self.request.build_absolute_uri(), "cursor", self.page.next_cursor)

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.get_next_link(), "results": data})

    def get_limit(self, request: Request) -> int:
        errors: dict[str, list[str]] = {}
        limit = self.read_limit(request.query_params, errors)
        if errors:
            raise ValidationFailed(f"limit must be a whole number from 1 to {self.max_limit}", errors=errors)
        return limit

    def read_limit(self, params: Mapping[str, str], errors: dict[str, list[str]]) -> int:
        """The page size asked for (the default when absent or empty); a bad one goes into `errors`."""
        raw = params.get("limit")
        if not raw:  # absent, or empty (= not given, as for every optional query parameter)
            return self.default_limit
        # Not str.isdigit(): it says yes to "²", which int() refuses.
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= self.max_limit:
            errors["limit"] = [f"A whole number from 1 to {self.max_limit}."]
            return self.default_limit
        return int(raw)

    # --- the keyset --------------------------------------------------------------------------------------

    def page_of(self, queryset: QuerySet[Any], *, cursor: str = "", limit: int) -> Page:
        """Up to `limit` rows (model instances or .values() dicts) after `cursor`; ValidationFailed if it is forged."""
        key, pk = self.key, queryset.model._meta.pk
        assert pk is not None
        by_key = OrderBy(F(key), descending=self.descending, nulls_last=True)
        by_id = "-id" if self.descending else "id"
        if not cursor:
            rows = list(queryset.order_by(by_key, by_id)[: limit + 1])
        else:
            after_key, after_pk = self.decode(cursor, pk)
            if after_key is None:  # already among the NULLs: only their branch is left
                rows = list(self._null_branch(queryset, after_pk=after_pk)[: limit + 1])
            else:
                compare = RowBefore if self.descending else RowAfter
                rows = list(queryset.filter(compare(Tuple(F(key), F("id")), (after_key, after_pk)))
                            .order_by(by_key, by_id)[: limit + 1])
                if len(rows) <= limit and queryset.model._meta.get_field(key).null:
                    rows += list(self._null_branch(queryset)[: limit + 1 - len(rows)])
        if len(rows) <= limit:
            return Page(items=rows)
        rows = rows[:limit]
        return Page(items=rows, next_cursor=self.encode(rows[-1]))

    def _null_branch(self, queryset: QuerySet[Any], *, after_pk: Any = None) -> QuerySet[Any]:
        qs = queryset.filter(**{f"{self.key}__isnull": True})
        if after_pk is not None:
            qs = qs.filter(id__lt=after_pk) if self.descending else qs.filter(id__gt=after_pk)
        return qs.order_by("-id" if self.descending else "id")

    def encode(self, row: Any) -> str:
        value, pk = (row[self.key], row["id"]) if isinstance(row, Mapping) else (getattr(row, self.key), row.pk)
        moment = value.astimezone(UTC).isoformat() if value is not None else None
        raw = json.dumps([moment, pk if isinstance(pk, int) else str(pk)]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str, pk_field: Any) -> tuple[datetime | None, Any]:
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) != 2:
                raise ValueError(cursor)
            moment, pk = raw
            if moment is not None:
                moment = parse_datetime(moment)
                if moment is None or moment.tzinfo is None:
                    raise ValueError(cursor)
                moment = moment.astimezone(UTC)  # OverflowError for 0001-01-01T00:00+01:00
            if isinstance(pk, bool) or not isinstance(pk, int | str):
                raise ValueError(cursor)
            pk = pk_field.to_python(pk)
            if isinstance(pk, int) and not -BIGINT <= pk < BIGINT:  # beyond bigint: the database would refuse it
                raise ValueError(cursor)
            return moment, pk
        except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError, DjangoValidationError):
            raise ValidationFailed(INVALID_CURSOR, errors={"cursor": ["Invalid cursor."]}) from None

    # --- OpenAPI -----------------------------------------------------------------------------------------

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {"name": "cursor", "required": False, "in": "query", "description": "Opaque; take it from the `next` link.",
             "schema": {"type": "string"}},
            {"name": "limit", "required": False, "in": "query",
             "description": f"Page size, 1-{self.max_limit} (default {self.default_limit}).", "schema": {"type": "integer"}},
        ]
