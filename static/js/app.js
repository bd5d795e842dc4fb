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
})();
