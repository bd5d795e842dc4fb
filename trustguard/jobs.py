"""Periodic jobs in one registry: beat runs each on its schedule, `run_sweeps` runs them all once.

An app registers its jobs in `<app>/jobs.py` with @periodic_job and imports that module in its
AppConfig.ready(). A job is a plain function returning a short summary of what it did; it must be
safe to run twice at once (claim rows with SKIP LOCKED or conditional updates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import context

JobFunc = Callable[[], str]


@dataclass(frozen=True)
class Job:
    name: str
    func: JobFunc
    order: int


_REGISTRY: dict[str, Job] = {}


def periodic_job(name: str, *, order: int = 100) -> Callable[[JobFunc], JobFunc]:
    """Register `func` as the job `name`; lower `order` runs first in run_sweeps."""

    def decorator(func: JobFunc) -> JobFunc:
        _REGISTRY[name] = Job(name=name, func=func, order=order)
        return func

    return decorator


def registered_jobs() -> list[Job]:
    return sorted(_REGISTRY.values(), key=lambda job: (job.order, job.name))


def run_job(name: str) -> str:
    try:
        job = _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no periodic job named {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    if context.current() is not None:  # a request, or a Celery task (bound by trustguard.celery_context)
        return job.func()
    # run_sweeps or a direct call: give the run its own correlation id, so its audit rows and log lines group.
    token = context.bind(context.RequestContext(request_id=context.new_request_id()))
    try:
        return job.func()
    finally:
        context.reset(token)
