// Behaviour for the rendered answer fragment (sonarweb/answers): hover cards for citation
// markers and the image lightbox. Listeners sit on document so fragments swapped in later
// by htmx work without re-initialising; no inline scripts or style attributes (CSP).
(function () {
  "use strict";

  // --- citation cards: a clone of the source card #source-n next to the marker ---------
  var card = null;
  var owner = null;

  function hideCard() {
    if (!card) return;
    if (owner) owner.removeAttribute("aria-describedby");
    card.remove();
    card = owner = null;
  }

  function showCard(marker) {
    if (owner === marker) return;
    hideCard();
    var source = document.getElementById(marker.hash.slice(1));
    if (!source) return;
    card = document.createElement("div");
    card.className = "cite-card";
    card.id = "cite-card";
    card.setAttribute("role", "tooltip");
    card.append(...source.cloneNode(true).childNodes);
    // The clone must not repeat ids (the hidden label is what markers are named by).
    card.querySelectorAll("[id]").forEach(function (el) { el.removeAttribute("id"); });
    marker.parentNode.append(card);
    marker.setAttribute("aria-describedby", "cite-card");
    owner = marker;
    // Keep the card on screen: under the marker, shifted left or flipped up when needed.
    card.style.left = marker.offsetLeft + "px";
    var box = card.getBoundingClientRect();
    if (box.right > window.innerWidth - 8) {
      card.style.left = Math.max(marker.offsetLeft - (box.right - window.innerWidth + 8),
        -marker.parentNode.getBoundingClientRect().left + 8) + "px";
    }
    if (box.bottom > window.innerHeight && box.top > box.height + 40) card.classList.add("above");
  }

  function markerOf(node) {
    return node instanceof Element ? node.closest('a.cite[href^="#source-"]') : null;
  }

  function leaving(event) {
    var group = owner && owner.parentNode;
    return group && !(event.relatedTarget instanceof Node && group.contains(event.relatedTarget));
  }

  document.addEventListener("mouseover", function (e) {
    var marker = markerOf(e.target);
    if (marker) showCard(marker);
  });
  document.addEventListener("focusin", function (e) {
    var marker = markerOf(e.target);
    if (marker) showCard(marker);
  });
  document.addEventListener("mouseout", function (e) {
    // A card opened by keyboard focus stays while the focus does.
    if (leaving(e) && !owner.parentNode.contains(document.activeElement)) hideCard();
  });
  document.addEventListener("focusout", function (e) {
    if (leaving(e)) hideCard();
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape" || !card) return;
    if (card.contains(document.activeElement)) owner.focus();
    hideCard();
  });

  // --- gallery lightbox ------------------------------------------------------------------
  var dialog = null;
  var thumbs = [];
  var current = 0;

  function lightbox() {
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.className = "lightbox";
    dialog.id = "lightbox";
    dialog.setAttribute("aria-label", "Image viewer");
    dialog.innerHTML =
      '<figure><img class="lightbox-image" alt="" referrerpolicy="no-referrer">' +
      '<figcaption><span class="lightbox-title"></span> ' +
      '<a class="lightbox-origin" target="_blank" rel="noopener noreferrer">Open the page it comes from</a>' +
      '</figcaption></figure>' +
      '<button type="button" class="lightbox-prev" aria-label="Previous image">‹</button>' +
      '<button type="button" class="lightbox-next" aria-label="Next image">›</button>' +
      '<button type="button" class="lightbox-close" aria-label="Close">×</button>';
    document.body.append(dialog);
    dialog.addEventListener("close", function () {
      if (thumbs[current] && thumbs[current].isConnected) thumbs[current].focus();
    });
    dialog.addEventListener("click", function (e) {
      var button = e.target.closest("button");
      if (e.target === dialog || (button && button.classList.contains("lightbox-close"))) dialog.close();
      else if (button) show(current + (button.classList.contains("lightbox-prev") ? -1 : 1));
    });
    dialog.addEventListener("keydown", function (e) {
      if (e.key === "ArrowLeft") show(current - 1);
      else if (e.key === "ArrowRight") show(current + 1);
      else return;
      e.preventDefault();
    });
    return dialog;
  }

  function show(index) {
    current = (index + thumbs.length) % thumbs.length;
    var thumb = thumbs[current];
    var small = thumb.querySelector("img");
    var big = dialog.querySelector(".lightbox-image");
    ["width", "height"].forEach(function (name) {
      var value = small.getAttribute(name);
      if (value) big.setAttribute(name, value);
      else big.removeAttribute(name);
    });
    big.src = small.currentSrc || small.src;
    big.alt = small.alt;
    dialog.querySelector(".lightbox-title").textContent = small.alt;
    dialog.querySelector(".lightbox-origin").href = thumb.href;
    dialog.dataset.index = String(current);
  }

  document.addEventListener("click", function (e) {
    var thumb = e.target instanceof Element && e.target.closest("a.gallery-thumb");
    // Modified clicks keep their meaning: open the origin page in a new tab or window.
    if (!thumb || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    thumbs = Array.from(thumb.closest(".gallery").querySelectorAll("a.gallery-thumb"));
    lightbox();
    show(thumbs.indexOf(thumb));
    if (!dialog.open) dialog.showModal();
  });

  // --- print ------------------------------------------------------------------------------
  // The button is hidden in the markup so that it only shows where it can work.
  function enablePrint() {
    document.querySelectorAll("[data-print][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }
  document.addEventListener("click", function (e) {
    if (e.target instanceof Element && e.target.closest("[data-print]")) window.print();
  });
  // Answers swapped in by the status poll bring their own button.
  document.addEventListener("htmx:afterSettle", enablePrint);
  enablePrint();
})();
