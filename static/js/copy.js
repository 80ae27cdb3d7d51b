// Copy buttons: a public link, the answer as Markdown, a code block, a citation. Each puts the
// full text on the clipboard and says so in #announcer, a live region present from page load.
// The buttons are hidden in the markup and shown here, so that without JavaScript there is no
// button that does nothing. Loaded on team and public pages; no inline scripts (CSP).
(function () {
  "use strict";

  var SELECTOR = "[data-copy-text], [data-copy-from], [data-copy-url], [data-copy-code]";

  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region) return;
    region.textContent = "";
    // Written in the next frame, so the same sentence twice is announced twice.
    window.requestAnimationFrame(function () {
      region.textContent = text;
    });
  }

  function reveal() {
    document.querySelectorAll(SELECTOR).forEach(function (button) {
      if (button.hidden && navigator.clipboard) button.hidden = false;
    });
  }

  function textOf(button) {
    if (button.hasAttribute("data-copy-text")) return button.getAttribute("data-copy-text");
    if (button.hasAttribute("data-copy-from")) {
      var source = document.getElementById(button.getAttribute("data-copy-from"));
      if (!source) return "";
      return "value" in source ? source.value.trim() : source.textContent.trim();
    }
    // A code block: the <pre> right after the button's tool row.
    var tools = button.closest(".code-tools");
    var pre = tools && tools.nextElementSibling;
    return pre ? pre.textContent : "";
  }

  function write(button) {
    var url = button.getAttribute("data-copy-url");
    if (!url) return navigator.clipboard.writeText(textOf(button));
    var body = fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    });
    // ClipboardItem takes the pending text, so the click's permission to write is not used
    // up while the file downloads (Safari requires this; Chromium accepts both).
    if (window.ClipboardItem && navigator.clipboard.write) {
      var blob = body.then(function (text) {
        return new Blob([text], { type: "text/plain" });
      });
      return navigator.clipboard.write([new ClipboardItem({ "text/plain": blob })]);
    }
    return body.then(function (text) {
      return navigator.clipboard.writeText(text);
    });
  }

  var restore = new WeakMap();

  function flash(button) {
    if (!restore.has(button)) restore.set(button, button.textContent);
    button.textContent = "Copied";
    button.classList.add("copied");
    window.clearTimeout(button.copyTimer);
    button.copyTimer = window.setTimeout(function () {
      button.textContent = restore.get(button);
      button.classList.remove("copied");
    }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element && event.target.closest(SELECTOR);
    if (!button || !navigator.clipboard) return;
    event.preventDefault();
    write(button).then(
      function () {
        flash(button);
        announce(button.getAttribute("data-copied") || "Copied");
      },
      function () {
        announce("Could not copy. Select the text and copy it by hand.");
      }
    );
  });

  document.addEventListener("htmx:afterSettle", reveal);
  document.addEventListener("sonarweb:added-copy-buttons", reveal);
  reveal();
})();
