# The part of django-otp's models (1.7) that accounts.SealedTOTPDevice inherits: abstract models, so the
# device is a typed Django model rather than a subclass of Any.
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from django.db import models

_D = TypeVar("_D", bound=Device)

class DeviceManager(models.Manager[_D]):
    def devices_for_user(self, user: Any, confirmed: bool | None = ...) -> models.QuerySet[_D]: ...

class Device(models.Model):
    user: Any
    user_id: int
    name: str
    confirmed: bool

    class Meta:
        abstract: ClassVar[bool]

    @property
    def persistent_id(self) -> str: ...
    def is_interactive(self) -> bool: ...
    def verify_is_allowed(self) -> tuple[bool, dict[str, Any] | None]: ...
    def verify_token(self, token: Any) -> bool: ...
    def generate_challenge(self) -> Any: ...

class ThrottlingMixin(models.Model):
    throttling_failure_timestamp: datetime | None
    throttling_failure_count: int
    def verify_is_allowed(self) -> tuple[bool, dict[str, Any] | None]: ...
    def throttle_reset(self, commit: bool = ...) -> None: ...
    def throttle_increment(self, commit: bool = ...) -> None: ...
    def get_throttle_factor(self) -> int: ...

class TimestampMixin(models.Model):
    created_at: datetime | None
    last_used_at: datetime | None
    def set_last_used_timestamp(self, commit: bool = ...) -> None: ...

def __getattr__(name: str) -> Any: ...
