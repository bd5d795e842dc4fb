"""The one keyset (cursor) paginator: every list pages on (sort key, id), stable under inserts, nulls last.

Used by the API lists (GET /escalations, GET /audit) and the dashboard queue. DRF's CursorPagination
cannot order on a nullable column (closed escalations have no deadline), so this one encodes the last
row's (key, id) and continues strictly after it with a row comparison, `(key, id) > (%s, %s)`, which
PostgreSQL answers by walking the queue index from the cursor; the equivalent OR of two comparisons
makes it fall back to a bitmap scan and a sort (docs/PERFORMANCE.md, "Approver queue (bench 3)").
Rows with a NULL key come after all others, in id order, as a branch of their own: a `key IS NULL`
OR'ed into the row comparison would cost the index walk again. A list whose rows are a union of index
ranges (a person's queue over several roles) is paged one range at a time and merged (`branches`).
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
from django.db import connections
from django.db.models import F, Q, QuerySet
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

    def __init__(self, *, key: str, descending: bool = False, default_limit: int = 25, max_limit: int = 100,
                 branches: Sequence[Q] = ()) -> None:
        self.key, self.descending, self.branches = key, descending, branches
        self.default_limit, self.max_limit = default_limit, max_limit
        self.request: Request | None = None
        self.page: Page | None = None

    # --- DRF ---------------------------------------------------------------------------------------------

    def paginate_queryset(self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: Any = None) -> list[Any]:
        if not isinstance(queryset, QuerySet):
            raise TypeError("keyset pagination pages a QuerySet")  # a list has no index to walk
        self.request = request
        self.page = self.page_of(queryset, cursor=request.query_params.get("cursor", ""), limit=self.get_limit(request),
                                 branches=self.branches)
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

    def page_of(self, queryset: QuerySet[Any], *, cursor: str = "", limit: int, branches: Sequence[Q] = (),
                fields: Sequence[str] = ()) -> Page:
        """Up to `limit` rows after `cursor`: model instances, or dicts of `fields` (.values()); ValidationFailed if
        the cursor is forged.

        `branches`: Qs whose union is the queryset's rows, each one range of an index (e.g. one per role of
        (tenant, role, key, id)). Several are each walked from the cursor and merged: an IN over the index's second
        column gives PostgreSQL no order, so it would sort all of those roles' rows for each page, or walk the
        tenant's whole list filtering out everybody else's.
        """
        pk = queryset.model._meta.pk
        assert pk is not None
        after = self.decode(cursor, pk) if cursor else None  # decoded first: a forged cursor never reaches SQL
        if len(branches) > 1:
            rows = self._merged(queryset, branches, after, limit + 1, fields)
        else:
            queryset = queryset.filter(*branches)
            rows = self._walk(queryset.values(*fields) if fields else queryset, after, limit + 1)
        if len(rows) <= limit:
            return Page(items=rows)
        rows = rows[:limit]
        return Page(items=rows, next_cursor=self.encode(rows[-1]))

    def ordering(self, model: Any) -> tuple[OrderBy, str]:
        """(key, id), NULL keys last; a key that cannot be NULL is ordered without saying so, as its index is:
        `DESC NULLS LAST` is not the order of a plain `DESC` index (PostgreSQL puts NULLs first there), so
        the planner would sort the whole list instead of walking the index (it did, for GET /audit)."""
        nulls = {"nulls_last": True} if model._meta.get_field(self.key).null else {}
        return OrderBy(F(self.key), descending=self.descending, **nulls), "-id" if self.descending else "id"

    def _ranges(self, queryset: QuerySet[Any], after: tuple[Any, Any] | None) -> list[QuerySet[Any]]:
        """The rows after `after` as ordered index ranges, one after the other: the keyed ones after the cursor by
        the row comparison, then the NULL-keyed ones by id (a `key IS NULL` OR'ed into the row comparison would
        cost the index walk)."""
        nullable = queryset.model._meta.get_field(self.key).null
        if after is None:
            return [queryset.order_by(*self.ordering(queryset.model))]
        after_key, after_pk = after
        if after_key is None:  # already among the NULLs: only their range is left
            return [self._null_branch(queryset, after_pk=after_pk)]
        compare = RowBefore if self.descending else RowAfter
        keyed = queryset.filter(compare(Tuple(F(self.key), F("id")), (after_key, after_pk)))
        return [keyed.order_by(*self.ordering(queryset.model))] + ([self._null_branch(queryset)] if nullable else [])

    def _walk(self, queryset: QuerySet[Any], after: tuple[Any, Any] | None, n: int) -> list[Any]:
        """The first `n` rows after `after`, reading the next range only while the page is not full."""
        rows: list[Any] = []
        for part in self._ranges(queryset, after):
            if len(rows) < n:
                rows += list(part[: n - len(rows)])
        return rows

    def _merged(self, queryset: QuerySet[Any], branches: Sequence[Q], after: tuple[Any, Any] | None, n: int,
                fields: Sequence[str]) -> list[Any]:
        """The first `n` rows of the branches' union, each branch read by its own short index walks (up to `n` rows of
        each range). On PostgreSQL one statement: the ranges' ids as a UNION ALL of `ORDER BY ... LIMIT n`
        subqueries, the page's rows by those ids. SQLite allows no LIMIT inside a UNION: there the ranges are read
        one by one and merged here in (key, id) order without repeats (a row may be in two branches)."""
        base = queryset.prefetch_related(None)
        parts = [part for branch in branches for part in self._ranges(base.filter(branch), after)]
        if connections[queryset.db].features.supports_slicing_ordering_in_compound:
            first, *rest = [part.values("id")[:n] for part in parts]
            ids: Any = first.union(*rest, all=True)
        else:
            keys: dict[Any, Any] = {}
            for part in parts:
                keys.update((pk, value) for value, pk in part.values_list(self.key, "id")[:n])
            if self.descending:  # NULLs last either way; ties on the key by id, in the list's direction
                order = sorted(keys.items(), key=lambda kv: (kv[1] is not None, 0 if kv[1] is None else kv[1], kv[0]),
                               reverse=True)
            else:
                order = sorted(keys.items(), key=lambda kv: (kv[1] is None, 0 if kv[1] is None else kv[1], kv[0]))
            ids = [pk for pk, _ in order[:n]]
            if not ids:
                return []
        rows = queryset.filter(pk__in=ids).order_by(*self.ordering(queryset.model))
        return list((rows.values(*fields) if fields else rows)[:n])

    def _null_branch(self, queryset: QuerySet[Any], *, after_pk: Any = None) -> QuerySet[Any]:
        """The rows without a key, by id. Ordered by (key, id) all the same: PostgreSQL does not see that `key IS NULL`
        leaves an index on (..., key, id) in id order, and would walk the primary key (every row) or sort instead."""
        qs = queryset.filter(**{f"{self.key}__isnull": True})
        if after_pk is not None:
            qs = qs.filter(id__lt=after_pk) if self.descending else qs.filter(id__gt=after_pk)
        return qs.order_by(*self.ordering(queryset.model))

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
