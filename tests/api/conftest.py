"""An HTTP client for the API with bearer credentials of the demo tenant (and of a second tenant)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from escalations.demo import seed_demo


class Api:
    """Calls /api/v1/ as one credential; JSON in, the Django test response out (with .json())."""

    def __init__(self, secret: str | None) -> None:
        self.client = Client()
        self.secret = secret

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.secret}"} if self.secret else {}
        out.update(headers or {})
        return out

    def get(self, path: str, params: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client.get("/api/v1" + path, params or {}, headers=self._headers(headers))

    def send(self, method: str, path: str, body: Any = None, *, raw: bytes | str | None = None,
             content_type: str = "application/json", key: str | None = None, headers: dict[str, str] | None = None) -> Any:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Idempotency-Key"] = key
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return getattr(self.client, method)("/api/v1" + path, data=data, content_type=content_type,
                                            headers=self._headers(all_headers))

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.send("post", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.send("put", path, body, **kwargs)


@pytest.fixture
def api(demo: dict) -> Callable[[str | None], Api]:
    """api("vendor") for the demo vendor key, api("ceo") for a person's token, api(None) anonymous."""

    def _api(who: str | None) -> Api:
        if who is None:
            return Api(None)
        if who == "vendor":
            return Api(demo["api_keys"]["vendor"])
        return Api(demo["by_name"][who]["api_token"])

    return _api


@pytest.fixture
def other(db: None) -> dict:
    """A second tenant, seeded like the demo (its people are other-co, other-ceo, ...)."""
    result = seed_demo("other")
    result["by_name"] = {u["username"].removeprefix("other-"): u for u in result["users"]}
    return result


def assert_problem(response: Any, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


ORDER: dict[str, Any] = {
    "reason": "Order above the threshold",
    "source": {"system": "shop", "entity_type": "order", "entity_id": "ORD-1001"},
    "amount": {"value_minor": 250_000_000, "currency": "NGN"},
    "requested_by": "buyer@shop.example",
}
