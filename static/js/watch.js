// Watching a running request: when the polled status badge turns to a final status (COMPLETED,
// INCOMPLETE, CANCELLED, FAILED) or the app stops following it (RETIRED), the tab title and
// favicon say so, and a browser notification appears if the user allowed them.
// Every change of the badge is also written to #status-announcer, a live region that, unlike
// the badge, is not replaced by each poll, so screen readers hear it.
// Loaded only while the request is unfinished; no inline scripts (CSP).
(function () {
  "use strict";

  var FINISHED = {
    COMPLETED: { prefix: "✓ Completed · ", icon: "iconCompleted", text: "The research is complete." },
    INCOMPLETE: {
      prefix: "◐ Incomplete · ",
      icon: "iconCompleted",
      text: "The research stopped early; its partial answer is archived.",
    },
    CANCELLED: {
      prefix: "■ Cancelled · ",
      icon: "iconFailed",
      text: "The research was cancelled; what it had written is kept.",
    },
    FAILED: { prefix: "✗ Failed · ", icon: "iconFailed", text: "The research job failed." },
    RETIRED: {
      prefix: "■ Sonar retired · ",
      icon: "iconFailed",
      text: "Perplexity retired the Sonar API, so this job can no longer be fetched.",
    },
  };
  var script = document.currentScript;
  var icons = script ? script.dataset : {};
  var supported = "Notification" in window;
  var baseTitle = document.title;
  var announced = false;

  function badge() {
    return document.querySelector("#status [data-status]");
  }

  function badgeStatus() {
    var current = badge();
    return current ? current.getAttribute("data-status") : "";
  }

  function setFavicon(href) {
    if (!href) return;
    var link = document.querySelector('link[rel~="icon"]');
    if (!link) {
      link = document.createElement("link");
      link.rel = "icon";
      document.head.append(link);
    }
    link.type = "image/svg+xml";
    link.href = href;
  }

  function notify(outcome) {
    if (!supported || Notification.permission !== "granted") return;
    try {
      var note = new Notification(outcome.prefix + baseTitle, {
        body: outcome.text,
        icon: icons[outcome.icon] || undefined,
        tag: location.pathname,
      });
      note.onclick = function () {
        window.focus();
        note.close();
      };
    } catch (err) {
      // Some browsers (Android Chrome) only allow notifications from a service worker; the
      // title and favicon still tell the news.
    }
  }

  // "Research started…" is old news once the job has finished.
  function dropStartedMessage() {
    document.querySelectorAll(".messages [data-live-status]").forEach(function (item) {
      var list = item.parentNode;
      item.remove();
      if (list && !list.children.length) list.remove();
    });
  }

  function finish(outcome) {
    announced = true;
    dropStartedMessage();
    document.title = outcome.prefix + baseTitle;
    setFavicon(icons[outcome.icon]);
    updateButton();
    notify(outcome);
  }

  // --- Spoken status ---------------------------------------------------------------------
  // What the badge says, not only its data-status: "Cancelling…" is news though the status
  // stays IN_PROGRESS until upstream has stopped the run.
  var announcer = document.getElementById("status-announcer");
  function badgeText() {
    var current = badge();
    return current ? current.textContent.trim() : "";
  }
  var lastText = badgeText();

  function speak() {
    var text = badgeText();
    if (!text || text === lastText) return;
    lastText = text;
    if (announcer) announcer.textContent = "Status: " + text;
  }

  function check() {
    speak();
    var outcome = FINISHED[badgeStatus()];
    if (outcome && !announced) finish(outcome);
  }

  // --- "Notify me when it finishes" ------------------------------------------------------
  var button = document.getElementById("notify-button");
  var state = document.getElementById("notify-state");

  function updateButton() {
    if (!button) return;
    var permission = supported ? Notification.permission : "unsupported";
    button.hidden = announced || permission !== "default";
    if (!state) return;
    if (announced || permission === "unsupported") state.textContent = "";
    else if (permission === "granted") state.textContent = "You will get a notification when it finishes.";
    else if (permission === "denied") state.textContent = "Notifications are blocked for this site in your browser.";
    else state.textContent = "";
  }

  if (button && supported) {
    button.addEventListener("click", function () {
      var asked = Notification.requestPermission(updateButton);
      // Older Safari takes the callback; everything else returns a promise.
      if (asked && asked.then) asked.then(updateButton);
    });
  }

  // Only with this script does the page update by itself; the markup does not claim it.
  document.querySelectorAll(".live-note[hidden]").forEach(function (note) {
    note.hidden = false;
  });

  // A page opened on a finished request has nothing to announce: only a change counts.
  if (FINISHED[badgeStatus()]) announced = true;
  updateButton();

  // Watch the DOM rather than htmx events, so any way the badge gets replaced counts.
  var root = document.querySelector(".request") || document.body;
  new MutationObserver(check).observe(root, { childList: true, subtree: true });
})();
