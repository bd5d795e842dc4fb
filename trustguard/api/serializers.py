"""Base input serializer: unknown keys and wrong JSON types are errors, never silently coerced.

DRF on its own accepts `"reason": 123` as "123", `"flag": "yes"` as True and ignores unknown keys;
a vendor's typo (`"ammount"`) would then pass unnoticed. StrictSerializer refuses all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


def _type_error(field: serializers.Field[Any, Any, Any, Any], value: Any) -> Any:
    """The error for `value` of the wrong JSON type for `field`, or None."""
    if value is None or isinstance(field, serializers.Serializer):
        return None  # null: DRF's allow_null decides; nested serializers check themselves
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Expected true or false."
    if isinstance(field, serializers.IntegerField):
        return None if isinstance(value, int) and not isinstance(value, bool) else "Expected an integer."
    if isinstance(field, serializers.CharField) and isinstance(value, str) and field.max_length is not None \
            and len(value) > field.max_length:
        # Before DRF trims: the schema's maxLength is of what was sent (and str.strip() takes control characters).
        return f"Ensure this field has no more than {field.max_length} characters."
    if isinstance(field, (serializers.CharField, serializers.ChoiceField, serializers.DateTimeField,
                          serializers.DateField, serializers.UUIDField)):
        return None if isinstance(value, str) else "Expected a string."
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        child_errors = {i: [err] for i, item in enumerate(value) if (err := _type_error(field.child, item))}
        return child_errors or None
    return None


class StrictSerializer(serializers.Serializer[Any]):
    """An input serializer that rejects unknown keys and values of the wrong JSON type (400)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors: dict[str, Any] = {}
            writable = {name for name, field in self.fields.items() if not field.read_only}
            for key in data:
                if key not in writable:
                    errors[key] = ["Unknown field."]
                elif (problem := _type_error(self.fields[key], data[key])) is not None:
                    errors[key] = problem if isinstance(problem, dict) else [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: 2.5, 2.0, "2" and true are refused (amounts are never floats)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONObjectField(serializers.DictField):
    """A free-form JSON object (payload, execution result)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.JSONField(), **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        return dict(data)

    def to_representation(self, value: Any) -> Any:
        return value


def reject_unknown_query_params(query_params: Mapping[str, Any], allowed: set[str]) -> None:
    """A misspelt filter (`?stauts=pending`) is a 400, not a silently unfiltered list."""
    unknown = sorted(set(query_params) - allowed)
    if unknown:
        raise serializers.ValidationError({name or "(empty name)": ["Unknown query parameter."] for name in unknown})
