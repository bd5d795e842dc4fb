"""JSON helpers shared by the audit chain and the outbox."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


def to_jsonable(value: Any) -> Any:
    """Round-trip through JSON so what we store (and hash) is exactly what the database gives back."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace. Input to hashes and signatures."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
