"""What a restored database needs from the field keys for this app: every live data subject's key unwraps."""

from __future__ import annotations

from trustguard.backup.checks import register_restore_check
from trustguard.crypto import SecretUnreadable, decrypt

from .models import Subject


@register_restore_check("data subjects' keys")
def subject_keys_unwrap() -> tuple[bool, str]:
    total, unreadable, reason = 0, 0, ""
    for stored in Subject.objects.exclude(wrapped_key="").values_list("wrapped_key", flat=True).iterator():
        total += 1
        try:
            decrypt(stored)
        except SecretUnreadable as exc:
            unreadable += 1
            reason = reason or str(exc)
    if unreadable:
        return False, (f"{unreadable} of {total} data subjects' personal data cannot be read ({reason}). Restore "
                       "that field key: without it their contacts and personal payload fields are lost")
    return True, f"every data subject's key unwraps ({total})"
