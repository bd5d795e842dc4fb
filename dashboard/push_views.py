"""Web Push in the dashboard: the service worker (served at the site root, so its scope is the whole site), the
"Enable notifications on this device" control's endpoints, and the person's list of devices.

The control (templates/dashboard/_push_enable.html + static/js/push.js) asks the browser for permission,
subscribes with the VAPID public key and posts the PushSubscription here; the same service as
POST /api/v1/me/push-subscriptions stores it (notifications.push.subscriptions).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.web import tenant_view
from notifications.push.subscriptions import (
    push_subscription_add,
    push_subscription_registered,
    push_subscription_remove,
    push_subscription_renew,
    push_subscriptions_of,
)
from trustguard.api.errors import problem_http_response
from trustguard.errors import DomainError
from trustguard.vapid import vapid_keys

SERVICE_WORKER = Path(settings.BASE_DIR) / "static" / "push-sw.js"


@require_GET
@never_cache
def service_worker(request: HttpRequest) -> HttpResponse:
    """/push-sw.js: at the root so it controls every page (a worker's scope is at most its own folder)."""
    response = HttpResponse(SERVICE_WORKER.read_text(), content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    return response


def push_context(request: HttpRequest) -> dict[str, object]:
    """What the enable control and the device list need (for any page that includes them)."""
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    keys = vapid_keys()
    return {"push_public_key": keys.public_key if keys else "",
            "push_devices": list(push_subscriptions_of(user_id=actor.user.pk))}


@require_GET
@tenant_view
def devices(request: HttpRequest) -> HttpResponse:
    """The browsers I enabled push on, each removable; and the control for this one."""
    return render(request, "dashboard/devices.html", push_context(request))


def _json_body(request: HttpRequest) -> object:
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None


@require_POST
@tenant_view
def push_subscribe(request: HttpRequest) -> HttpResponse:
    """The control posts the browser's PushSubscription (JSON): 201 {id}, or 400 {detail, errors}."""
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    try:
        subscription = push_subscription_add(user_id=actor.user.pk, tenant_id=actor.tenant.pk, actor=actor,
                                             subscription=_json_body(request),
                                             user_agent=request.headers.get("User-Agent", ""))
    except DomainError as exc:
        return JsonResponse({"detail": str(exc), "errors": exc.errors or {}}, status=exc.status)
    return JsonResponse({"id": str(subscription.pk)}, status=201)


@require_POST
@tenant_view
def push_status(request: HttpRequest) -> HttpResponse:
    """Is this browser's subscription ({endpoint}) one of mine here? A browser keeps its subscription after
    it was removed elsewhere (another device's settings, a 410): then the control offers to enable it again."""
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    body = _json_body(request)
    endpoint = body.get("endpoint") if isinstance(body, dict) else None
    registered = isinstance(endpoint, str) and push_subscription_registered(user_id=actor.user.pk, endpoint=endpoint)
    return JsonResponse({"registered": registered})


# The service worker has no CSRF token and maybe no session (a browser renews when it likes): the old endpoint it
# names, a secret of that browser, is the credential (notifications.push.subscriptions.push_subscription_renew).
@csrf_exempt
@require_POST
def push_renew(request: HttpRequest) -> HttpResponse:
    """The service worker's pushsubscriptionchange: {old_endpoint, subscription} -> 200 {renewed}, or problem+json."""
    body = _json_body(request)
    if not isinstance(body, dict):
        return problem_http_response(400, "push-subscription-invalid", "Invalid push subscription",
                                     "Send JSON: {old_endpoint, subscription}.",
                                     errors={"_": ["Send JSON: {old_endpoint, subscription}."]})
    try:
        push_subscription_renew(old_endpoint=body.get("old_endpoint"), subscription=body.get("subscription"))
    except DomainError as exc:
        return problem_http_response(exc.status, exc.slug, exc.title, str(exc), errors=exc.errors or None)
    return JsonResponse({"renewed": True})


@require_POST
@tenant_view
def push_remove(request: HttpRequest, subscription_id: str) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    try:
        push_subscription_remove(user_id=actor.user.pk, tenant_id=actor.tenant.pk, actor=actor,
                                 subscription_id=subscription_id)
    except DomainError:
        messages.error(request, gettext("That device was already removed."))
    else:
        messages.success(request, gettext("Push notifications to that device are off."))
    return redirect("dashboard:devices")
