"""Small portable SQL expressions the metrics and report queries need (PostgreSQL first, SQLite correct too)."""

from __future__ import annotations

from typing import Any

from django.db.models import Aggregate, CharField, DurationField, Expression, FloatField, Func


class Seconds(Func):
    """Seconds from `start` to `end` as a float (NULL when either is NULL)."""

    output_field = FloatField()
    arity = 2

    def __init__(self, end: Any, start: Any, **extra: Any) -> None:
        super().__init__(end, start, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))",
                           arg_joiner=" - ", **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # julianday() parses Django's stored 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) text.
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s)) * 86400.0)",
                           arg_joiner=") - julianday(", **extra)


class UuidText(Func):
    """A UUID column as the canonical hyphenated text that audit rows store in target_id."""

    output_field = CharField()
    arity = 1

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="(%(expressions)s)::text", **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django keeps UUIDs on SQLite as 32 hex characters without hyphens.
        x = "%(expressions)s"
        template = (f"lower(substr({x},1,8)||'-'||substr({x},9,4)||'-'||substr({x},13,4)||'-'"
                    f"||substr({x},17,4)||'-'||substr({x},21,12))")
        return self.as_sql(compiler, connection, template=template, **extra)


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate percentile_cont(p) WITHIN GROUP (ORDER BY expr)."""

    function = "percentile_cont"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Expression | str, percentile: float, **extra: Any) -> None:
        if not 0.0 <= percentile <= 1.0:
            raise ValueError("percentile must be within 0..1")
        super().__init__(expression, percentile=float(percentile), **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        raise NotImplementedError("SQLite has no percentile_cont; escalations.metrics.percentiles falls back to ranks")


class SecondsInterval(Func):
    """A number of seconds as a duration: an interval on PostgreSQL, microseconds on SQLite."""

    output_field = DurationField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="make_interval(secs => %(expressions)s)", **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="CAST((%(expressions)s) * 1000000 AS INTEGER)", **extra)
