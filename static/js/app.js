/* TrustGuard dashboard: the little script there is (htmx does the rest). No inline script anywhere (CSP). */
(function () {
  "use strict";
  // After a decision swaps the case in place, move focus to what changed, so keyboard and
  // screen-reader users hear the outcome (or the first error) instead of losing their place.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "case") { return; }
    var fresh = document.getElementById("case");
    if (!fresh) { return; }
    var invalid = fresh.querySelector("[aria-invalid=true]");
    var focus = invalid || fresh.querySelector("#decide-error, #case-error, #case-notice");
    if (focus) {
      focus.focus();
    }
  });

  // The live queue (dashboard/live.py, htmx's SSE extension): while the stream is open the queue's poller
  // (#queue-poll, "every Ns, sse:changed") stands down and only the stream's "changed" fetches the list; when the
  // stream is down (an error, a server that refused it) polling carries on as before.
  var live = false;
  var pollsSkipped = 0;
  function setLive(on) {
    live = on;
    var box = document.getElementById("queue-live");
    if (box) { box.setAttribute("data-live", on ? "on" : "off"); }
    var status = document.getElementById("live-status");
    if (status) { status.textContent = status.getAttribute(on ? "data-on" : "data-off"); }
  }
  document.addEventListener("htmx:sseOpen", function () { setLive(true); });
  document.addEventListener("htmx:sseError", function () { setLive(false); });
  document.addEventListener("htmx:sseClose", function () { setLive(false); });
  document.addEventListener("htmx:confirm", function (event) {
    var detail = event.detail || {};
    // A poll has no triggering event; the stream's "changed" has one.
    if (live && detail.elt && detail.elt.id === "queue-poll" && !detail.triggeringEvent) {
      event.preventDefault();
      pollsSkipped += 1;
      var box = document.getElementById("queue-live");
      if (box) { box.setAttribute("data-polls-skipped", String(pollsSkipped)); }
    }
  });
})();
