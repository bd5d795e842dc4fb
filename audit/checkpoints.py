"""Signed retention checkpoints: where a chain starts once retention has pruned its prefix."""

from __future__ import annotations

import hmac
from datetime import UTC

from django.conf import settings
from django.utils.crypto import salted_hmac

from trustguard.jsonutil import canonical_json

from .models import AuditCheckpoint

_SALT = "trustguard.audit.checkpoint"


def _message(checkpoint: AuditCheckpoint) -> str:
    return canonical_json({
        "chain": checkpoint.chain_key, "seq": checkpoint.seq, "hash": checkpoint.hash,
        "pruned_count": checkpoint.pruned_count, "created_at": checkpoint.created_at.astimezone(UTC).isoformat(),
    })


def checkpoint_sign(checkpoint: AuditCheckpoint) -> str:
    """HMAC-SHA256 with a key derived from SECRET_KEY (salted, so it is used for nothing else)."""
    return salted_hmac(_SALT, _message(checkpoint), algorithm="sha256").hexdigest()


def checkpoint_signature_valid(checkpoint: AuditCheckpoint) -> bool:
    """Valid under SECRET_KEY or any SECRET_KEY_FALLBACKS, so rotating the key keeps old checkpoints verifiable."""
    message = _message(checkpoint)
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        expected = salted_hmac(_SALT, message, secret=secret, algorithm="sha256").hexdigest()
        if hmac.compare_digest(expected, checkpoint.signature):
            return True
    return False


def latest_checkpoint(chain_key: str) -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.filter(chain_key=chain_key).order_by("-seq").first()
