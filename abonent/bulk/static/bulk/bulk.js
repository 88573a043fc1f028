// The subscriber list's bulk bar and the bulk action form (templates bulk/_bar.html, bulk/subscribers.html):
// "tick all on this page", the count of ticked rows, and only the fields of the chosen action. Listeners on document,
// so rows HTMX swaps in work too (no inline script: the Content-Security-Policy forbids it).
(function () {
  "use strict";

  function updateCount() {
    var ticked = document.querySelectorAll("input[data-bulk-row]:checked").length;
    document.querySelectorAll("[data-bulk-count]").forEach(function (el) { el.textContent = String(ticked); });
    document.querySelectorAll("[data-bulk-ticked]").forEach(function (button) { button.disabled = ticked === 0; });
  }

  function showFieldsOf(select) {
    var kind = select.value;
    document.querySelectorAll("[data-bulk-for]").forEach(function (block) {
      block.hidden = block.getAttribute("data-bulk-for").split(" ").indexOf(kind) === -1;
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("input[data-bulk-all]")) {
      document.querySelectorAll("input[data-bulk-row]").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.matches("input[data-bulk-all], input[data-bulk-row]")) { updateCount(); }
    if (target.matches("#bulk-action-form select[name=kind]")) { showFieldsOf(target); }
  });

  function init() {
    updateCount();
    var kind = document.querySelector("#bulk-action-form select[name=kind]");
    if (kind) { showFieldsOf(kind); }
  }

  document.addEventListener("htmx:afterSwap", updateCount);
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
