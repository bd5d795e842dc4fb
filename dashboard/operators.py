"""The operators' home in the admin: what needs attention now, across tenants.

Dead letters (notifications), cases the sweeps have not moved and stages nobody can decide (escalations),
providers whose circuit breaker is open (notifications.breakers), and open obligations through a hook that
the obligations work fills in (`open_obligations`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.roles import role_label
from escalations.attention import stuck_escalations, unstaffed_stages
from notifications.breakers import breaker_open_until
from notifications.selectors import dead_letters, webhook_endpoints_all

SHOWN = 5


@dataclass
class Attention:
    key: str
    title: str
    count: int | None  # None: not tracked in this installation
    url: str = ""
    items: list[str] = field(default_factory=list)
    hint: str = ""

    @property
    def ok(self) -> bool:
        return not self.count


def open_obligations() -> tuple[int, list[str]] | None:
    """HOOK: open or overdue obligations (approval conditions) as (count, a few lines); None until tracked."""
    return None


def _provider_targets() -> list[tuple[str, str]]:
    email = "email:" + settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
    targets = [(email, "Email"), (f"sms:{settings.SMS_PROVIDER}", "SMS provider")]
    targets += [(f"webhook:{e.pk}", f"Webhook {e.url} ({e.tenant.slug})") for e in webhook_endpoints_all()]
    return targets


def operators_home(*, now: datetime | None = None) -> list[Attention]:
    now = now or timezone.now()
    dead = dead_letters().select_related("tenant").order_by("-dead_at")
    dead_count = dead.count()
    panels = [Attention(
        key="dead-letters", title="Dead letters", count=dead_count,
        url=reverse("admin:notifications_delivery_changelist") + "?status__exact=dead",
        items=[f"{d.get_kind_display()} to {d.tenant.slug}, {d.attempts} attempts"
               + (f", last HTTP {d.last_status_code}" if d.last_status_code else "") for d in dead[:SHOWN]],
        hint="Deliveries that failed every retry: fix the receiver, then replay them.")]

    stuck = stuck_escalations(now=now)
    stuck_count = stuck.count()
    panels.append(Attention(
        key="stuck", title="Stuck cases", count=stuck_count,
        url=reverse("admin:escalations_escalation_changelist"),
        items=[f"{e.type} {e.source_entity_id} ({e.tenant.slug}): {e.status}, deadline "
               f"{timezone.localtime(e.next_deadline_at):%d %b %H:%M}" for e in stuck[:SHOWN]],
        hint="A deadline passed over 10 minutes ago and nothing moved: are the sweeps (beat) running?"))

    unstaffed = unstaffed_stages()
    panels.append(Attention(
        key="unstaffed", title="Stages nobody can decide", count=len(unstaffed),
        url=reverse("admin:accounts_membership_changelist"),
        items=[f"{role_label(role)} in {e.tenant.slug} (e.g. {e.type} {e.source_entity_id})" for e, role in unstaffed[:SHOWN]],
        hint="Open cases wait on a role with no active member: add a person with that role."))

    obligations = open_obligations()
    panels.append(Attention(key="obligations", title="Open obligations",
                            count=obligations[0] if obligations else None,
                            items=obligations[1] if obligations else [],
                            hint="Conditions attached to approvals that are open or overdue."
                            if obligations else "Not tracked in this installation yet."))

    open_breakers = []
    for target, label in _provider_targets():
        until = breaker_open_until(target)
        if until is not None:
            open_breakers.append(f"{label}: paused until {timezone.localtime(until):%H:%M:%S}")
    panels.append(Attention(key="providers", title="Failing providers", count=len(open_breakers),
                            url=reverse("admin:notifications_delivery_changelist"), items=open_breakers,
                            hint="A circuit breaker is open: deliveries to that target wait until it recovers."))
    return panels
