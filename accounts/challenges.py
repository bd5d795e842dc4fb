"""One-time challenge codes: single use, five minutes, bound to person + subject + content, hashed at rest."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from .models import OtpChallenge, User
from .services import secret_digest
from .stepup import StepUpSubject


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
