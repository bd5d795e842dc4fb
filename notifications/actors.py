"""Who acts when an operator does: admin users and management commands (notifications cannot import accounts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OperatorActor:
    """An AuditActor for admin users and management commands (notifications cannot import accounts)."""

    actor_type: str
    actor_id: str
    actor_label: str

    @classmethod
    def staff(cls, user: Any) -> OperatorActor:
        return cls(actor_type="user", actor_id=str(user.pk), actor_label=user.get_username())

    @classmethod
    def system(cls, name: str) -> OperatorActor:
        return cls(actor_type="system", actor_id=name, actor_label=f"system:{name}")
