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
