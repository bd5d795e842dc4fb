"""What a restored database needs from the field keys for this app: every live data subject's key unwraps."""

from __future__ import annotations

from trustguard.backup.checks import register_restore_check, sealed_values_unreadable

from .models import Subject


@register_restore_check("data subjects' keys")
def subject_keys_unwrap() -> tuple[bool, str]:
    keys = sealed_values_unreadable(Subject.objects.exclude(wrapped_key="").values_list("wrapped_key", flat=True).iterator())
    total, unreadable, reason = keys.total, keys.unreadable, keys.reason
    if unreadable:
        return False, (f"{unreadable} of {total} data subjects' personal data cannot be read ({reason}). Restore "
                       "that field key: without it their contacts and personal payload fields are lost")
    return True, f"every data subject's key unwraps ({total})"
