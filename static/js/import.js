// The import page: a "Select all listed jobs" checkbox over the Sonar job list. It is hidden
// in the markup and shown here, so without JavaScript there is no control that does nothing;
// the list's own checkboxes work either way. Rows added by "Load more" (htmx) are counted in.
// No inline scripts (CSP).
(function () {
  "use strict";

  function boxes() {
    return Array.prototype.slice.call(
      document.querySelectorAll('#import-rows input[type="checkbox"][name="ids"]')
    );
  }

  function sync() {
    var all = document.getElementById("select-all");
    if (!all) return;
    var list = boxes();
    var checked = list.filter(function (box) { return box.checked; }).length;
    all.checked = list.length > 0 && checked === list.length;
    all.indeterminate = checked > 0 && checked < list.length;
    all.disabled = list.length === 0;
  }

  function setUp() {
    var all = document.getElementById("select-all");
    if (!all) return;
    var row = all.closest(".select-all");
    if (row) row.hidden = false;
    all.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = all.checked; });
      sync();
    });
    var rows = document.getElementById("import-rows");
    if (rows) {
      rows.addEventListener("change", function (event) {
        if (event.target && event.target.name === "ids") sync();
      });
    }
    document.body.addEventListener("htmx:afterSettle", sync);
    sync();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
