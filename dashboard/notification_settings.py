"""The person's notification settings page: channels, quiet hours (in the time zone they read times in, set on the
language page) with the critical-urgency override. The rule and the writes are notifications.preferences'; this page only asks."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy

from accounts.actors import Actor
from accounts.selectors import zone_of
from accounts.web import tenant_view
from notifications.models import Channel, QuietHoursChoice
from notifications.preferences import (
    ALWAYS_ON,
    PersonRules,
    notification_settings_get,
    notification_settings_update,
    quiet_hours_of,
)
from trustguard.errors import ValidationFailed

CHANNEL_LABELS = {"email": gettext_lazy("Email"), "sms": gettext_lazy("Text message (SMS)"),
                  "push": gettext_lazy("Push notifications on my devices")}
# QuietHoursChoice's words, translated (the model's labels are not marked: a change there would be a migration).
QUIET_HOURS_LABELS: dict[str, str | Promise] = {QuietHoursChoice.DEFAULT: gettext_lazy("My organisation's default"),
                                                QuietHoursChoice.OFF: gettext_lazy("None: notify me at any time"),
                                                QuietHoursChoice.CUSTOM: gettext_lazy("My own quiet hours")}


def _page(
    request: HttpRequest,
    actor: Actor,
    *,
    errors: dict[str, list[str]] | None = None,
    posted: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    assert actor.user is not None
    person, _ = notification_settings_get(user_id=actor.user.pk)
    rules = PersonRules.load([actor.user.pk], [actor.tenant.pk])
    defaults = rules.defaults.get(actor.tenant.pk)
    tenant_quiet = quiet_hours_of(None, defaults, zone_of(tenant=actor.tenant))
    channels = [
        {
            "value": c,
            "label": CHANNEL_LABELS.get(c, c.title()),
            "on": (posted or {}).get(f"channel_{c}", rules.channel_on(actor.user.pk, actor.tenant.pk, c)),
        }
        for c in Channel.values
        if c not in ALWAYS_ON
    ]
    context = {
        "person": person,
        "channels": channels,
        "choices": [(value, QUIET_HOURS_LABELS.get(value, label)) for value, label in QuietHoursChoice.choices],
        "errors": errors or {},
        "posted": posted or {},
        "tenant_quiet": tenant_quiet,
        "my_zone": zone_of(tenant=actor.tenant, user=actor.user).key,
        "tenant_critical_override": defaults.critical_override if defaults else True,
    }
    return render(request, "dashboard/notification_settings.html", context, status=status)


@tenant_view
def notification_settings(request: HttpRequest) -> HttpResponse:
    actor: Actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    assert actor.user is not None
    if request.method != "POST":
        return _page(request, actor)
    rules = PersonRules.load([actor.user.pk], [actor.tenant.pk])
    posted: dict[str, Any] = {
        "quiet_hours": request.POST.get("quiet_hours", QuietHoursChoice.DEFAULT),
        "quiet_start": request.POST.get("quiet_start", ""),
        "quiet_end": request.POST.get("quiet_end", ""),
        "critical_override": request.POST.get("critical_override") == "on",
    }
    # Only the channels the person changed become their own choice; the others keep following the defaults.
    changed: dict[str, bool] = {}
    for channel in (c for c in Channel.values if c not in ALWAYS_ON):
        on = request.POST.get(f"channel_{channel}") == "on"
        posted[f"channel_{channel}"] = on
        if on != rules.channel_on(actor.user.pk, actor.tenant.pk, channel) or channel in rules.chosen.get(actor.user.pk, {}):
            changed[channel] = on
    try:
        notification_settings_update(
            user_id=actor.user.pk,
            tenant_id=actor.tenant.pk,
            actor=actor,
            channels=changed,
            quiet_hours=posted["quiet_hours"],
            quiet_start=posted["quiet_start"] or None,
            quiet_end=posted["quiet_end"] or None,
            critical_override=posted["critical_override"],
        )
    except ValidationFailed as exc:
        return _page(request, actor, errors=dict(exc.errors or {}), posted=posted, status=400)
    messages.success(request, gettext("Your notification settings are saved."))
    return redirect("dashboard:notification_settings")
