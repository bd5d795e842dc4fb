"""Authenticator (TOTP) enrolment and reset. A device counts for step-up only once confirmed with a code."""

from __future__ import annotations

import base64
from io import BytesIO

import qrcode
import qrcode.image.svg
from django.db import transaction

from audit.actions import AuditAction
from audit.services import audit_record
from trustguard.errors import Conflict, ValidationFailed

from .actors import Actor
from .models import SealedTOTPDevice, User

ENROL_DEVICE_NAME = "authenticator"


def has_confirmed_device(user: User) -> bool:
    return SealedTOTPDevice.objects.filter(user=user, confirmed=True).exists()


@transaction.atomic
def totp_enrolment_start(*, user: User) -> SealedTOTPDevice:
    """The person's pending (unconfirmed) device, created on first visit and reused after.

    Refused while a confirmed device exists: adding a second authenticator from a session alone
    would let whoever holds the session bypass step-up. An operator resets a lost device instead.
    """
    if has_confirmed_device(user):
        raise Conflict("you already have a confirmed authenticator", slug="totp-already-enrolled")
    device = SealedTOTPDevice.objects.filter(user=user, confirmed=False, name=ENROL_DEVICE_NAME).order_by("pk").first()
    return device or SealedTOTPDevice.objects.create(user=user, name=ENROL_DEVICE_NAME, confirmed=False)


@transaction.atomic
def totp_enrolment_confirm(*, user: User, device_id: int, code: str, actor: Actor | None) -> SealedTOTPDevice:
    """Confirm the pending device with a code it produced; only then does it count for decisions."""
    device = SealedTOTPDevice.objects.select_for_update().filter(pk=device_id, user=user, confirmed=False).first()
    if device is None:
        raise Conflict("there is no authenticator waiting for confirmation", slug="totp-no-pending-device")
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == device.digits) or not device.verify_token(code):
        raise ValidationFailed("the code does not match", errors={"code": ["That code does not match. "
                                                                             "Check the time on your phone and try again."]})
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit_record(tenant_id=actor.tenant.pk if actor else None, action=AuditAction.TOTP_ENROLLED, actor=actor or _self(user),
                 target_type="user", target_id=user.pk, details={"device": device.pk})
    return device


@transaction.atomic
def totp_device_reset(*, user: User, actor: Actor | None, operator: User | None = None) -> int:
    """Delete all of a person's authenticators (lost phone); they enrol again at next login. Returns how many."""
    count, _ = SealedTOTPDevice.objects.filter(user=user).delete()
    audit_record(tenant_id=actor.tenant.pk if actor else None, action=AuditAction.TOTP_RESET,
                 actor=actor or _self(operator or user), target_type="user", target_id=user.pk,
                 details={"devices_removed": count})
    return count


class _UserActor:
    """An audit actor for platform-level actions by a person outside any tenant (the admin)."""

    def __init__(self, user: User) -> None:
        self.actor_type, self.actor_id, self.actor_label = "user", str(user.pk), user.username


def _self(user: User) -> _UserActor:
    return _UserActor(user)


def qr_svg(uri: str) -> str:
    """An SVG QR code (inline markup: no data: URL, no script; the CSP allows it)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    return svg[svg.index("<svg"):]


def secret_base32(device: SealedTOTPDevice) -> str:
    """The secret for typing into an app by hand, in groups of four."""
    raw = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))
