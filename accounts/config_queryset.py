"""The queryset of tenant configuration models (policies, trigger rules, delegations): its bulk writes replace
the tenants' configuration generations, as a save or a delete does (accounts.tenant_config.bump_on_change), so a
queryset update() is no back door around the per-process cache."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def _changed(tenant_ids: Iterable[int]) -> None:
    from .tenant_config import config_changed  # the models module loads this one

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
        _changed(obj.tenant_id for obj in created)  # type: ignore[attr-defined]
        return created

    def bulk_update(self, objs: Iterable[M], fields: Any, *args: Any, **kwargs: Any) -> int:
        objs = list(objs)
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        _changed(obj.tenant_id for obj in objs)  # type: ignore[attr-defined]
        return rows
