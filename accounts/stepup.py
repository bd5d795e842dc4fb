"""Step-up, in one place: a fresh one-time code for every decision.

A TOTP code (RFC 6238, verified with django-otp's OATH implementation) counts once per device
time step. A challenge code (sent by email or SMS) is single use, valid five minutes, bound to
person + subject + content, and hashed at rest. Wrong codes are counted; five in fifteen minutes
lock the person out of deciding. The caller runs stepup_verify inside its decision transaction and
raises the returned error only after committing, so a failure is recorded even though the decision
is refused, and a code is only consumed together with the decision it authorises.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django_otp.oath import TOTP

from audit.actions import AuditAction
from audit.services import audit_record
from notifications.outbox.catalogue import STEPUP_CODE_REPLAYED
from notifications.outbox.emit import event_emit
from trustguard.crypto import SecretUnreadable
from trustguard.errors import DomainError, PermissionDenied, TooManyRequests, ValidationFailed

from .actors import Actor
from .models import OtpChallenge, SealedTOTPDevice, StepUpState, User
from .services import secret_digest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepUpSubject:
    """What a code authorises: one action on one object, in its current content."""

    type: str
    id: str
    content_hash: str


@dataclass(frozen=True)
class StepUpResult:
    ok: bool
    method: str = ""
    error: DomainError | None = None


# --- challenge codes -------------------------------------------------------------------------------------------

def challenge_code_digest(challenge_id: object, code: str) -> str:
    # Keyed by the challenge id too, so equal codes of two challenges do not share a digest.
    return secret_digest(f"otp:{challenge_id}:{code}")


def challenge_create(*, user: User, tenant_id: int, subject: StepUpSubject, channel: str) -> tuple[OtpChallenge, str]:
    """Store a new challenge and return it with its code (to be sent, never stored in clear)."""
    code = f"{secrets.randbelow(10**6):06d}"
    challenge = OtpChallenge(user=user, tenant_id=tenant_id, subject_type=subject.type, subject_id=subject.id,
                             content_hash=subject.content_hash, channel=channel,
                             expires_at=timezone.now() + settings.OTP_CHALLENGE_TTL)
    challenge.code_digest = challenge_code_digest(challenge.id, code)
    challenge.save(force_insert=True)
    return challenge, code


def challenge_consume(*, user: User, subject: StepUpSubject, code: str, now: datetime) -> str:
    """'ok' (and mark used), 'replay' (right code, already used), or 'wrong'.

    Runs under the caller's lock on the person's step-up row, so two requests with one code
    cannot both see it unused.
    """
    candidates = OtpChallenge.objects.filter(user=user, subject_type=subject.type, subject_id=subject.id,
                                             content_hash=subject.content_hash).order_by("-created_at")[:10]
    for challenge in candidates:
        if not hmac.compare_digest(challenge.code_digest, challenge_code_digest(challenge.id, code)):
            continue
        if challenge.used_at is not None:
            return "replay"
        if challenge.expires_at <= now:
            return "wrong"
        challenge.used_at = now
        challenge.save(update_fields=["used_at"])
        return "ok"
    return "wrong"


# --- verification ----------------------------------------------------------------------------------------------

def _locked_state(user: User) -> StepUpState:
    """The person's step-up state, locked; created on first use (one query once it exists, three the first time)."""
    state = StepUpState.objects.select_for_update().filter(user=user).first()
    if state is None:
        # INSERT .. ON CONFLICT DO NOTHING: no savepoint, and a concurrent first use simply finds the row.
        StepUpState.objects.bulk_create([StepUpState(user=user)], ignore_conflicts=True)
        state = StepUpState.objects.select_for_update().get(user=user)
    return state


def lockout_remaining(state: StepUpState, now: datetime) -> int:
    if state.locked_until and state.locked_until > now:
        return math.ceil((state.locked_until - now).total_seconds())
    return 0


def _totp_step(device: SealedTOTPDevice, code: str, now: datetime) -> int | None:
    """The time step `code` belongs to on `device` (within its tolerance), or None."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = now.timestamp()
    current = totp.t()
    for offset in range(-device.tolerance, device.tolerance + 1):
        totp.drift = device.drift + offset
        if totp.token() == int(code):
            return current + offset
    return None


def _verify_totp(user: User, code: str, now: datetime) -> str:
    """'ok', 'replay' or 'wrong'. Marks the step used on success (device row locked)."""
    for device in SealedTOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"):
        try:
            step = _totp_step(device, code, now)
        except SecretUnreadable as exc:
            # Its seed is under a field key no longer configured (docs/BACKUP.md): the device is lost, not the
            # request. The person uses a challenge code until an operator resets the authenticator.
            logger.error("authenticator %s cannot verify codes: %s", device.pk, exc)
            continue
        if step is None:
            continue
        if device.last_t is not None and step <= device.last_t:
            return "replay"
        device.last_t = step
        device.last_used_at = now
        device.save(update_fields=["last_t", "last_used_at"])
        return "ok"
    return "wrong"


def stepup_verify(*, actor: Actor, subject: StepUpSubject, code: str | None) -> StepUpResult:
    """Verify `code` for `actor` and `subject` inside the caller's transaction.

    1. Refuse at once while the person is locked out (429 with Retry-After).
    2. Try the person's confirmed TOTP devices, then one-time challenge codes bound to the subject.
    3. On failure count it (and lock out at the limit) and audit it; on a replay, audit that too.
    """
    user = actor.user
    if user is None:
        return StepUpResult(False, error=PermissionDenied("only a person can decide", slug="person-required"))
    code = (code or "").strip()
    if not code.isdigit() or not 6 <= len(code) <= 8:
        return StepUpResult(False, error=ValidationFailed(
            "a one-time code is required to decide", errors={"otp": ["Enter the 6-digit code."]}))
    now = timezone.now()
    state = _locked_state(user)
    remaining = lockout_remaining(state, now)
    if remaining:
        return StepUpResult(False, error=TooManyRequests(
            "too many wrong codes; deciding is locked for a while", retry_after=remaining, slug="otp-locked"))

    outcome = _verify_totp(user, code, now)
    method = "totp"
    if outcome == "wrong":
        outcome = challenge_consume(user=user, subject=subject, code=code, now=now)
        method = "challenge"
    if outcome == "ok":
        if state.failures:
            state.failures, state.window_started_at = 0, None
            state.save(update_fields=["failures", "window_started_at"])
        return StepUpResult(True, method=method)

    if outcome == "replay":
        audit_record(tenant_id=actor.tenant.pk, action=AuditAction.OTP_REPLAY_REFUSED, actor=actor, target_type=subject.type,
                     target_id=subject.id, details={"method": method})
        # Someone may have seen the code: notifications warns its owner (notifications.consumers).
        event_emit(STEPUP_CODE_REPLAYED(tenant_id=actor.tenant.pk, aggregate_id=user.pk, data={
            "user_id": user.pk, "subject_type": subject.type, "subject_id": subject.id}))
        return StepUpResult(False, error=PermissionDenied("this code has already been used", slug="otp-replayed"))

    if state.window_started_at is None or now - state.window_started_at > settings.OTP_FAILURE_WINDOW:
        state.failures, state.window_started_at = 0, now
    state.failures += 1
    locked = state.failures >= settings.OTP_MAX_FAILURES
    if locked:
        state.locked_until, state.failures, state.window_started_at = now + settings.OTP_LOCKOUT, 0, None
    state.save(update_fields=["failures", "window_started_at", "locked_until"])
    audit_record(tenant_id=actor.tenant.pk, action=AuditAction.OTP_LOCKED_OUT if locked else AuditAction.OTP_FAILED, actor=actor,
                 target_type=subject.type, target_id=subject.id,
                 details={"failures": state.failures, "locked_until": state.locked_until})
    if locked:
        return StepUpResult(False, error=TooManyRequests(
            "too many wrong codes; deciding is locked for 15 minutes",
            retry_after=int(settings.OTP_LOCKOUT.total_seconds()), slug="otp-locked"))
    return StepUpResult(False, error=PermissionDenied("the one-time code is wrong or expired", slug="otp-invalid"))
