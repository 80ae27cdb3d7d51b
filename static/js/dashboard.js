// Inline title editing on the dashboard. Listeners sit on document, so forms htmx swaps in
// later work too; htmx's own key filters need eval, which the CSP (and allowEval) rule out.
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
})();
