"""The live queue's stream: server-sent events that tell an open queue page to fetch itself again (trustguard/live.py).

The stream carries no case data: only ``changed``. The page then asks the queue view, which reads through
visible_to like every other page, so what the stream says can never show a case its person may not see.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.db import connections
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from accounts.actors import Actor
from accounts.roles import Capability
from accounts.web import TenantRequest, tenant_view
from trustguard.live import StreamSlots, live_stream, live_token, topic_key

logger = logging.getLogger(__name__)


def live_keys(actor: Actor, scope: str) -> list[str]:
    """The topics this person's queue listens to: everything in the tenant when they look at everything (and may),
    else their roles and their own requests (as visible_to scopes them)."""
    assert actor.user is not None
    tenant_id = actor.tenant.pk
    if scope == "all" and actor.can(Capability.ESCALATION_VIEW_ALL):
        return [topic_key(tenant_id, "all")]
    topics = [f"role:{role}" for role in sorted(actor.roles)] + [f"user:{actor.user.pk}"]
    return [topic_key(tenant_id, topic) for topic in topics]


def live_context(actor: Actor, scope: str) -> dict[str, Any]:
    """What the queue page needs to open its stream: the URL, with the position the page was rendered at."""
    try:
        since = live_token(live_keys(actor, scope))
    except Exception:  # the cache is down: the page still renders; its stream (or its poller) catches up
        logger.warning("live queue: no position for the page", exc_info=True)
        since = ""
    return {"live_url": f"{reverse('dashboard:queue_live')}?{urlencode({'scope': scope, 'since': since})}"}


class _StreamBody:
    """The response body: holds one of the process's stream slots until the server closes the response (also when
    the browser went away before the first byte)."""

    def __init__(self, keys: list[str], since: str) -> None:
        self.keys, self.since, self.closed = keys, since, False

    def __iter__(self) -> Iterator[bytes]:
        # The stream reads only the cache: give the database connection back rather than hold it for minutes
        # (not inside a transaction: a test's, since requests are not atomic here).
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close()
        for chunk in live_stream(self.keys, since=self.since):
            yield chunk.encode()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            StreamSlots.give_back()


@require_GET
@tenant_view
def queue_live(request: TenantRequest) -> HttpResponseBase:
    """text/event-stream for the queue page; 204 (the page polls instead) when this process has no slot free."""
    actor: Actor = request.actor
    if not (actor.can(Capability.ESCALATION_VIEW) or actor.can(Capability.ESCALATION_VIEW_ALL)):
        return HttpResponse(status=204)
    keys = live_keys(actor, request.GET.get("scope", "mine"))
    if not StreamSlots.take():
        return HttpResponse(status=204)
    body = _StreamBody(keys, request.headers.get("Last-Event-ID") or request.GET.get("since", ""))
    # tenant_view wraps views that return an HttpResponse; a streaming one serves as well.
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
