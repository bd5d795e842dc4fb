"""Sending one-time challenge codes for a decision (POST /otp/challenge)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import OtpChallenge, StepUpState
from accounts.roles import Capability
from accounts.stepup import challenge_create
from audit.actions import AuditAction
from audit.services import audit_record
from notifications.messages import message_send
from trustguard.errors import Conflict, TooManyRequests, ValidationFailed

from .models import Escalation
from .services import _require_assigned, stepup_subject

# Each code costs an SMS and is a guess the attacker did not have to make: a few per window are plenty.
SEND_LIMIT = 5
SEND_WINDOW = timedelta(minutes=10)


@transaction.atomic
def otp_challenge_send(*, actor: Actor, escalation: Escalation, channel: str) -> OtpChallenge:
    """Send a one-time code that authorises `actor` to decide `escalation` (as it is now).

    1. Only a person of the assigned role with escalation.decide, on an open escalation.
    2. The channel must be usable: email allowed by the tenant; SMS needs the person's phone.
    3. At most SEND_LIMIT codes per person per SEND_WINDOW (the person's step-up row is locked, so
       concurrent requests cannot both slip under the limit); past it, 429 with Retry-After.
    4. Store the challenge (hashed), hand the code to notifications, audit it, all in one transaction.
    """
    if escalation.is_final:
        raise Conflict(f"the escalation is already {escalation.status}; nothing to decide", slug="already-decided")
    _require_assigned(actor, escalation, Capability.ESCALATION_DECIDE)
    user = actor.user
    assert user is not None
    if channel == OtpChallenge.Channel.EMAIL:
        if not actor.tenant.email_otp_allowed:
            raise ValidationFailed("this tenant does not allow codes by email",
                                   errors={"channel": ["Email codes are turned off here; use sms or your authenticator app."]})
        if not user.email:
            raise ValidationFailed("you have no email address", errors={"channel": ["No email address on file."]})
    elif channel == OtpChallenge.Channel.SMS:
        if not user.phone_number:
            raise ValidationFailed("you have no phone number", errors={"channel": ["No phone number on file."]})
    else:
        raise ValidationFailed(f"unknown channel {channel!r}", errors={"channel": ["Use email or sms."]})

    StepUpState.objects.get_or_create(user=user)
    StepUpState.objects.select_for_update().get(user=user)
    now = timezone.now()
    recent = list(OtpChallenge.objects.filter(user=user, created_at__gt=now - SEND_WINDOW)
                  .order_by("created_at").values_list("created_at", flat=True)[:SEND_LIMIT])
    if len(recent) >= SEND_LIMIT:
        retry_after = int((recent[0] + SEND_WINDOW - now).total_seconds()) + 1
        raise TooManyRequests(f"at most {SEND_LIMIT} codes per {int(SEND_WINDOW.total_seconds() // 60)} minutes",
                              retry_after=retry_after, slug="otp-send-limit")

    challenge, code = challenge_create(user=user, tenant_id=actor.tenant.pk, subject=stepup_subject(escalation),
                                       channel=channel)
    minutes = int(challenge.expires_at.timestamp() - now.timestamp()) // 60
    message_send(
        tenant_id=actor.tenant.pk, channel=channel, subject="Your TrustGuard code",
        body=(f"Your TrustGuard code is {code}. It lets you decide {escalation.type} "
              f"({escalation.source_entity_id}) and expires in {minutes} minutes. Never share it."),
        purpose="otp_challenge", to_user_id=user.pk, sensitive=True, valid_until=challenge.expires_at,
    )
    audit_record(tenant_id=actor.tenant.pk, action=AuditAction.OTP_CHALLENGE_SENT, actor=actor, target_type="escalation",
                 target_id=escalation.pk, details={"channel": channel, "challenge": str(challenge.id)})
    return challenge
