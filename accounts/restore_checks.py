"""What a restored database needs from the field keys for this app: every authenticator's seed decrypts."""

from __future__ import annotations

from trustguard.backup.checks import register_restore_check, sealed_values_unreadable

from .models import SealedTOTPDevice


@register_restore_check("authenticator seeds")
def authenticator_seeds_readable() -> tuple[bool, str]:
    seeds = sealed_values_unreadable(SealedTOTPDevice.objects.values_list("key_encrypted", flat=True).iterator())
    total, unreadable, reason = seeds.total, seeds.unreadable, seeds.reason
    if unreadable:
        return False, (f"{unreadable} of {total} authenticators cannot verify codes ({reason}). Restore that key, or "
                       "reset those people's authenticators (admin: People, 'Reset authenticator') so they enrol again")
    return True, f"every authenticator's seed decrypts ({total})"
