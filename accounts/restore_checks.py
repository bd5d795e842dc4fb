"""What a restored database needs from the field keys for this app: every authenticator's seed decrypts."""

from __future__ import annotations

from trustguard.backup.checks import register_restore_check
from trustguard.crypto import SecretUnreadable, decrypt

from .models import SealedTOTPDevice


@register_restore_check("authenticator seeds")
def authenticator_seeds_readable() -> tuple[bool, str]:
    total, unreadable, reason = 0, 0, ""
    for stored in SealedTOTPDevice.objects.values_list("key_encrypted", flat=True).iterator():
        total += 1
        try:
            decrypt(stored)
        except SecretUnreadable as exc:
            unreadable += 1
            reason = reason or str(exc)
    if unreadable:
        return False, (f"{unreadable} of {total} authenticators cannot verify codes ({reason}). Restore that key, or "
                       "reset those people's authenticators (admin: People, 'Reset authenticator') so they enrol again")
    return True, f"every authenticator's seed decrypts ({total})"
