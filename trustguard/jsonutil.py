"""JSON helpers shared by the audit chain and the outbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


def _encode_with(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """encoder.encode, without building the C encoder again on every call (which JSONEncoder.encode does).

    The same text; the one difference is that a circular structure raises RecursionError instead of
    ValueError (no markers are kept). The batch writers encode several values per row, thousands of rows.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.indent is not None:
        return encoder.encode
    strings = json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring
    c_encode = make(None, encoder.default, strings, None, encoder.key_separator, encoder.item_separator,
                    encoder.sort_keys, encoder.skipkeys, encoder.allow_nan)

    def encode(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return encode


def json_datetime(value: datetime) -> str:
    """A datetime as DjangoJSONEncoder writes it (ISO 8601, milliseconds, "Z" for UTC).

    Remembered for UTC values (what the database and timezone.now() give): a sweep writes each row's
    deadlines into its event and into its audit state several times. (Only UTC: an equal instant in
    another zone hashes the same but is written with its own offset.)
    """
    return _utc_json(value) if value.tzinfo is UTC else _DJANGO.default(value)


@lru_cache(maxsize=4096)
def _utc_json(value: datetime) -> str:
    encoded: str = _DJANGO.default(value)
    return encoded


class _Encoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        return json_datetime(o) if type(o) is datetime else super().default(o)


_DJANGO = DjangoJSONEncoder()

json_text = _encode_with(_Encoder())
json_text.__doc__ = "The JSON text a JSONField would store for a value (the same text as to_jsonable's round trip)."


def to_jsonable(value: Any) -> Any:
    """Round-trip through JSON so what we store (and hash) is exactly what the database gives back."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


canonical_json = _encode_with(json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False))
canonical_json.__doc__ = "Deterministic JSON: sorted keys, no whitespace. Input to hashes and signatures."
