"""The operators' home in the admin: what needs attention now, across tenants.

Dead letters (notifications), cases the sweeps have not moved, stages nobody can decide and open obligations
(escalations.attention), and providers that fail their check or whose circuit breaker is open
(notifications.health.provider_health_rows, the same rows as /healthz and the admin's provider page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from accounts.roles import role_label
from escalations.attention import stuck_escalations, unmet_obligations, unstaffed_stages
from notifications.health import provider_health_rows
from notifications.selectors import dead_letters

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


def open_obligations() -> tuple[int, list[str]]:
    """Open or overdue conditions of approved cases, as (count, a few lines)."""
    found = unmet_obligations()
    return len(found), [f"{c['status'].capitalize()}: \"{c['text']}\" on {e.type} {e.source_entity_id} ({e.tenant.slug})"
                        + (f", due {c['due_at'][:16].replace('T', ' ')}" if c.get("due_at") else "")
                        for e, c in found[:SHOWN]]


def operators_home(*, now: datetime | None = None) -> list[Attention]:
    now = now or timezone.now()
    dead = dead_letters().select_related("tenant").order_by("-dead_at")
    dead_count = dead.count()
    panels = [Attention(
        key="dead-letters", title=gettext("Dead letters"), count=dead_count,
        url=reverse("admin:notifications_delivery_changelist") + "?status__exact=dead",
        items=[f"{d.get_kind_display()} to {d.tenant.slug}, {d.attempts} attempts"
               + (f", last HTTP {d.last_status_code}" if d.last_status_code else "") for d in dead[:SHOWN]],
        hint=gettext("Deliveries that failed every retry: fix the receiver, then replay them."))]

    stuck = stuck_escalations(now=now)
    stuck_count = stuck.count()
    panels.append(Attention(
        key="stuck", title=gettext("Stuck cases"), count=stuck_count,
        url=reverse("admin:escalations_escalation_changelist"),
        items=[f"{e.type} {e.source_entity_id} ({e.tenant.slug}): {e.status}, deadline "
               f"{timezone.localtime(e.next_deadline_at):%d %b %H:%M}" for e in stuck[:SHOWN]],
        hint=gettext("A deadline passed over 10 minutes ago and nothing moved: are the sweeps (beat) running?")))

    unstaffed = unstaffed_stages()
    panels.append(Attention(
        key="unstaffed", title=gettext("Stages nobody can decide"), count=len(unstaffed),
        url=reverse("admin:accounts_membership_changelist"),
        items=[f"{role_label(role)} in {e.tenant.slug} (e.g. {e.type} {e.source_entity_id})" for e, role in unstaffed[:SHOWN]],
        hint=gettext("Open cases wait on a role with no active member: add a person with that role.")))

    count, lines = open_obligations()
    panels.append(Attention(key="obligations", title=gettext("Open obligations"), count=count,
                            url=reverse("admin:escalations_escalation_changelist") + "?status__exact=approved",
                            items=lines, hint=gettext("Conditions of approvals that are open or overdue: the change "
                                                      "cannot be executed until each is met or waived.")))

    failing = [row for row in provider_health_rows() if row.status != "ok"]
    panels.append(Attention(key="providers", title=gettext("Failing providers"), count=len(failing),
                            url=reverse("admin:notifications_delivery_providers"),
                            items=[f"{row.label}: {'; '.join(row.problems)}" for row in failing[:SHOWN]],
                            hint=gettext("A provider failed its check, or its circuit breaker is open: "
                                              "deliveries wait until it recovers.")))
    return panels
