"""What a restored database needs from the keys this app uses: every active webhook secret decrypts."""

from __future__ import annotations

from trustguard.backup.checks import register_restore_check

from .deliveries.webhooks import endpoint_signing_secrets
from .models import WebhookEndpoint


@register_restore_check("webhook secrets")
def webhook_secrets_readable() -> tuple[bool, str]:
    total, unreadable, reason = 0, [], ""
    for endpoint in WebhookEndpoint.objects.filter(is_active=True).order_by("pk").iterator():
        total += 1
        try:
            endpoint_signing_secrets(endpoint)
        except Exception as exc:  # whatever stops us signing with it: the check reports it, naming the key
            unreadable.append(str(endpoint.pk))
            reason = reason or str(exc)
    if unreadable:
        return False, (f"{len(unreadable)} of {total} active webhook endpoints cannot sign ({reason}): endpoints "
                       f"{', '.join(unreadable[:10])}. Restore that key, or rotate those endpoints' secrets (admin: "
                       "Webhook endpoints, 'Rotate the signing secret') and give the new ones to their receivers")
    if not total:
        return True, "no active webhook endpoints"
    return True, f"every active webhook endpoint's signing secret decrypts ({total})"
