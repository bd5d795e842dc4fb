/* TrustGuard's service worker (served at /push-sw.js, scope "/"): shows Web Push notifications and opens the
   case page when one is clicked. The payload (notifications/push/sender.py) is {title, body, url, tag,
   escalation?}; it is encrypted for this browser alone, so its url is the server's (TRUSTGUARD_SITE_URL). */
"use strict";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

function readPayload(event) {
  if (!event.data) { return {}; }
  try { return event.data.json(); } catch (error) { return {body: event.data.text()}; }
}

function caseUrl(url) {
  // Only web pages: anything else (or nothing) opens the queue.
  try {
    var parsed = new URL(url, self.location.origin);
    if (parsed.protocol === "https:" || parsed.protocol === "http:") { return parsed.href; }
  } catch (error) { /* fall through */ }
  return new URL("/", self.location.origin).href;
}

self.addEventListener("push", function (event) {
  var data = readPayload(event);
  var title = data.title || "TrustGuard";
  var url = caseUrl(data.url);
  var shown = self.registration.showNotification(title, {
    body: data.body || "", tag: data.tag || "", renotify: Boolean(data.tag), requireInteraction: false,
    data: {url: url, escalation: data.escalation || ""}
  }).then(function () {
    // Pages of ours that are open hear it too (a notice on the page: static/js/push.js).
    return self.clients.matchAll({type: "window"});
  }).then(function (windows) {
    windows.forEach(function (client) {
      client.postMessage({type: "trustguard-push", title: title, body: data.body || "", url: url});
    });
  });
  event.waitUntil(shown);
});

function openCase(url) {
  // A window already on that case is focused; else one of ours is taken there; else a new one opens.
  return self.clients.matchAll({type: "window", includeUncontrolled: true}).then(function (windows) {
    var same = windows.filter(function (client) { return client.url === url; })[0];
    if (same) { return same.focus(); }
    var ours = windows.filter(function (client) { return "navigate" in client; })[0];
    if (ours) {
      return ours.navigate(url).then(function (client) {
        return client ? client.focus().catch(function () { return client; }) : client;
      });
    }
    return self.clients.openWindow(url);
  });
}

// Where the worker renews its subscription (dashboard/push_views.py push_renew): no session or CSRF token needed,
// the old endpoint is the credential.
var RENEW_URL = "/settings/devices/push/renew/";

function renewSubscription(oldSubscription, newSubscription) {
  // The push service replaced this browser's subscription (it expired, or keys rotated). Without the old one
  // there is nothing to name it by: the page's check on its next load offers to enable push again.
  if (!oldSubscription || !oldSubscription.endpoint) { return Promise.resolve(null); }
  var next = newSubscription ? Promise.resolve(newSubscription) : self.registration.pushManager.subscribe({
    userVisibleOnly: true, applicationServerKey: oldSubscription.options.applicationServerKey
  });
  return next.then(function (subscription) {
    return fetch(RENEW_URL, {
      method: "POST", credentials: "omit", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({old_endpoint: oldSubscription.endpoint, subscription: subscription.toJSON()})
    });
  });
}

self.addEventListener("pushsubscriptionchange", function (event) {
  event.waitUntil(renewSubscription(event.oldSubscription, event.newSubscription));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(openCase(caseUrl(event.notification.data && event.notification.data.url)));
});
