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

  function start() {
    var mount = document.getElementById("screen-pop");
    if (!mount || !window.EventSource) return;
    var source = new EventSource(mount.getAttribute("data-events-url"));
    source.addEventListener("pop", function (event) {
      try { show(mount, JSON.parse(event.data)); } catch (e) { /* a torn message: the next ring comes whole */ }
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
