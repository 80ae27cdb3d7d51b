// "Copy" buttons next to read-only fields (the invitation link). The button stays hidden
// where the clipboard API is missing; the field can still be selected and copied by hand.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field || !navigator.clipboard) return;
    var status = document.getElementById("invite-copied");
    button.hidden = false;
    field.addEventListener("focus", function () { field.select(); });
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(field.value).then(
        function () { if (status) status.textContent = "Link copied."; },
        function () { field.select(); if (status) status.textContent = "Press Ctrl+C (or ⌘C) to copy the selected link."; }
      );
    });
  });
})();
