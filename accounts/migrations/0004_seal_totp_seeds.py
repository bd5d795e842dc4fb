"""Move every django-otp TOTPDevice into SealedTOTPDevice, its seed encrypted under TRUSTGUARD_FIELD_KEYS.

Reversible: going back decrypts the seeds into TOTPDevice rows again (with the same field keys configured).
Nothing else refers to a device row, so new primary keys are harmless; a session verified with an old device
simply verifies again.
"""

from django.db import migrations

FIELDS = ("user_id", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_timestamp",
          "throttling_failure_count", "step", "t0", "digits", "tolerance", "drift", "last_t")


def seal(apps, schema_editor):
    from trustguard import crypto

    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    SealedTOTPDevice = apps.get_model("accounts", "SealedTOTPDevice")
    for device in TOTPDevice.objects.order_by("pk").iterator():
        SealedTOTPDevice.objects.create(key_encrypted=crypto.encrypt(device.key),
                                        **{f: getattr(device, f) for f in FIELDS})
        device.delete()


def unseal(apps, schema_editor):
    from trustguard import crypto

    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    SealedTOTPDevice = apps.get_model("accounts", "SealedTOTPDevice")
    for device in SealedTOTPDevice.objects.order_by("pk").iterator():
        TOTPDevice.objects.create(key=crypto.decrypt(device.key_encrypted), **{f: getattr(device, f) for f in FIELDS})
        device.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_sealed_totp_device"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(seal, unseal)]
