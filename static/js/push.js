/* "Enable notifications on this device" (templates/dashboard/_push_enable.html). No inline script (CSP).
   1. Register the service worker (/push-sw.js, scope "/") when the browser can take Web Push.
   2. Show what holds for this device: on, off (blocked in the browser), or the button to enable.
   3. On a click: ask permission, subscribe with the server's VAPID key, post the subscription.
   4. While a page is open, a push also shows as a notice on it (the worker tells the page). */
(function () {
  "use strict";
  var control = document.querySelector("[data-push-control]");
  if (!control) { return; }
  var state = control.querySelector("[data-push-state]");
  var button = control.querySelector("[data-push-enable]");

  function show(text, mode) {
    control.hidden = false;
    state.textContent = text;
    control.classList.toggle("is-on", mode === "on");
    control.classList.toggle("is-off", mode === "off");
    button.hidden = mode === "on" || mode === "off";
  }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(padded);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", "X-CSRFToken": control.dataset.csrf}
    });
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    show("This browser cannot show push notifications; you still get email and the inbox.", "off");
    return;
  }

  var ready = navigator.serviceWorker.register(control.dataset.worker, {scope: "/"}).then(function () {
    return navigator.serviceWorker.ready;
  });

  function refresh() {
    if (Notification.permission === "denied") {
      show("Notifications are blocked for this site: allow them in the browser's site settings.", "off");
      return Promise.resolve();
    }
    return ready.then(function (registration) {
      return registration.pushManager.getSubscription();
    }).then(function (subscription) {
      if (!subscription || Notification.permission !== "granted") {
        show("Get a notification on this device when a case needs you.", "ask");
        return;
      }
      return post(control.dataset.status, {endpoint: subscription.endpoint}).then(function (response) {
        return response.json();
      }).then(function (answer) {
        if (answer.registered) {
          show("Notifications are on for this device.", "on");
        } else {
          show("This device no longer gets notifications (removed in your settings).", "ask");
        }
      });
    }).catch(function () {
      show("Get a notification on this device when a case needs you.", "ask");
    });
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") {
        throw new Error(permission === "denied" ? "blocked" : "dismissed");
      }
      return ready;
    }).then(function (registration) {
      return registration.pushManager.getSubscription().then(function (existing) {
        return existing || registration.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: keyBytes(control.dataset.publicKey)
        });
      });
    }).then(function (subscription) {
      return post(control.dataset.subscribe, subscription.toJSON());
    }).then(function (response) {
      if (!response.ok) { throw new Error("refused"); }
      show("Notifications are on for this device.", "on");
      if (control.dataset.reload) { window.location.reload(); }
    }).catch(function (error) {
      var blocked = error && error.message === "blocked";
      show(blocked ? "Notifications are blocked for this site: allow them in the browser's site settings."
                   : "Notifications could not be turned on here. Try again, or use another browser.",
           blocked ? "off" : "ask");
    }).then(function () { button.disabled = false; });
  });

  // A push that arrives while this page is open: the worker posts it here, shown as a notice on the page.
  var toast = document.querySelector("[data-push-toast]");
  navigator.serviceWorker.addEventListener("message", function (event) {
    var data = event.data || {};
    if (!toast || data.type !== "trustguard-push") { return; }
    toast.querySelector("[data-push-toast-title]").textContent = data.title || "TrustGuard";
    toast.querySelector("[data-push-toast-body]").textContent = data.body || "";
    toast.querySelector("[data-push-toast-link]").href = data.url || "/";
    toast.hidden = false;
  });

  refresh();
})();
