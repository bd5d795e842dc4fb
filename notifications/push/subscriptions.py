"""A person's browsers that accept Web Push: enable one (the browser's PushSubscription JSON), list, remove.

Audited in the tenant where the person acted (the subscription itself serves all their tenants, as an email
address does). The endpoint and keys are stored encrypted with the field keys and never shown or logged; the
audit row names the device and the push service only. A push service's 404/410 removes the subscription
(push_subscription_expired, audited as the system). A browser whose push service replaced its subscription
renews it from its service worker (push_subscription_renew), with no session: knowing the old endpoint is the
credential.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from audit.actions import AuditAction
from audit.services import AuditActor, audit_record
from trustguard.crypto import decrypt, encrypt
from trustguard.errors import NotFound, ValidationFailed
from trustguard.locks import for_update
from trustguard.vapid import b64url_decode

from ..actors import OperatorActor
from ..models import PushSubscription
from ..selectors import uuid_or_404
from ..ssrf import TargetRefused, parse_url, resolve_target

# Enough for a phone, a laptop and a few browsers; past it, remove an old device first.
MAX_PER_PERSON = 20


@dataclass(frozen=True)
class SubscriptionInfo:
    """What sending needs: where (endpoint) and the browser's keys (p256dh: its P-256 public key, auth: 16 bytes)."""

    endpoint: str
    p256dh: str
    auth: str

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", slug="push-subscription-invalid", errors={field: [message]})


def parse_subscription(data: Any) -> SubscriptionInfo:
    """The browser's PushSubscription.toJSON(): {endpoint, expirationTime?, keys: {p256dh, auth}}; a 400 naming
    the field otherwise. The endpoint must be https on a public address (TRUSTGUARD_WEBHOOK_ALLOW_PRIVATE=1 also
    allows http and loopback, for a local push-service stand-in)."""
    if not isinstance(data, dict):
        raise _invalid("endpoint", "Send the browser's PushSubscription as JSON: {endpoint, keys: {p256dh, auth}}.")
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise _invalid("endpoint", "Required: the push service URL of this browser.")
    try:
        scheme, _, _ = parse_url(endpoint)
        if scheme != "https" and not settings.WEBHOOK_ALLOW_PRIVATE:
            raise TargetRefused("a push endpoint must be https")
        resolve_target(endpoint)
    except TargetRefused as exc:
        raise _invalid("endpoint", str(exc)) from None
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise _invalid("keys", "Required: {p256dh, auth} from the browser.")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    try:
        raw_key = b64url_decode(p256dh) if isinstance(p256dh, str) else b""
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw_key)
        if len(raw_key) != 65:
            raise ValueError
    except (ValueError, TypeError):
        raise _invalid("keys.p256dh", "The browser's P-256 public key (base64url, 65 bytes).") from None
    try:
        raw_auth = b64url_decode(auth) if isinstance(auth, str) else b""
    except (ValueError, TypeError):
        raw_auth = b""
    if len(raw_auth) != 16:
        raise _invalid("keys.auth", "The browser's auth secret (base64url, 16 bytes).")
    return SubscriptionInfo(endpoint=endpoint, p256dh=p256dh.rstrip("="), auth=auth.rstrip("="))  # type: ignore[union-attr]  # both checked to be str above


def endpoint_digest(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


def push_service_of(endpoint: str) -> str:
    """The endpoint's origin (https://fcm.googleapis.com): shown, and the circuit breaker's target."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"[:200]


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("SamsungBrowser/", "Samsung Internet"), ("Firefox/", "Firefox"),
             ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def device_label(user_agent: str) -> str:
    """'Chrome on Android' from a User-Agent: enough for a person to recognise their device in a list."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "A browser")
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    label = f"{browser} on {system}" if system else browser
    return re.sub(r"\s+", " ", label)[:120]


def subscription_info(subscription: PushSubscription) -> SubscriptionInfo:
    """The stored subscription, decrypted (raises trustguard.crypto.SecretUnreadable without its key)."""
    data = json.loads(decrypt(subscription.subscription_encrypted))
    return SubscriptionInfo(endpoint=data["endpoint"], p256dh=data["keys"]["p256dh"], auth=data["keys"]["auth"])


def push_subscriptions_of(*, user_id: int) -> QuerySet[PushSubscription]:
    """A person's browsers, newest first (what their settings page and GET /me/push-subscriptions list)."""
    return PushSubscription.objects.filter(user_id=user_id).order_by("-created_at")


def push_subscription_add(*, user_id: int, tenant_id: int, actor: AuditActor, subscription: Any,
                          user_agent: str = "") -> PushSubscription:
    """Enable push on the browser that sent `subscription`; the same browser again updates its row (its keys
    may have changed), and a browser someone else enabled before moves to this person."""
    info = parse_subscription(subscription)
    try:
        return _store(user_id=user_id, tenant_id=tenant_id, actor=actor, info=info, device=device_label(user_agent))
    except IntegrityError:
        # The same browser posted twice at once and the other request inserted its row first: update that row.
        return _store(user_id=user_id, tenant_id=tenant_id, actor=actor, info=info, device=device_label(user_agent))


def _store(*, user_id: int, tenant_id: int, actor: AuditActor, info: SubscriptionInfo, device: str) -> PushSubscription:
    digest = endpoint_digest(info.endpoint)
    with transaction.atomic():
        existing = for_update(PushSubscription.objects.filter(endpoint_digest=digest)).first()
        others = PushSubscription.objects.filter(user_id=user_id).exclude(endpoint_digest=digest)
        if existing is None and others.count() >= MAX_PER_PERSON:
            raise ValidationFailed(f"push is enabled on {MAX_PER_PERSON} browsers already: remove one first",
                                   slug="too-many-push-subscriptions",
                                   errors={"endpoint": [f"At most {MAX_PER_PERSON} browsers; remove an old one."]})
        taken_over = existing is not None and existing.user_id != user_id
        if existing is None:
            existing = PushSubscription(endpoint_digest=digest)
        existing.user_id = user_id
        existing.push_service = push_service_of(info.endpoint)
        existing.subscription_encrypted = encrypt(json.dumps(info.as_dict()))
        existing.device = device
        existing.save()
        audit_record(tenant_id=tenant_id, action=AuditAction.PUSH_SUBSCRIPTION_ADDED, actor=actor,
                     target_type="push_subscription", target_id=existing.pk,
                     after={"device": device, "push_service": existing.push_service},
                     details={"taken_over_from_another_person": True} if taken_over else None)
    return existing


def push_subscription_registered(*, user_id: int, endpoint: str) -> bool:
    """Is this browser (its endpoint) one of the person's? (The dashboard's control asks on every page.)"""
    return PushSubscription.objects.filter(user_id=user_id, endpoint_digest=endpoint_digest(endpoint)).exists()


def push_subscription_remove(*, user_id: int, tenant_id: int | None, actor: AuditActor, subscription_id: object) -> None:
    """Stop pushing to one of the person's browsers (their own only: anyone else's is a 404). An operator in the
    admin removes with tenant_id None: the platform's audit chain."""
    with transaction.atomic():
        subscription = for_update(PushSubscription.objects.filter(
            pk=uuid_or_404(subscription_id, "push subscription"), user_id=user_id)).first()
        if subscription is None:
            raise NotFound("no such push subscription")
        _remove(subscription, tenant_id=tenant_id, actor=actor, reason="removed by the person")


def push_subscription_expired(*, subscription_id: object, tenant_id: int, status_code: int) -> bool:
    """The push service says the subscription is gone (404/410): remove it. False when it already was."""
    with transaction.atomic():
        subscription = for_update(PushSubscription.objects.filter(pk=uuid_or_404(subscription_id, "push subscription"))).first()
        if subscription is None:
            return False
        _remove(subscription, tenant_id=tenant_id, actor=OperatorActor.system("push"),
                reason=f"the push service answered HTTP {status_code}")
    return True


def push_subscription_renew(*, old_endpoint: Any, subscription: Any) -> PushSubscription:
    """The browser's push service replaced its subscription (the service worker's `pushsubscriptionchange`): the
    row of the old endpoint takes the new endpoint and keys, for the same person and device.

    It needs no session, because a browser renews when it likes, maybe long after its person signed out. The
    credential is the old endpoint: a capability URL that only this browser and its push service know (stored
    encrypted, never shown). An unknown old endpoint is a 404 that tells nothing more. Audited on the platform
    chain, as the system acting for the person, because no tenant asked for it."""
    if not isinstance(old_endpoint, str) or not old_endpoint:
        raise _invalid("old_endpoint", "Required: the endpoint of the subscription the browser replaced.")
    # Who cannot name a stored subscription learns nothing and makes us resolve no host of theirs.
    if not PushSubscription.objects.filter(endpoint_digest=endpoint_digest(old_endpoint)).exists():
        raise NotFound("no push subscription has that endpoint")
    info = parse_subscription(subscription)
    new_digest = endpoint_digest(info.endpoint)
    with transaction.atomic():
        digests = sorted({endpoint_digest(old_endpoint), new_digest})
        rows = {row.endpoint_digest: row for row in
                for_update(PushSubscription.objects.filter(endpoint_digest__in=digests).order_by("endpoint_digest"))}
        old = rows.get(endpoint_digest(old_endpoint))
        if old is None:
            raise NotFound("no push subscription has that endpoint")
        already = rows.get(new_digest)
        if already is not None and already.pk != old.pk:
            # The page enabled the new subscription first (its check on load): the old row only goes.
            _remove(old, tenant_id=None, actor=OperatorActor.system("push"),
                    reason="the browser renewed it; the new subscription was already enabled")
            return already
        old.endpoint_digest = new_digest
        old.push_service = push_service_of(info.endpoint)
        old.subscription_encrypted = encrypt(json.dumps(info.as_dict()))
        old.save(update_fields=["endpoint_digest", "push_service", "subscription_encrypted"])
        audit_record(tenant_id=None, action=AuditAction.PUSH_SUBSCRIPTION_RENEWED, actor=OperatorActor.system("push"),
                     target_type="push_subscription", target_id=old.pk,
                     after={"device": old.device, "push_service": old.push_service}, details={"person": old.user_id})
    return old


def _remove(subscription: PushSubscription, *, tenant_id: int | None, actor: AuditActor, reason: str) -> None:
    audit_record(tenant_id=tenant_id, action=AuditAction.PUSH_SUBSCRIPTION_REMOVED, actor=actor,
                 target_type="push_subscription", target_id=subscription.pk,
                 before={"device": subscription.device, "push_service": subscription.push_service},
                 details={"reason": reason, "person": subscription.user_id})
    subscription.delete()
