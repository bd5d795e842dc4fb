"""simple_history's request middleware, made safe for DRF requests.

DRF sets the Django request's `user` to whatever authenticated it: for TrustGuard an Actor, not a
User. simple_history would then try to store the Actor as `history_user` and crash (500) on every
API write of a model with history (policies, memberships, credentials). Here it sees the Actor's
person, or no user at all for an API key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from simple_history.models import HistoricalRecords


class _HistoryRequest:
    """A view of the request whose `user` is always a User or AnonymousUser."""

    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    @property
    def user(self) -> Any:
        user = getattr(self._request, "user", None)
        if user is None or isinstance(user, AbstractBaseUser | AnonymousUser):
            return user
        # What DRF's authenticator put there (accounts' Actor): its person, if any. Plumbing never imports accounts.
        return getattr(user, "user", None) or AnonymousUser()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


class HistoryRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        HistoricalRecords.context.request = _HistoryRequest(request)
        try:
            return self.get_response(request)
        finally:
            with contextlib.suppress(AttributeError):
                del HistoricalRecords.context.request
