"""A tenant's configuration (trigger rules, policies, ...) cached in each process, keyed by its generation.

Reading a tenant's rules and policies on every request cost two queries and their model instances; they
change a few times a year. Each kind of configuration is loaded once per process and kept with the tenant's
`config_generation`, which every change of that configuration replaces IN ITS OWN TRANSACTION (bump_on_change:
post_save / post_delete of the models, whoever saves them: services, admin, shell, seeds). A request reads the
generation (one primary-key lookup, no model) and uses the cached copy only when it is the current one, so the
next request after a change commits sees it, in every process; a change not yet committed is seen by nobody
else. The number is random, not a counter: a change rolled back must not leave a number that a later change
reuses (a process may have cached the rolled-back configuration under it).

Cached objects are shared by every request of the process: read them, never change them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from .config_queryset import CHANGED_HERE, config_changed
from .models import Tenant

T = TypeVar("T")

_cache: dict[tuple[int, str], tuple[tuple[int, Any], Any]] = {}
_lock = threading.Lock()


def config_generation(tenant_id: int) -> tuple[int, Any]:
    """The tenant's current generation (with its creation time: a test database may give a new tenant an old id)."""
    table, qn = Tenant._meta.db_table, connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT config_generation, created_at FROM {qn(table)} WHERE id = %s",  # noqa: S608
                       [tenant_id])
        row = cursor.fetchone()
    return (int(row[0]), row[1]) if row else (0, None)


# How long a tenant row read by the request's authentication stands for its generation (a request's length).
FRESH_SECONDS = 2.0
_READ_AT = "_tenant_config_read_at"


def mark_fresh(tenant: Tenant) -> Tenant:
    """`tenant` was just read from its row (its generation with it): the request that read it need not read it
    again (accounts.services.credential_authenticate)."""
    setattr(tenant, _READ_AT, time.monotonic())
    return tenant


def _generation_of(tenant: Tenant | int) -> tuple[int, Any]:
    if isinstance(tenant, Tenant):
        read_at = getattr(tenant, _READ_AT, None)
        # Not after this connection changed the tenant's configuration itself: the row read before the change
        # would file the new (perhaps never committed) configuration under the old generation.
        changed_here = tenant.pk in getattr(connection, CHANGED_HERE, ())
        if read_at is not None and not changed_here and time.monotonic() - read_at < FRESH_SECONDS:
            return int(tenant.config_generation), tenant.created_at
        return config_generation(tenant.pk)
    return config_generation(tenant)


def tenant_cached(tenant: Tenant | int, name: str, load: Callable[[], T]) -> T:
    """`load()`'s answer for this tenant, from this process's cache while the tenant's generation is unchanged.

    Given the tenant row read by this request's authentication (mark_fresh), its generation is not read again.
    """
    tenant_id = tenant.pk if isinstance(tenant, Tenant) else tenant
    generation = _generation_of(tenant)
    hit = _cache.get((tenant_id, name))
    if hit is not None and hit[0] == generation:
        return hit[1]  # type: ignore[no-any-return]  # the cache holds what load() of this name returned
    value = load()  # read after the generation: at worst newer than it, never older
    with _lock:
        _cache[(tenant_id, name)] = (generation, value)
    return value


def bump_on_change(*models: type[Model], ignore_fields: frozenset[str] = frozenset()) -> None:
    """However a row of these models (each with a tenant_id) is saved or deleted, config_changed follows, in the
    same transaction (AppConfig.ready of the app owning them); a save of `ignore_fields` alone changes nothing."""
    def changed(sender: type[Model], instance: Any, **kwargs: Any) -> None:
        if kwargs.get("raw"):
            return  # loaddata: no tenant row to bump yet, perhaps
        fields = kwargs.get("update_fields")
        if fields and ignore_fields and set(fields) <= ignore_fields:
            return
        config_changed(instance.tenant_id)

    for model in models:
        uid = f"tenant-config-{model._meta.label_lower}"
        post_save.connect(changed, sender=model, dispatch_uid=uid, weak=False)
        post_delete.connect(changed, sender=model, dispatch_uid=uid, weak=False)
