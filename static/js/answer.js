// Behaviour for the rendered answer fragment (sonarweb/answers): hover and tap cards for
// citation markers, the image lightbox, the contents (open on wide screens, a current-section
// highlight), copy buttons for code and citations, and printing. Listeners sit on document so
// fragments swapped in later by htmx work; per-fragment set-up runs again after each swap.
// No inline scripts or style attributes in markup (CSP); CSSOM styles are allowed.
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
    // The card is a preview: it adds no Tab stops (the source card in the list has them).
    // Its links still work by pointer and touch.
    var jump = document.createElement("a");
    jump.className = "cite-card-jump";
    jump.href = marker.hash;
    jump.textContent = "Show in the sources";
    card.append(jump);
    card.querySelectorAll("a, button, [tabindex]").forEach(function (el) { el.tabIndex = -1; });
    marker.parentNode.append(card);
    marker.setAttribute("aria-describedby", "cite-card");
    owner = marker;
    // Keep the card on screen: under the marker, shifted left or flipped up when needed.
    card.style.left = marker.offsetLeft + "px";
    var box = card.getBoundingClientRect();
    // The layout viewport's width: on a phone, innerWidth grows with the card that overflows.
    var width = document.documentElement.clientWidth;
    if (box.right > width - 8) {
      card.style.left = Math.max(marker.offsetLeft - (box.right - width + 8),
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

  // --- following a marker to its source, and back -------------------------------------------
  // A marker followed (click, tap on an open preview, Enter) leads to its source card, which
  // takes the focus; the card then offers "Back to the text", and Escape in it does the same:
  // the focus returns to the very marker it came from (the browser alone would leave it at
  // the top of the sources, hundreds of Tabs from where the reader was).
  var cameFrom = null;

  function backButton(source) {
    var button = source.querySelector(".source-back");
    if (button) return button;
    button = document.createElement("button");
    button.type = "button";
    button.className = "source-back";
    button.textContent = "Back to the text";
    var tools = source.querySelector(".source-tools");
    if (tools) tools.prepend(button);
    else source.append(button);
    return button;
  }

  function arrive(marker) {
    var source = document.getElementById(marker.hash.slice(1));
    if (!source) return;
    document.querySelectorAll(".source-back").forEach(function (old) { old.remove(); });
    cameFrom = marker;
    var button = backButton(source);
    button.setAttribute("aria-label", "Back to the text, citation " + marker.textContent.trim());
    if (!source.hasAttribute("tabindex")) source.tabIndex = -1;
    source.focus({ preventScroll: true });
  }

  function goBack() {
    var marker = cameFrom;
    if (!marker || !marker.isConnected) return;
    document.querySelectorAll(".source-back").forEach(function (old) { old.remove(); });
    cameFrom = null;
    marker.focus({ preventScroll: true });
    marker.scrollIntoView({ block: "center" });
  }

  document.addEventListener("click", function (e) {
    var target = e.target instanceof Element ? e.target : null;
    if (target && target.closest(".source-back")) {
      e.preventDefault();
      goBack();
      return;
    }
    // A marker, or "Show in the sources" on its preview card.
    var marker = markerOf(target) || (target && target.closest(".cite-card-jump") ? owner : null);
    // After the browser has followed the link (and scrolled to the card); a first tap that
    // only opened the preview is not a visit.
    if (marker) {
      window.setTimeout(function () {
        if (!e.defaultPrevented) arrive(marker);
      }, 0);
    }
    // A back-link on a source card: the focus on the first marker of that place in the text.
    var backlink = target && target.closest("a.backlink");
    if (backlink) {
      window.setTimeout(function () {
        var place = document.getElementById(backlink.hash.slice(1));
        var first = place && place.querySelector("a.cite");
        if (first) first.focus({ preventScroll: true });
      }, 0);
    }
  });

  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape" || card || !cameFrom) return;
    var active = document.activeElement;
    var source = active instanceof Element && active.closest(".source-card");
    if (source && source.id === cameFrom.hash.slice(1)) {
      e.preventDefault();
      goBack();
    }
  });

  // Touch: the first tap on a marker previews its source in the card instead of jumping
  // thousands of pixels to the list; a second tap (or "Show in the sources") goes there.
  var touched = false;
  var tapOnOpen = false;
  document.addEventListener("pointerdown", function (e) {
    touched = e.pointerType === "touch" || e.pointerType === "pen";
    var marker = markerOf(e.target);
    tapOnOpen = Boolean(marker) && owner === marker;
  }, true);
  document.addEventListener("click", function (e) {
    var marker = markerOf(e.target);
    if (marker && touched && !tapOnOpen) {
      e.preventDefault();
      showCard(marker);
      tapOnOpen = true;
      return;
    }
    // A tap elsewhere closes the preview.
    if (card && !marker && !(e.target instanceof Node && card.contains(e.target))) hideCard();
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
      '<figure><span class="lightbox-count" aria-live="polite"></span>' +
      '<img class="lightbox-image" alt="" referrerpolicy="no-referrer">' +
      '<figcaption><span class="lightbox-title"></span> ' +
      '<a class="lightbox-origin" target="_blank" rel="noopener noreferrer">Open the page it comes from</a>' +
      '</figcaption></figure>' +
      '<button type="button" class="lightbox-prev" aria-label="Previous image">‹</button>' +
      '<button type="button" class="lightbox-next" aria-label="Next image">›</button>' +
      '<button type="button" class="lightbox-close" aria-label="Close" autofocus>×</button>';
    document.body.append(dialog);
    dialog.addEventListener("close", function () {
      if (thumbs[current] && thumbs[current].isConnected) thumbs[current].focus();
    });
    dialog.addEventListener("click", function (e) {
      // The click that ends a swipe is not a tap on the backdrop.
      if (swiped) { swiped = false; return; }
      var button = e.target.closest("button");
      if (e.target === dialog || (button && button.classList.contains("lightbox-close"))) dialog.close();
      else if (button) show(current + (button.classList.contains("lightbox-prev") ? -1 : 1));
    });
    // Swipe (touch, pen or a dragged mouse): left for the next image, right for the previous.
    // Pointer events only; the picture's touch-action (answer.css) leaves horizontal moves
    // to this and vertical ones and pinch-zoom to the browser.
    var start = null;
    var swiped = false;
    dialog.addEventListener("pointerdown", function (e) {
      if (e.target.closest("button, a")) return;
      start = { x: e.clientX, y: e.clientY, id: e.pointerId };
      swiped = false;
    });
    dialog.addEventListener("pointercancel", function () { start = null; });
    dialog.addEventListener("pointerup", function (e) {
      if (!start || e.pointerId !== start.id) return;
      var dx = e.clientX - start.x;
      var dy = e.clientY - start.y;
      start = null;
      if (Math.abs(dx) < 40 || Math.abs(dx) < Math.abs(dy) * 1.5) return;
      swiped = true;
      show(current + (dx < 0 ? 1 : -1));
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
    // The thumbnail's size only sets the shape; the full-size copy is what the box shows.
    ["width", "height"].forEach(function (name) {
      var value = small.getAttribute(name);
      if (value) big.setAttribute(name, value);
      else big.removeAttribute(name);
    });
    big.src = thumb.dataset.full || small.currentSrc || small.src;
    big.alt = small.alt;
    dialog.querySelector(".lightbox-title").textContent = small.alt;
    dialog.querySelector(".lightbox-origin").href = thumb.href;
    dialog.dataset.index = String(current);
    dialog.querySelector(".lightbox-count").textContent =
      "Image " + (current + 1) + " of " + thumbs.length;
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
    // Close first: Escape works anyway, and the arrows move between images.
    dialog.querySelector(".lightbox-close").focus();
  });

  // --- print ------------------------------------------------------------------------------
  // Lazy images below the fold were printed as blanks: load them all before printing.
  function eagerImages() {
    var images = Array.from(document.querySelectorAll('.answer img[loading="lazy"]'));
    images.forEach(function (img) { img.loading = "eager"; });
    return images;
  }
  window.addEventListener("beforeprint", eagerImages);

  // The button is hidden in the markup so that it only shows where it can work.
  function enablePrint() {
    document.querySelectorAll("[data-print][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }
  document.addEventListener("click", function (e) {
    if (!(e.target instanceof Element && e.target.closest("[data-print]"))) return;
    var pending = eagerImages().filter(function (img) { return !img.complete; });
    var loaded = pending.map(function (img) {
      return new Promise(function (resolve) {
        img.addEventListener("load", resolve, { once: true });
        img.addEventListener("error", resolve, { once: true });
      });
    });
    // An image host that never answers must not block printing for long.
    var patience = new Promise(function (resolve) { window.setTimeout(resolve, 5000); });
    Promise.race([Promise.all(loaded), patience]).then(function () { window.print(); });
  });

  // --- contents: open beside the text on wide screens, a bar on phones; current section -----
  var WIDE = window.matchMedia("(min-width: 1100px)");

  function setUpContents(toc) {
    var box = toc.querySelector("details");
    var summary = box && box.querySelector("summary");
    if (!box || !summary) return;
    var current = document.createElement("span");
    current.className = "toc-current";
    current.setAttribute("aria-hidden", "true");
    summary.append(current);
    // Wide screens: the list is always shown, so its summary is no Tab stop; phones: the
    // summary opens and closes the list.
    function layout() {
      box.open = WIDE.matches;
      if (WIDE.matches) summary.tabIndex = -1;
      else summary.removeAttribute("tabindex");
    }
    layout();
    WIDE.addEventListener("change", layout);

    var links = [];
    var targets = [];
    toc.querySelectorAll('a[href^="#"]').forEach(function (link) {
      var target = document.getElementById(decodeURIComponent(link.hash.slice(1)));
      if (target) { links.push(link); targets.push(target); }
    });
    var shown = -1;

    // One Tab stop for the whole list (a roving tabindex): Tab reaches the entry of the
    // section being read, the arrow keys, Home and End move between entries, Enter follows.
    var hint = document.createElement("span");
    hint.id = "toc-keys";
    hint.hidden = true;
    hint.textContent = "Arrow keys move between the entries of the contents.";
    toc.append(hint);
    var roving = null;
    function rove(link) {
      if (roving === link) return;
      if (roving) roving.tabIndex = -1;
      roving = link;
      if (link) link.tabIndex = 0;
    }
    links.forEach(function (link) {
      link.tabIndex = -1;
      link.setAttribute("aria-describedby", "toc-keys");
    });
    rove(links[0] || null);
    toc.addEventListener("focusin", function (e) {
      var link = e.target instanceof Element && e.target.closest("a");
      if (link && links.indexOf(link) >= 0) rove(link);
    });
    toc.addEventListener("keydown", function (e) {
      var index = links.indexOf(document.activeElement);
      if (index < 0) return;
      // Entries hidden on phones (the third level) are skipped.
      var shownLinks = links.filter(function (link) { return link.getClientRects().length > 0; });
      var at = shownLinks.indexOf(links[index]);
      var next = null;
      if (e.key === "ArrowDown" || e.key === "ArrowRight") next = shownLinks[Math.min(at + 1, shownLinks.length - 1)];
      else if (e.key === "ArrowUp" || e.key === "ArrowLeft") next = shownLinks[Math.max(at - 1, 0)];
      else if (e.key === "Home") next = shownLinks[0];
      else if (e.key === "End") next = shownLinks[shownLinks.length - 1];
      else return;
      e.preventDefault();
      if (next) { rove(next); next.focus(); }
    });

    function scroller() {
      var list = box.querySelector("ol");
      return [toc, list].find(function (el) { return el && el.scrollHeight > el.clientHeight + 1; });
    }

    function mark(index) {
      if (index === shown) return;
      if (shown >= 0) links[shown].removeAttribute("aria-current");
      shown = index;
      current.textContent = index >= 0 ? "· " + links[index].textContent : "";
      if (index < 0) return;
      var link = links[index];
      link.setAttribute("aria-current", "location");
      // Tab into the contents lands on the section being read (unless the focus is in it).
      if (!toc.contains(document.activeElement)) rove(link);
      // Keep the highlighted entry in view inside a list that scrolls on its own.
      var pane = scroller();
      if (!pane) return;
      var box1 = pane.getBoundingClientRect();
      var box2 = link.getBoundingClientRect();
      if (box2.top < box1.top || box2.bottom > box1.bottom) {
        pane.scrollTop += box2.top - box1.top - box1.height / 3;
      }
    }

    // The current section is the last one whose start has scrolled past the top fifth of
    // the screen. Targets are in document order, so a binary search reads few positions.
    function spy() {
      ticking = false;
      var line = Math.min(window.innerHeight / 5, 160);
      var low = 0;
      var high = targets.length - 1;
      var found = -1;
      while (low <= high) {
        var middle = (low + high) >> 1;
        if (targets[middle].getBoundingClientRect().top <= line) {
          found = middle;
          low = middle + 1;
        } else {
          high = middle - 1;
        }
      }
      mark(found);
    }
    var ticking = false;
    window.addEventListener("scroll", function () {
      if (ticking || !toc.isConnected) return;
      ticking = true;
      window.requestAnimationFrame(spy);
    }, { passive: true });
    spy();

    // On a phone the list closes once a section is chosen, leaving the text in view.
    toc.addEventListener("click", function (e) {
      if (!WIDE.matches && e.target instanceof Element && e.target.closest("a")) box.open = false;
    });
  }

  // --- skip links: the focus moves to where they lead -------------------------------------
  // "Skip to the answer" leads into the text itself (past the contents), so the next Tab is
  // its first link or citation; the others lead to the sources or the images, whose first
  // link is the next Tab. Without JavaScript the browser moves there by itself.
  document.addEventListener("click", function (e) {
    var link = e.target instanceof Element && e.target.closest(".skip-links a[href^='#']");
    if (!link) return;
    var target = document.getElementById(link.hash.slice(1));
    if (!target) return;
    if (link.hasAttribute("data-skip-to-text")) target = target.querySelector(".answer-body") || target;
    e.preventDefault();
    if (!target.hasAttribute("tabindex")) target.tabIndex = -1;
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: "start" });
  });

  // --- copy buttons for code blocks and citations (copy.js does the copying) --------------
  function copyButton(label, name) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy-button";
    button.textContent = label;
    button.setAttribute("aria-label", name);
    button.hidden = true;
    return button;
  }

  function addCopyButtons(answer) {
    answer.querySelectorAll("pre").forEach(function (pre, i) {
      var tools = document.createElement("div");
      tools.className = "code-tools";
      var button = copyButton("Copy", "Copy code block " + (i + 1));
      button.setAttribute("data-copy-code", "");
      button.setAttribute("data-copied", "Code copied");
      tools.append(button);
      pre.before(tools);
    });
    answer.querySelectorAll(".source-card").forEach(function (source) {
      var number = source.id.replace("source-", "");
      var title = source.querySelector(".source-title");
      var meta = Array.from(source.querySelectorAll(".source-domain, .source-date"))
        .map(function (el) { return el.textContent.trim(); })
        .filter(Boolean);
      var text = "[" + number + "] " + (title ? title.textContent.trim() : "") + ".";
      if (meta.length) text += " " + meta.join(", ") + ".";
      if (title && title.href) text += " " + title.href;
      var tools = document.createElement("div");
      tools.className = "source-tools";
      var button = copyButton("Copy citation", "Copy citation " + number);
      button.setAttribute("data-copy-text", text);
      button.setAttribute("data-copied", "Citation " + number + " copied");
      tools.append(button);
      source.append(tools);
      // "Cited in 4 places: 1 2 3 4": a screen reader lists those links as "1", "2"...
      // Each is named for what it is (the visible number stays part of the name).
      var places = source.querySelectorAll("a.backlink");
      places.forEach(function (link) {
        link.setAttribute("aria-label", "Cited place " + link.textContent.trim() + " of " +
          places.length + " in the text");
      });
    });
    document.dispatchEvent(new CustomEvent("sonarweb:added-copy-buttons"));
  }

  // --- back to top: shown once the reader is a screen down --------------------------------
  function placeBackToTop() {
    var link = document.querySelector(".back-to-top");
    if (link) link.classList.toggle("at-top", window.scrollY < window.innerHeight);
  }
  window.addEventListener("scroll", placeBackToTop, { passive: true });

  function setUp() {
    document.querySelectorAll("article.answer").forEach(function (answer) {
      if (answer.dataset.ready) return;
      answer.dataset.ready = "1";
      var toc = answer.querySelector(".answer-toc");
      if (toc) setUpContents(toc);
      addCopyButtons(answer);
    });
    enablePrint();
    placeBackToTop();
  }

  // Answers swapped in by the status poll bring their own contents and buttons.
  document.addEventListener("htmx:afterSettle", setUp);
  setUp();
})();
