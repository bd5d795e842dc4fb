"""Web Push in Chromium: the enable control, the service worker's push and notificationclick handlers.

What this proves, and what it does not:
- Real: the page registers /push-sw.js (scope "/"), asks for permission (granted to the context), posts the
  subscription to the server with its CSRF token, and says notifications are on. The server then sends a real
  push (VAPID-signed, aes128gcm) to the push-service stand-in, which verifies it and decrypts it with the
  subscription's own private key. That decrypted payload is delivered into Chromium's service worker as a real
  `push` event (DevTools protocol ServiceWorker.deliverPushMessage): the worker shows the notification (read
  back with registration.getNotifications()) and tells the open page, which shows it as a notice.
- The worker's pushsubscriptionchange handler: Chromium never fires that event (nor can a test construct one), so
  the test calls the handler's function in the real worker with the old and the new subscription; the worker
  posts the renewal to the server without a session, as a browser would.
- Stood in: PushManager.subscribe. Chromium's own subscribe needs Google's push service (GCM/FCM), which the
  test machine cannot reach, so the page's subscribe returns the stand-in's subscription (a real key pair made
  by the test). The click on the notification is dispatched in the worker as a NotificationEvent (a headless
  browser has no notification to click); the worker's handler then takes the open page to the case.
"""

from __future__ import annotations

import json
import re

import pytest

from notifications.models import PushSubscription
from tests.dashboard.test_browser import ARTIFACTS, PHONE, browser  # noqa: F401  (browser is a fixture)

from .conftest import deliver, pending, relay
from .test_push import NAIRA, big_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The browser's push service, stood in: subscribe() answers with the test's subscription (see the docstring).
FAKE_SUBSCRIBE = """
(() => {
  const stored = %s;
  const asSubscription = (json) => ({endpoint: json.endpoint, expirationTime: null, options: {},
    toJSON: () => json, getKey: () => null, unsubscribe: () => { current = null; return Promise.resolve(true); }});
  // The browser keeps its subscription across page loads (so does this stand-in, for the tab's session).
  let current = sessionStorage.getItem("test-push") ? asSubscription(stored) : null;
  PushManager.prototype.subscribe = function () {
    sessionStorage.setItem("test-push", "1");
    current = asSubscription(stored);
    return Promise.resolve(current);
  };
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
})();
"""


def phone_context(browser, live_server, settings, subscription: dict):  # noqa: F811
    settings.SITE_URL = live_server.url
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, user_agent=(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile "
        "Safari/537.36"))
    context.grant_permissions(["notifications"], origin=live_server.url)
    context.add_init_script(FAKE_SUBSCRIBE % json.dumps(subscription))
    return context


def sign_in_and_enable_push(page, demo) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", "ceo")
    page.fill("#id_password", demo["by_name"]["ceo"]["password"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    # The queue offers push on this device; one tap turns it on.
    page.get_by_role("button", name="Enable notifications on this device").click()
    page.get_by_text("Notifications are on for this device.").wait_for()


def test_the_ceo_enables_push_on_her_phone_and_a_new_case_shows_and_opens_on_a_click(
        browser, live_server, demo, vendor, push_service, settings):  # noqa: F811
    context = phone_context(browser, live_server, settings, push_service.new_browser().as_json())
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        sign_in_and_enable_push(page, demo)
        subscription = PushSubscription.objects.get()
        assert subscription.user.username == "ceo" and subscription.device == "Chrome on Android"

        # A new case: the server's push reaches the stand-in, which verifies and decrypts it.
        case = big_order(vendor, "ORD-7")
        relay()
        assert [deliver(d) for d in pending("push")] == ["delivered"]
        assert push_service.rejected == []
        (push,) = push_service.received
        case_url = f"{live_server.url}/e/{case.pk}/"
        assert push.payload["url"] == case_url
        page.reload()  # (the queue would show it on its next refresh anyway)
        page.get_by_text("Notifications are on for this device.").wait_for()
        assert not page.get_by_role("button", name="Enable notifications on this device").is_visible()

        # That very payload, as a real push event in the page's service worker.
        cdp = context.new_cdp_session(page)
        registrations: list[dict] = []
        cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
        cdp.send("ServiceWorker.enable")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        (registration,) = [r for r in registrations if r["scopeURL"] == f"{live_server.url}/" and not r["isDeleted"]][:1]
        cdp.send("ServiceWorker.deliverPushMessage", {"origin": live_server.url,
                                                      "registrationId": registration["registrationId"],
                                                      "data": json.dumps(push.payload)})

        notice = page.locator("[data-push-toast]")
        notice.wait_for(state="visible")
        assert NAIRA in notice.inner_text() and "ORD-7" in notice.inner_text()
        shown = page.evaluate("navigator.serviceWorker.ready.then(r => r.getNotifications())"
                              ".then(list => list.map(n => ({title: n.title, body: n.body, tag: n.tag, url: n.data.url})))")
        assert shown == [{"title": push.payload["title"], "body": push.payload["body"], "tag": str(case.pk),
                          "url": case_url}]
        # Left in test-artifacts/ to look at (docs/screenshots/push-phone-queue.png is a copy of one).
        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "push-phone-queue.png"))

        # A click on the notification (dispatched in the worker) takes the open page to the case.
        (worker,) = [w for w in context.service_workers if w.url.endswith("/push-sw.js")]
        worker.evaluate("self.registration.getNotifications().then(list => { self.dispatchEvent("
                        "new NotificationEvent('notificationclick', {notification: list[0]})); })")
        page.wait_for_url(case_url)
        assert "ORD-7" in page.locator("#case").inner_text()
    finally:
        context.close()
    # Chromium refuses waitUntil on an event the test made (untrusted); anything else is a bug.
    assert [p for p in problems if "Failed to load resource" not in p] == []


def test_the_service_worker_renews_a_replaced_subscription_without_a_session(
        browser, live_server, demo, vendor, push_service, settings):  # noqa: F811
    old, new = push_service.new_browser(), push_service.new_browser()
    context = phone_context(browser, live_server, settings, old.as_json())
    try:
        page = context.new_page()
        sign_in_and_enable_push(page, demo)
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        context.clear_cookies()  # signed out: a browser renews whenever its push service says so

        (worker,) = [w for w in context.service_workers if w.url.endswith("/push-sw.js")]
        status = worker.evaluate("([old, renewed]) => renewSubscription({endpoint: old, options: {}}, "
                                 "{toJSON: () => renewed}).then(r => r.status)", [old.endpoint, new.as_json()])

        assert status == 200
        assert PushSubscription.objects.get().user.username == "ceo"
        big_order(vendor, "ORD-8")
        relay()
        assert [deliver(d) for d in pending("push")] == ["delivered"]
        assert [push.token for push in push_service.received] == [new.token]
    finally:
        context.close()
