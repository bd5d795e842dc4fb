"""A tenant's terminology (its language pack): what its people and messages call roles, escalation types,
reasons and statuses.

`label(kind, key, tenant=...)` is the one lookup: the dashboard's filters (role_label, status_label,
type_label, reason_label), the messages' context (escalations.notify) and the admin's preview all ask it.
The answer, in the active language (django.utils.translation):
  1. the tenant's Term for that language, else its Term for every language;
  2. else the standard wording: a role's label (built-in, translated; or the custom role's label,
     the same rows as accounts.selectors.tenant_roles), a status's translated name;
  3. else the key as it is written (a reason is free text).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from django.db.models import Value
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import translation
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import CustomRole, Tenant
from accounts.roles import Role, role_label

from .models import Term

TERMS_CACHE_SECONDS = 300
# A page asks for dozens of labels (a queue card: type, role, status, reason): each a Redis round trip cost the queue
# page 23 ms. The process keeps a tenant's terms this long; a change made in this process is seen at once, one made
# in another within this time.
LOCAL_SECONDS = 1.0
_local: dict[int, tuple[float, dict[tuple[str, str, str], str]]] = {}

STATUS_LABELS = {
    "pending": _("Pending"), "acknowledged": _("Acknowledged"), "approved": _("Approved"), "rejected": _("Rejected"),
    "deferred": _("Deferred"), "expired": _("Expired"), "cancelled": _("Cancelled"), "executed": _("Executed"),
}


def _key(tenant_id: int) -> str:
    return f"tg:terms:{tenant_id}"


def terms_changed(tenant_id: int) -> None:
    """Forget a tenant's cached terms (the admin calls it on every save)."""
    _local.pop(tenant_id, None)
    cache.delete(_key(tenant_id))


@receiver([post_save, post_delete], sender=CustomRole, dispatch_uid="terminology-custom-role")
@receiver([post_save, post_delete], sender=Term, dispatch_uid="terminology-term")
def _forget(sender: type, instance: CustomRole | Term, **kwargs: Any) -> None:
    # However a term or a custom role changes (admin, service, shell), the next label reads it: the cache
    # (Redis in production) is shared by every process, so one delete reaches them all.
    terms_changed(instance.tenant_id)


def _terms(tenant_id: int) -> dict[tuple[str, str, str], str]:
    """{(kind, key, language): label} of one tenant (cached; the admin forgets it on save)."""
    now = time.monotonic()
    held = _local.get(tenant_id)
    if held is not None and now - held[0] < LOCAL_SECONDS:
        return held[1]
    terms: dict[tuple[str, str, str], str] | None = cache.get(_key(tenant_id))
    if terms is None:
        # Custom roles' own labels (accounts.selectors.tenant_roles reads the same rows) ranked below any Term
        # (language "*custom"); one query for both.
        custom = (CustomRole.objects.filter(tenant_id=tenant_id).order_by()
                  .annotate(kind=Value(Term.Kind.ROLE.value), language=Value("*custom"))
                  .values_list("kind", "key", "language", "label"))
        rows = (Term.objects.filter(tenant_id=tenant_id).order_by().values_list("kind", "key", "language", "label")
                .union(custom))
        terms = {(kind, key, language): text for kind, key, language, text in rows}
        cache.set(_key(tenant_id), terms, TERMS_CACHE_SECONDS)
    _local[tenant_id] = (now, terms)
    return terms


def label(kind: str, key: object, *, tenant: Tenant | int | None, language: str | None = None) -> str:
    """How the people of `tenant` read `key` of `kind` (Term.Kind) in `language` (default: the active one)."""
    key = "" if key is None else str(key)
    if not key:
        return ""
    language = language or translation.get_language() or ""
    short = language.split("-")[0]
    if tenant is not None:
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        terms = _terms(tenant_id)
        for lang in (language, short, ""):
            if (kind, key, lang) in terms:
                return terms[(kind, key, lang)]
    with translation.override(language or None):
        if kind == Term.Kind.ROLE:
            if key in Role.values or tenant is None:
                return role_label(key)
            return _terms(tenant if isinstance(tenant, int) else tenant.pk).get((kind, key, "*custom"), key)
        if kind == Term.Kind.STATUS:
            return str(STATUS_LABELS.get(key, key.capitalize()))
    return key


# The same lookup, evaluated when printed: a message's context is built once for all its recipients and
# rendered in each one's language (notifications.messages.render_message activates it).
lazy_label = lazy(label, str)
