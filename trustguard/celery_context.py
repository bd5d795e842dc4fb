"""Correlation ids across Celery: a task runs under the id of whoever queued it, or a fresh one.

The publisher puts its current id in a message header; the worker binds a context with it
before the task runs (so audit rows and log lines carry it) and unbinds it afterwards.
"""

from __future__ import annotations

from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

from . import context

# Not "correlation_id": Celery already uses that name (for the task id) on every request.
HEADER = "trustguard_request_id"
_tokens: dict[str, Any] = {}


@before_task_publish.connect(dispatch_uid="trustguard_correlation_publish")
def add_correlation_header(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    ctx = context.current()
    if headers is not None and ctx is not None:
        headers.setdefault(HEADER, ctx.request_id)


@task_prerun.connect(dispatch_uid="trustguard_correlation_prerun")
def bind_task_context(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request = task.request if task is not None else None
    # Custom headers show up as request attributes (protocol 2) or under request.headers.
    parent = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    if not parent:
        # An eager task runs inline, in its caller's context: keep the caller's id.
        current = context.current()
        parent = current.request_id if current else None
    request_id = parent if isinstance(parent, str) and parent else context.new_request_id()
    _tokens[task_id or ""] = context.bind(context.RequestContext(request_id=request_id))


@task_postrun.connect(dispatch_uid="trustguard_correlation_postrun")
def unbind_task_context(task_id: str | None = None, **kwargs: Any) -> None:
    token = _tokens.pop(task_id or "", None)
    if token is not None:
        try:
            context.reset(token)
        except ValueError:  # reset from another context (should not happen): just clear
            context.bind(None)
