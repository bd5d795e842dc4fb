"""What every escalation serializer shares: the integer bounds, ISO 8601 times, and RowOutput."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from rest_framework import serializers

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
TYPE_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


class RowOutput(serializers.Serializer[Any]):
    """An output whose declared fields are its response: the schema and the body come from one declaration.

    Each field is read from the row by the class's `get_<name>(row, context)` where there is one, else as the
    row's attribute of that name (a UUID as text; a datetime in ISO 8601 with Z). `render` builds the body
    without DRF's per-field machinery: the list endpoint is benchmarked, and field-by-field DRF rendering of
    prefetched rows is several times slower.
    """

    _readers: ClassVar[list[tuple[str, Callable[[Any, dict[str, Any]], Any]]]]

    @classmethod
    def readers(cls) -> list[tuple[str, Callable[[Any, dict[str, Any]], Any]]]:
        readers = cls.__dict__.get("_readers")
        if readers is None:
            readers = [(name, cls._reader(name, field)) for name, field in cls._declared_fields.items()]
            cls._readers = readers
        return readers

    @classmethod
    def _reader(cls, name: str, field: serializers.Field[Any, Any, Any, Any]) -> Callable[[Any, dict[str, Any]], Any]:
        explicit = getattr(cls, f"get_{name}", None)
        if explicit is not None:
            return cast(Callable[[Any, dict[str, Any]], Any], explicit)
        if isinstance(field, serializers.DateTimeField):
            return lambda row, context: iso(getattr(row, name))
        if isinstance(field, serializers.UUIDField):
            return lambda row, context: str(getattr(row, name))
        return lambda row, context: getattr(row, name)

    @classmethod
    def render(cls, row: Any, context: dict[str, Any] | None = None) -> dict[str, Any]:
        context = context or {}
        return {name: read(row, context) for name, read in cls.readers()}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return self.render(instance, dict(self.context))
