"""Who wants what, when: a person's channels and quiet hours, and their tenant's defaults. The one place of the rule.

- Channels: a person's own choice (ChannelPreference) wins; without one, the tenant's `channels_off` default; else on.
  The in-app inbox is always on (it is the record of what was asked).
- Quiet hours: the person's own hours, none, or (by default) their tenant's; in the zone the person reads times in
  (Recipient.time_zone, from accounts.selectors.zone_of: their own, else their tenant's, else the site's). A message
  that would go out in quiet hours is *deferred* to their end (its delivery's next_attempt_at), never dropped. A
  critical escalation goes through when the person (or, on the default, the tenant) lets it.
  Messages a person asked for themselves (a one-time code) are never held.

notifications.messages.dispatch_messages applies it to every relay batch (PersonRules.load: a few queries per batch).
The dashboard's settings page and the admin write through notification_settings_update / notification_defaults_update
(audited in the same transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from audit.actions import AuditAction
from audit.services import AuditActor, audit_record
from trustguard.errors import ValidationFailed

from .inbox import channel_preference_set
from .models import (
    Channel,
    ChannelPreference,
    PersonNotificationSettings,
    QuietHoursChoice,
    TenantNotificationDefaults,
)

ALWAYS_ON = frozenset({Channel.IN_APP.value})


@dataclass(frozen=True)
class QuietHours:
    """A daily window in a time zone; `start` > `end` crosses midnight (22:00 to 07:00)."""

    zone: ZoneInfo
    start: time
    end: time
    critical_override: bool = True

    def until(self, now: datetime) -> datetime | None:
        """When the quiet hours around `now` end; None when `now` is outside them."""
        if self.start == self.end:
            return None
        local = now.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        today = local.date()
        if self.start < self.end:
            inside, end_day = self.start <= clock < self.end, today
        else:
            inside = clock >= self.start or clock < self.end
            end_day = today + timedelta(days=1) if clock >= self.start else today
        if not inside:
            return None
        return datetime.combine(end_day, self.end, tzinfo=self.zone)


def quiet_hours_of(person: PersonNotificationSettings | None, defaults: TenantNotificationDefaults | None,
                   zone: ZoneInfo) -> QuietHours | None:
    """The quiet hours that apply to a person in a tenant (the rule of the module docstring), in `zone`."""
    if person is not None and person.quiet_hours == QuietHoursChoice.OFF:
        return None
    if person is not None and person.quiet_hours == QuietHoursChoice.CUSTOM:
        assert person.quiet_start is not None and person.quiet_end is not None  # a CheckConstraint says so
        return QuietHours(zone, person.quiet_start, person.quiet_end, person.critical_override)
    if defaults is None or not defaults.quiet_hours_enabled:
        return None
    assert defaults.quiet_start is not None and defaults.quiet_end is not None
    return QuietHours(zone, defaults.quiet_start, defaults.quiet_end, defaults.critical_override)


@dataclass
class PersonRules:
    """Channels and quiet hours of a batch's people, per tenant, read in three queries."""

    chosen: dict[int, dict[str, bool]]  # user -> channel -> on/off, where they chose
    persons: dict[int, PersonNotificationSettings]
    defaults: dict[int, TenantNotificationDefaults]

    @classmethod
    def load(cls, user_ids: Iterable[int], tenant_ids: Iterable[int]) -> PersonRules:
        users, tenants = list(set(user_ids)), list(set(tenant_ids))
        chosen: dict[int, dict[str, bool]] = {}
        if users:
            for user_id, channel, enabled in ChannelPreference.objects.filter(user_id__in=users).values_list(
                "user_id", "channel", "enabled"
            ):
                chosen.setdefault(user_id, {})[channel] = enabled
        persons = {p.user_id: p for p in PersonNotificationSettings.objects.filter(user_id__in=users)} if users else {}
        defaults = {d.tenant_id: d for d in TenantNotificationDefaults.objects.filter(tenant_id__in=tenants)} if tenants else {}
        return cls(chosen, persons, defaults)

    def channel_on(self, user_id: int, tenant_id: int, channel: str) -> bool:
        if channel in ALWAYS_ON:
            return True
        own = self.chosen.get(user_id, {}).get(channel)
        if own is not None:
            return own
        defaults = self.defaults.get(tenant_id)
        return not (defaults is not None and channel in (defaults.channels_off or []))

    def hold_until(self, user_id: int, tenant_id: int, now: datetime, *, critical: bool, zone: ZoneInfo) -> datetime | None:
        """When a message to this person may go, if not now (quiet hours in `zone`, theirs); None: now."""
        quiet = quiet_hours_of(self.persons.get(user_id), self.defaults.get(tenant_id), zone)
        if quiet is None or (critical and quiet.critical_override):
            return None
        return quiet.until(now)


# --- writes ----------------------------------------------------------------------------------------------------------


def _parse_time(value: Any, field: str) -> time | None:
    if value in (None, ""):
        return None
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(f"{field} is not a time", errors={field: ["Enter a time such as 22:00."]}) from None


def _hhmm(value: time | None) -> str | None:
    return value.isoformat(timespec="minutes") if value is not None else None


def _settings_state(person: PersonNotificationSettings, channels: Mapping[str, bool]) -> dict[str, Any]:
    return {
        "quiet_hours": person.quiet_hours,
        "quiet_start": _hhmm(person.quiet_start),
        "quiet_end": _hhmm(person.quiet_end),
        "critical_override": person.critical_override,
        "channels": dict(channels),
    }


def notification_settings_get(*, user_id: int) -> tuple[PersonNotificationSettings, dict[str, bool]]:
    """A person's settings (unsaved defaults when they never chose) and the channels they chose explicitly."""
    person = PersonNotificationSettings.objects.filter(user_id=user_id).first() or PersonNotificationSettings(user_id=user_id)
    chosen = dict(ChannelPreference.objects.filter(user_id=user_id).values_list("channel", "enabled"))
    return person, chosen


def notification_settings_update(
    *,
    user_id: int,
    tenant_id: int,
    actor: AuditActor,
    channels: Mapping[str, bool],
    quiet_hours: str,
    quiet_start: Any = None,
    quiet_end: Any = None,
    critical_override: bool = True,
) -> PersonNotificationSettings:
    """Save a person's channels and quiet hours, audited in `tenant_id`'s chain (the tenant they saved from)."""
    if quiet_hours not in QuietHoursChoice.values:
        raise ValidationFailed("unknown quiet hours choice", errors={"quiet_hours": ["Choose one of the options."]})
    start, end = _parse_time(quiet_start, "quiet_start"), _parse_time(quiet_end, "quiet_end")
    if quiet_hours == QuietHoursChoice.CUSTOM:
        errors = {
            name: ["Required for your own quiet hours."]
            for name, value in (("quiet_start", start), ("quiet_end", end))
            if value is None
        }
        if not errors and start == end:
            errors = {"quiet_end": ["Quiet hours must end at another time than they start."]}
        if errors:
            raise ValidationFailed("quiet hours need a start and an end", errors=errors)
    unknown = [c for c in channels if c not in Channel.values or c in ALWAYS_ON]
    if unknown:
        raise ValidationFailed("unknown channel", errors={"channels": [f"Not a channel you can turn off: {unknown[0]}."]})
    with transaction.atomic():
        person = PersonNotificationSettings.objects.select_for_update().filter(
            user_id=user_id
        ).first() or PersonNotificationSettings(user_id=user_id)
        chosen_before = dict(ChannelPreference.objects.filter(user_id=user_id).values_list("channel", "enabled"))
        before = _settings_state(person, chosen_before) if person.pk else None
        person.quiet_hours, person.critical_override = quiet_hours, critical_override
        person.quiet_start, person.quiet_end = (start, end) if quiet_hours == QuietHoursChoice.CUSTOM else (None, None)
        person.save()
        for channel, enabled in channels.items():
            channel_preference_set(user_id=user_id, channel=channel, enabled=enabled)
        after = _settings_state(person, {**chosen_before, **channels})
        audit_record(
            tenant_id=tenant_id,
            action=AuditAction.NOTIFICATION_SETTINGS_CHANGED,
            actor=actor,
            target_type="user",
            target_id=user_id,
            before=before,
            after=after,
        )
    return person


def _defaults_state(defaults: TenantNotificationDefaults, fields: Iterable[str]) -> dict[str, Any]:
    return {f: _hhmm(v) if isinstance(v := getattr(defaults, f), time) else v for f in fields}


def notification_defaults_update(*, defaults: TenantNotificationDefaults, actor: AuditActor) -> TenantNotificationDefaults:
    """Save a tenant's defaults (the admin's form has set the fields), audited in the tenant's chain."""
    if defaults.quiet_hours_enabled and (
        defaults.quiet_start is None or defaults.quiet_end is None or defaults.quiet_start == defaults.quiet_end
    ):
        raise ValidationFailed(
            "quiet hours need a start and an end", errors={"quiet_end": ["Quiet hours need a start and a different end."]}
        )
    unknown = [c for c in defaults.channels_off or [] if c not in Channel.values or c in ALWAYS_ON]
    if unknown:
        raise ValidationFailed("unknown channel", errors={"channels_off": [f"Not a channel to turn off: {unknown[0]}."]})
    fields = ("quiet_hours_enabled", "quiet_start", "quiet_end", "critical_override", "channels_off")
    with transaction.atomic():
        old = TenantNotificationDefaults.objects.select_for_update().filter(tenant_id=defaults.tenant_id).first()
        before = _defaults_state(old, fields) if old is not None else None
        if old is not None:
            defaults.pk = old.pk
        defaults.save()
        audit_record(
            tenant_id=defaults.tenant_id,
            action=AuditAction.NOTIFICATION_DEFAULTS_CHANGED,
            actor=actor,
            target_type="tenant",
            target_id=defaults.tenant_id,
            before=before,
            after=_defaults_state(defaults, fields),
        )
    return defaults
