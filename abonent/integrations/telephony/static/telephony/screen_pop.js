// The screen-pop: opens the operator's event stream (only when base.html put the #screen-pop mount, i.e. the
// user has an extension) and shows each ring as a card with links to the matched subscribers. Text goes in through
// textContent only: nothing from the PBX (a caller id) can become markup.
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function show(mount, pop) {
    var card = el("div", "card shadow screen-pop-card mb-2");
    card.setAttribute("data-call", String(pop.call));
    var header = el("div", "card-header d-flex align-items-center");
    header.appendChild(el("strong", "me-auto screen-pop-title", pop.title));
    var close = el("button", "btn-close");
    close.type = "button";
    close.setAttribute("aria-label", pop.close);
    close.addEventListener("click", function () { card.remove(); });
    header.appendChild(close);
    card.appendChild(header);
    var body = el("div", "card-body small");
    (pop.subscribers || []).forEach(function (s) {
      var row = el("div", "screen-pop-subscriber mb-2");
      if (s.foreign) {
        row.appendChild(el("div", "text-secondary", s.text));
      } else {
        var link = el("a", "fw-semibold", s.account + " " + s.name);
        link.href = s.url;
        row.appendChild(link);
        (s.lines || []).forEach(function (line) { row.appendChild(el("div", "", line)); });
      }
      body.appendChild(row);
    });
    if (pop.none) body.appendChild(el("div", "text-secondary", pop.none));
    if (pop.more) body.appendChild(el("div", "text-secondary", pop.more));
    card.appendChild(body);
    mount.insertBefore(card, mount.firstChild);
    while (mount.children.length > 3) mount.removeChild(mount.lastChild);
  }

  // The stream answers 204 to staff without an extension; EventSource then closes for good. Remember it for a few
  // minutes so that every page of such a user does not ask again (an extension given meanwhile works after that).
  var OFF_KEY = "abonent.screenPop.off", OFF_MS = 5 * 60 * 1000;

  function start() {
    var mount = document.getElementById("screen-pop");
    if (!mount || !window.EventSource) return;
    try {
      var off = Number(window.sessionStorage.getItem(OFF_KEY) || 0);
      if (off && Date.now() - off < OFF_MS) return;
    } catch (e) { /* storage disabled: just ask */ }
    var source = new EventSource(mount.getAttribute("data-events-url"));
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        try { window.sessionStorage.setItem(OFF_KEY, String(Date.now())); } catch (e) { /* ignore */ }
      }
    });
    source.addEventListener("open", function () {
      try { window.sessionStorage.removeItem(OFF_KEY); } catch (e) { /* ignore */ }
    });
    source.addEventListener("pop", function (event) {
      try { show(mount, JSON.parse(event.data)); } catch (e) { /* a torn message: the next ring comes whole */ }
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
