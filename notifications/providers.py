"""Provider health: for each outside provider that carries messages to people (email, SMS, push), the last successful
delivery, its circuit breaker, and an active check that sends no message.

PROVIDERS is the registry: one entry per delivery channel. Adding a channel's provider is one `provider_register`
call (the push channel's sits at the bottom of this file). /healthz (trustguard.health_checks.ProvidersCheck, through
settings.HEALTH_PROVIDER_ROWS), the admin's "Provider health" page and the operators' home read the rows through
notifications.health.provider_health_rows.

Statuses: "fail" when the active check fails; "warn" when the breaker is not closed (deliveries are waiting, not
lost); else "ok". None of them makes /healthz a 503: a mail relay that is down is no reason to take the web out.

The active check's outcome is kept in the cache for PROVIDER_CHECK_CACHE_SECONDS, so a monitor that polls /healthz
every few seconds does not open an SMTP session or call Twilio's API each time (the admin page can force one).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .breakers import breaker_open_until, breaker_state

logger = logging.getLogger(__name__)
_LAST_SUCCESS_KEY = "tg:provider:{channel}:last-success"
_CHECK_KEY = "tg:provider:{channel}:check"
# In this process: when each channel's last success was last written (a write per delivery would be wasteful).
_written_at: dict[str, float] = {}
_WRITE_EVERY_SECONDS = 5.0
_RECENT_DELIVERIES = 100_000  # the database fallback looks this far back


@dataclass(frozen=True)
class Checked:
    """An active check's outcome: ok, fail, or skipped (nothing to check without sending)."""

    status: str
    detail: str
    checked_at: str = ""
    latency_ms: int | None = None


@dataclass(frozen=True)
class Provider:
    channel: str  # the Delivery kind it carries: email, sms, push
    label: str
    backend: Callable[[], str]  # which provider is configured, e.g. smtp, twilio, console
    check: Callable[[], Checked]  # an active check that sends nothing
    # The settings that say which server, account and credentials it is: a kept check holds for them only.
    configured_by: tuple[str, ...] = ()


@dataclass
class ProviderHealth:
    """One row of the provider health report (also the JSON of /healthz's "providers" check)."""

    channel: str
    label: str
    backend: str
    status: str
    breaker: str
    breaker_target: str
    breaker_open_until: datetime | None
    last_success_at: datetime | None
    check: Checked
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("breaker_open_until", "last_success_at"):
            value = data[name]
            data[name] = value.isoformat() if value else None
        return data


PROVIDERS: dict[str, Provider] = {}


def provider_register(provider: Provider) -> None:
    PROVIDERS[provider.channel] = provider


# --- last success ------------------------------------------------------------------------------------------------


def provider_mark_success(channel: str, at: datetime) -> None:
    """A delivery on `channel` just succeeded (called by the delivery attempt; at most one cache write per channel
    every few seconds per process)."""
    now = time.monotonic()
    if now - _written_at.get(channel, -_WRITE_EVERY_SECONDS) < _WRITE_EVERY_SECONDS:
        return
    _written_at[channel] = now
    try:
        cache.set(_LAST_SUCCESS_KEY.format(channel=channel), at.isoformat(), timeout=None)
    except Exception:  # the report falls back to the database
        _written_at.pop(channel, None)


def last_success(channel: str) -> datetime | None:
    """From the cache; else the newest delivered one among the recent deliveries (a cache that was emptied)."""
    from django.db.models import Max

    from .models import Delivery, DeliveryStatus

    try:
        raw = cache.get(_LAST_SUCCESS_KEY.format(channel=channel))
    except Exception:
        raw = None
    if raw:
        return datetime.fromisoformat(raw)
    newest = Delivery.objects.aggregate(top=Max("id"))["top"]
    if newest is None:
        return None
    found: datetime | None = Delivery.objects.filter(
        id__gt=newest - _RECENT_DELIVERIES, kind=channel, status=DeliveryStatus.DELIVERED
    ).aggregate(at=Max("delivered_at"))["at"]
    return found


# --- the active checks ---------------------------------------------------------------------------------------------


def _timed(probe: Callable[[], str]) -> Checked:
    started = time.monotonic()
    try:
        detail = probe()
    except Exception as exc:  # a check reports; never the message (it may name hosts or carry credentials)
        return Checked("fail", type(exc).__name__, timezone.now().isoformat(), int((time.monotonic() - started) * 1000))
    return Checked("ok", detail, timezone.now().isoformat(), int((time.monotonic() - started) * 1000))


def _email_backend() -> str:
    return str(settings.EMAIL_BACKEND.rsplit(".", 2)[-2])


def email_check() -> Checked:
    """SMTP: connect, EHLO, STARTTLS and log in as configured (Django's own SMTP backend does it), then NOOP and QUIT.
    Local backends send nothing out; an ESP's API (anymail) has no call that sends nothing."""
    backend = settings.EMAIL_BACKEND
    if backend == "django.core.mail.backends.smtp.EmailBackend":

        def probe() -> str:
            from django.core.mail import get_connection

            connection = get_connection(backend, fail_silently=False, timeout=settings.PROVIDER_CHECK_TIMEOUT_SECONDS)
            connection.open()
            try:
                code, _ = connection.connection.noop()  # type: ignore[attr-defined]  # SMTP backend's smtplib connection
            finally:
                connection.close()
            if code != 250:
                raise ConnectionError(f"NOOP answered {code}")
            return f"SMTP {settings.EMAIL_HOST}:{settings.EMAIL_PORT} answered EHLO and NOOP"

        return _timed(probe)
    if backend.startswith("django.core.mail.backends."):
        return Checked("ok", "a local backend: nothing leaves this machine", timezone.now().isoformat())
    return Checked(
        "skipped", "an email API: no call that sends nothing; see the breaker and the last delivery", timezone.now().isoformat()
    )


def sms_check() -> Checked:
    """Twilio: fetch the account (GET /2010-04-01/Accounts/<sid>.json, at TWILIO_BASE_URL when set); it must be
    active. The console provider prints and needs no check."""
    if settings.SMS_PROVIDER != "twilio":
        return Checked("ok", "the console provider: nothing leaves this machine", timezone.now().isoformat())

    def probe() -> str:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        client = Client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            http_client=TwilioHttpClient(timeout=settings.PROVIDER_CHECK_TIMEOUT_SECONDS),
        )
        if settings.TWILIO_BASE_URL:
            client.api.base_url = settings.TWILIO_BASE_URL.rstrip("/")
        account = client.api.v2010.accounts(settings.TWILIO_ACCOUNT_SID).fetch()
        if account.status != "active":
            raise PermissionError(f"the Twilio account is {account.status}")
        return "the Twilio account is active"

    return _timed(probe)


def push_check() -> Checked:
    return Checked(
        "skipped",
        "a push service has no call that sends nothing; see the breaker and the last delivery",
        timezone.now().isoformat(),
    )


def checked(provider: Provider, *, fresh: bool = False) -> Checked:
    """The provider's active check, from the cache unless `fresh` or older than PROVIDER_CHECK_CACHE_SECONDS."""
    key = f"{_CHECK_KEY.format(channel=provider.channel)}:{provider.backend()}:{_configuration(provider)}"
    if not fresh:
        try:
            kept = cache.get(key)
        except Exception:
            kept = None
        if kept:
            return Checked(**kept)
    outcome = provider.check()
    try:
        cache.set(key, asdict(outcome), timeout=settings.PROVIDER_CHECK_CACHE_SECONDS)
    except Exception:  # the next report checks again
        logger.warning("provider health: the check could not be kept in the cache", exc_info=True)
    return outcome


# --- the report ----------------------------------------------------------------------------------------------------


def _configuration(provider: Provider) -> str:
    """A digest of the provider's configuration (no secret in a cache key): another server, account or password is
    another provider, checked afresh rather than reported with the old one's outcome."""
    values = repr([getattr(settings, name, None) for name in provider.configured_by])
    return hashlib.sha256(values.encode()).hexdigest()[:16]


def provider_health(provider: Provider, *, breaker_target: str, fresh: bool = False) -> ProviderHealth:
    """One provider's row; `breaker_target` is the breaker its deliveries go through (the delivery attempt's rule)."""
    target = breaker_target
    state = breaker_state(target)
    check = checked(provider, fresh=fresh)
    problems = []
    if check.status == "fail":
        problems.append(f"the active check failed: {check.detail}")
    if state != "closed":
        problems.append(f"the circuit breaker is {state}: deliveries wait for it")
    status = "fail" if check.status == "fail" else "warn" if state != "closed" else "ok"
    return ProviderHealth(
        channel=provider.channel,
        label=provider.label,
        backend=provider.backend(),
        status=status,
        breaker=state,
        breaker_target=target,
        breaker_open_until=breaker_open_until(target),
        last_success_at=last_success(provider.channel),
        check=check,
        problems=problems,
    )


provider_register(Provider("email", "Email", _email_backend, email_check, configured_by=(
    "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS",
    "EMAIL_USE_SSL")))
provider_register(Provider("sms", "SMS", lambda: str(settings.SMS_PROVIDER), sms_check, configured_by=(
    "SMS_PROVIDER", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_BASE_URL")))


def register_push_provider() -> None:
    """The push channel's provider, once the outbox has a push channel (notifications.models.Delivery.Kind)."""
    from .models import Delivery

    if "push" in Delivery.Kind.values and "push" not in PROVIDERS:
        provider_register(Provider("push", "Web Push", lambda: "webpush", push_check))
