// Every team page: a failed htmx request says so. htmx 2 swaps no 4xx/5xx answer except the
// 409 and 422 that carry their own sentence (responseHandling in base.html), so without this a
// refused click (an expired CSRF token, a server error) or a lost connection would do nothing
// visible. No inline scripts (CSP).
(function () {
  "use strict";

  function region() {
    return document.getElementById("request-error");
  }

  var failedFrom = null;

  function clear() {
    var box = region();
    if (box) box.replaceChildren();
    failedFrom = null;
  }

  function show(sentence, elt) {
    var box = region();
    if (!box) return;
    failedFrom = elt || null;
    var note = document.createElement("p");
    note.className = "request-error";
    var text = document.createElement("span");
    text.textContent = sentence + " ";
    var dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "link-button";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", clear);
    note.append(text, dismiss);
    // One sentence at a time: a failing poll must not stack a new one every few seconds.
    box.replaceChildren(note);
  }

  document.addEventListener("htmx:responseError", function (event) {
    var detail = event.detail || {};
    var status = detail.xhr ? detail.xhr.status : 0;
    show("That did not work (HTTP " + status + "). Reload the page and try again.", detail.elt);
  });

  document.addEventListener("htmx:sendError", function (event) {
    var detail = event.detail || {};
    show("The server could not be reached. Check your connection, then try again.", detail.elt);
  });

  // When the same element's next request works (a poll that recovers), the sentence goes.
  document.addEventListener("htmx:afterRequest", function (event) {
    var detail = event.detail || {};
    if (detail.successful && failedFrom && detail.elt === failedFrom) clear();
  });
})();

// Confirmation before destructive actions (revoke a public link, remove the API key). The
// button submits a GET form that leads to a confirmation page, which is the whole step
// without JavaScript; here the form opens the <dialog> it names instead, whose own form
// posts. Cancel is a method="dialog" form: it closes the dialog without any script.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var id = form instanceof HTMLFormElement && form.getAttribute("data-opens-dialog");
    var dialog = id && document.getElementById(id);
    if (!dialog || typeof dialog.showModal !== "function") return;
    event.preventDefault();
    dialog.showModal();
  });

  // The confirmed post leaves the dialog; htmx then swaps the panel or row it was in.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    var dialog = elt && elt.closest ? elt.closest("dialog[open]") : null;
    if (dialog) dialog.close();
  });
})();

// Focus and announcements around swaps and failed submits.
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region || !text) return;
    region.textContent = "";
    window.requestAnimationFrame(function () {
      region.textContent = text;
    });
  }

  // htmx replaced a panel (the share panel, a links row) with the focus inside it, which
  // would drop the focus to <body>: the new content marks where it goes instead.
  document.addEventListener("htmx:afterSettle", function () {
    var notice = document.querySelector("[data-announce]");
    if (notice) {
      notice.removeAttribute("data-announce");
      announce(notice.textContent.trim());
    }
    var target = document.querySelector("[data-focus-after-swap]");
    if (!target) return;
    target.removeAttribute("data-focus-after-swap");
    if (target.hidden && navigator.clipboard) target.hidden = false;
    if (target.hidden) target = target.closest("section, li, tr") || target;
    target.focus();
  });

  // After a failed submit, the first field in error (the server also marks it autofocus).
  var invalid = document.querySelector("main [aria-invalid='true']");
  if (invalid && (!document.activeElement || document.activeElement === document.body)) {
    invalid.focus();
  }

  // Boxes that are collapsed on phones and open on wider screens (the dashboard filters).
  document.querySelectorAll("details[data-open-from]").forEach(function (box) {
    var wide = window.matchMedia("(min-width: " + box.getAttribute("data-open-from") + "px)");
    function apply() {
      if (wide.matches) box.open = true;
    }
    apply();
    wide.addEventListener("change", apply);
  });
})();

// Menus (<details class="menu">: the Export and Share menus of an answer). They open and close
// without JavaScript; here one open menu closes the others, Escape closes it with the focus
// back on its button, and a click or focus elsewhere closes it. A download chosen in the
// Export menu closes it too.
(function () {
  "use strict";

  function openMenus() {
    return Array.from(document.querySelectorAll("details.menu[open]"));
  }

  // A menu whose panel holds an open dialog (Revoke's confirmation) stays open under it.
  function closeAll(except) {
    openMenus().forEach(function (menu) {
      if (menu !== except && !menu.querySelector("dialog[open]")) menu.open = false;
    });
  }

  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (menu instanceof HTMLDetailsElement && menu.classList.contains("menu") && menu.open) {
      closeAll(menu);
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    var menu = event.target instanceof Element && event.target.closest("details.menu[open]");
    if (!menu || menu.querySelector("dialog[open]")) return;
    menu.open = false;
    menu.querySelector("summary").focus();
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var menu = target.closest("details.menu");
    closeAll(menu);
    if (menu && target.closest(".export-menu a[download], .export-menu [data-print]")) {
      menu.open = false;
    }
  });

  document.addEventListener("focusin", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (target && !target.closest("dialog")) closeAll(target.closest("details.menu"));
  });
})();
