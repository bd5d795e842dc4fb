"""Fixtures shared by the whole suite: tenants, people with roles and authenticators, codes."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from django.utils import timezone, translation

from accounts.actors import Actor
from accounts.models import SealedTOTPDevice, Tenant, User
from escalations.demo import seed_demo

from .factories import PersonFactory, TenantFactory


@pytest.fixture(scope="session")
def _anchor_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("audit-anchors")


@pytest.fixture(autouse=True)
def _audit_anchor_dir(_anchor_dirs: Path, settings: Any, request: pytest.FixtureRequest) -> Path:
    """Each test its own (not yet created) anchor directory: anchors outlive the test's database rollback."""
    settings.AUDIT_ANCHOR_DIR = _anchor_dirs / uuid.uuid4().hex
    return settings.AUDIT_ANCHOR_DIR  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _site_language_afterwards() -> Iterator[None]:
    """Each test ends in the site's language: a page request activates the person's language for the thread and
    nothing deactivates it when the request ends, so a French page would leave the next test's labels French."""
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Every test starts with no request counted (Redis keeps counters across tests; the database does not)."""
    from notifications.outbox.emit import kick_taken
    from trustguard.api import throttling

    throttling.reset()
    kick_taken()  # no relay runs between tests to clear a pending kick


@pytest.fixture
def demo(db: None) -> dict:
    """The demo tenant of CONTRACT.md, seeded as `seed_demo --json` would print it."""
    result = seed_demo("demo")
    result["tenant_obj"] = Tenant.objects.get(slug="demo")
    result["by_name"] = {u["username"]: u for u in result["users"]}
    return result


@pytest.fixture
def demo_actor(demo: dict) -> Callable[[str], Actor]:
    def _actor(username: str) -> Actor:
        return Actor(tenant=demo["tenant_obj"], user=User.objects.get(username=username))

    return _actor


@pytest.fixture
def vendor(demo: dict) -> Actor:
    from accounts.models import ApiKey

    return Actor(tenant=demo["tenant_obj"], api_key=ApiKey.objects.get(tenant=demo["tenant_obj"], name="vendor"))


@pytest.fixture
def make_tenant(db: None) -> Callable[..., Tenant]:
    def _make(slug: str = "acme", **kwargs: object) -> Tenant:
        return TenantFactory.create(slug=slug, name=slug.title(), **kwargs)

    return _make


@pytest.fixture
def make_person(db: None) -> Callable[..., User]:
    """A person with a role in a tenant and a confirmed TOTP device."""

    def _make(tenant: Tenant, role: str, username: str, email: str | None = None) -> User:
        return PersonFactory.create(tenant=tenant, role=role, username=username, **({"email": email} if email else {}))

    return _make


def totp_code(user: User, at: datetime | None = None) -> str:
    """The code the person's authenticator app shows: now (or at `at`), or, when this step was
    already used, the next step's code (within the device's tolerance), as a person would wait for."""
    device = SealedTOTPDevice.objects.filter(user=user, confirmed=True).first()
    assert device is not None
    totp = pyotp.TOTP(base64.b32encode(bytes.fromhex(device.key)).decode())
    moment = at or timezone.now()
    step = int(moment.timestamp()) // totp.interval
    if at is None and device.last_t is not None and device.last_t >= step:
        step = device.last_t + 1
        assert step <= int(moment.timestamp()) // totp.interval + device.tolerance, "no unused code within tolerance"
    return totp.at(step * totp.interval)
