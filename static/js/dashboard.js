// The dashboard: inline title editing, and a tab title that tells when something finished.
// Listeners sit on document, so forms and rows htmx swaps in later work too; htmx's own key
// filters need eval, which the CSP (and allowEval) rule out.
(function () {
  "use strict";

  // Escape in the title form cancels it, the same as its Cancel link.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !event.target.closest) return;
    var form = event.target.closest("form.title-form");
    if (!form) return;
    var cancel = form.querySelector(".title-cancel");
    if (!cancel) return;
    event.preventDefault();
    cancel.click();
  });

  // After save or cancel the form is swapped away with the focus in it: put the keyboard
  // focus back on the row's "Edit title" link instead of losing it to the page top.
  var returning = null;
  document.addEventListener("htmx:beforeSwap", function () {
    var active = document.activeElement;
    var form = active && active.closest ? active.closest("form.title-form") : null;
    returning = form ? form.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!returning) return;
    var cell = document.getElementById(returning);
    returning = null;
    var link = cell && cell.querySelector(".edit-title");
    if (link) link.focus();
  });

  // --- Finished while you looked away -------------------------------------------------
  // Each poll replaces the running rows' badges; when one turns to a final status (completed,
  // incomplete, cancelled or failed), the tab title counts it ("✓ 2 finished · Requests"),
  // until the tab is shown again.
  var FINISHED = { COMPLETED: true, INCOMPLETE: true, CANCELLED: true, FAILED: true };
  var baseTitle = document.title;
  var known = {};
  var finished = 0;

  function scan() {
    var badges = document.querySelectorAll('.badge-cell[id^="badge-"] [data-status]');
    for (var i = 0; i < badges.length; i++) {
      var cell = badges[i].closest(".badge-cell");
      var slug = cell.id.slice("badge-".length);
      var status = badges[i].getAttribute("data-status");
      var before = known[slug];
      if (before && before !== status && !FINISHED[before] && FINISHED[status]) finished += 1;
      known[slug] = status;
    }
    if (finished) document.title = "✓ " + finished + " finished · " + baseTitle;
  }

  scan();
  document.addEventListener("htmx:oobAfterSwap", scan);
  document.addEventListener("htmx:afterSettle", scan);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible" || !finished) return;
    finished = 0;
    document.title = baseTitle;
  });
})();
