"""The queryset of tenant configuration models (policies, trigger rules, delegations): its bulk writes replace
the tenants' configuration generations, as a save or a delete does (accounts.tenant_config.bump_on_change), so a
queryset update() is no back door around the per-process cache."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any, TypeVar

from django.apps import apps
from django.db import connection, models

M = TypeVar("M", bound=models.Model)


# On the connection: the tenants whose configuration it changed (accounts.tenant_config reads it).
CHANGED_HERE = "_tenant_config_changed_here"


def config_changed(tenant_id: int) -> None:
    """Every process reloads this tenant's cached configuration at its next request (after this transaction
    commits; a row lock on the tenant row until then, which the inserts that reference the tenant do not wait for).
    accounts.tenant_config's; here so that the models' queryset needs no import of the module that reads them."""
    tenant_model = apps.get_model("accounts", "Tenant")
    tenant_model.objects.filter(pk=tenant_id).update(config_generation=secrets.randbits(62))
    changed = getattr(connection, CHANGED_HERE, None)
    if changed is None:
        changed = set()
        setattr(connection, CHANGED_HERE, changed)
    changed.add(tenant_id)


def _changed(tenant_ids: Iterable[int]) -> None:
    for tenant_id in sorted(set(tenant_ids)):
        config_changed(tenant_id)


class ConfigQuerySet(models.QuerySet[M]):
    def update(self, **kwargs: Any) -> int:
        tenants = list(self.values_list("tenant_id", flat=True))  # a rare write: one query more
        rows = super().update(**kwargs)
        _changed(tenants)
        return rows

    def bulk_create(self, objs: Iterable[M], *args: Any, **kwargs: Any) -> list[M]:
        created = super().bulk_create(objs, *args, **kwargs)
        _changed(obj.tenant_id for obj in created)  # type: ignore[attr-defined]  # every config model has a tenant
        return created

    def bulk_update(self, objs: Iterable[M], fields: Any, *args: Any, **kwargs: Any) -> int:
        objs = list(objs)
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        _changed(obj.tenant_id for obj in objs)  # type: ignore[attr-defined]  # every config model has a tenant
        return rows
