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
  // The execution window's countdown (case page): "opens in 2h 5m" / "closes in 12m", kept current.
  function compact(ms) {
    var s = Math.max(0, Math.floor(ms / 1000)), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
      m = Math.floor(s % 3600 / 60);
    if (d) { return h ? d + "d " + h + "h" : d + "d"; }
    if (h) { return m ? h + "h " + m + "m" : h + "h"; }
    return m ? m + "m" : "<1m";
  }
  function tick() {
    var nodes = document.querySelectorAll("time[data-countdown]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i], state = node.getAttribute("data-countdown");
      if (state === "closed") { continue; }
      var left = new Date(node.getAttribute("datetime")).getTime() - Date.now();
      // The words come translated from the page (data-*); English when a page gives none.
      var say = function (name, english) { return node.getAttribute(name) || english; };
      node.textContent = left <= 0 ? (state === "upcoming" ? say("data-open-now", "open now") : say("data-closed", "closed"))
        : (state === "upcoming" ? say("data-opens-in", "opens in {left}")
          : say("data-closes-in", "closes in {left}")).replace("{left}", compact(left));
    }
  }
  setInterval(tick, 30000);
})();
