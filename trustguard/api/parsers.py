"""The API's JSON parser: DRF's, plus the limits PostgreSQL and Python need on every input, and an object
at the top (a `null`, array or scalar body is a 400 naming it, whatever the view).

Applied to every app's API through DEFAULT_PARSER_CLASSES, so no view has to remember them.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32
# PostgreSQL refuses NUL in text and jsonb; lone surrogates cannot be encoded as UTF-8 at all.
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def check_json_value(data: Any) -> str | None:
    """Why `data` cannot be stored as-is, or None. Iterative: a deep document cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, str):
            if _BAD_CHARS.search(value):
                return "strings may not contain NUL characters or unpaired surrogates"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return "numbers must be finite"
        elif isinstance(value, dict):
            for key, item in value.items():
                if _BAD_CHARS.search(key):
                    return "keys may not contain NUL characters or unpaired surrogates"
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a number"


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels") from None
        problem = check_json_value(data)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        if not isinstance(data, dict):
            # Every request body of the API is an object; `null`, `[]`, `"x"` or `1` would otherwise reach
            # serializers and views that (rightly) expect a mapping.
            raise ValidationError({"_": [f"The request body must be a JSON object, not {_json_kind(data)}."]})
        return data
