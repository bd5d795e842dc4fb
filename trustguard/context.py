"""Per-request context (correlation id, client address) carried in contextvars.

The middleware sets it for web requests; Celery tasks set their own. Services read it when
they write audit rows, so a correlation id flows from the request to the audit log and logs.
"""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    ip: str | None = None
    user_agent: str = ""


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("trustguard_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str:
    ctx = _current.get()
    return ctx.request_id if ctx else "-"


def bind(ctx: RequestContext | None) -> contextvars.Token[RequestContext | None]:
    return _current.set(ctx)


def reset(token: contextvars.Token[RequestContext | None]) -> None:
    _current.reset(token)
