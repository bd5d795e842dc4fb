"""Suite-wide switches: which real services are present, and what happens when one is missing.

Tests marked postgres / redis / browser skip with a reason when the service is absent, and the
whole run fails at start when REQUIRE_SERVICES=1 (CI) and any of them is missing.
"""

from __future__ import annotations

import os
import shutil

import pytest

MARKERS = ("postgres", "redis", "browser")


def missing_service(marker: str) -> str | None:
    if marker == "postgres" and not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if marker == "redis" and not os.environ.get("REDIS_URL"):
        return "needs Redis: set REDIS_URL=redis://..."
    if marker == "browser" and not shutil.which("chromium"):
        return "needs Chromium (apt-get install chromium)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        missing = [reason for m in MARKERS if (reason := missing_service(m))]
        if missing:
            raise pytest.UsageError("REQUIRE_SERVICES=1 but: " + "; ".join(missing))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in MARKERS:
            if item.get_closest_marker(marker) and (reason := missing_service(marker)):
                item.add_marker(pytest.mark.skip(reason=reason))
