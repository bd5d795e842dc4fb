"""System check of the audit trail's keys (registered in AuditConfig.ready()): production refuses to start without them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from trustguard.checks import TAG


# Under the database protections' tag: the web, worker and beat processes refuse to start without the keys too.
@register(TAG)
def audit_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """audit.E001: an audit key ring is missing (DEBUG=0) or unusable."""
    from .keys import keys_problems

    problems = keys_problems()
    if settings.DEBUG and not problems:
        return []
    return [Error(problem, id="audit.E001", hint="Generate one as docs/AUDIT.md says and keep it outside the "
                  "database, with its backup (docs/BACKUP.md).") for problem in problems]
