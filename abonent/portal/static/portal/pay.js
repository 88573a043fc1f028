// The Pay section's behaviour, asked for by data- attributes (no inline scripts: the CSP allows static files only).
"use strict";

// The payment form: only a bank card can be saved for autopay, so the "save" box (and its consent text) hides
// when SBP is chosen, and is unticked so that a hidden box is never sent ticked.
function paySaveVisibility(form) {
  const save = form.querySelector("[data-pay-save]");
  const chosen = form.querySelector('input[name="method_type"]:checked');
  if (!save) {
    return;
  }
  const sbp = chosen && chosen.value === "sbp";
  save.hidden = sbp;
  if (sbp) {
    save.querySelectorAll('input[type="checkbox"]').forEach((box) => { box.checked = false; });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-pay-form]").forEach(paySaveVisibility);
});

document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-pay-form]");
  if (form && event.target.name === "method_type") {
    paySaveVisibility(form);
  }
});

// One press of "Pay" sends the form once; the server would answer a second send with the same payment anyway.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-pay-form]");
  if (!form || event.defaultPrevented) {
    return;
  }
  const button = form.querySelector("[data-pay-submit]");
  if (button) {
    window.setTimeout(() => { button.disabled = true; }, 0);
  }
});

// Back to a page the browser kept (bfcache): its "Pay" button must work again.
window.addEventListener("pageshow", () => {
  document.querySelectorAll("[data-pay-submit]").forEach((button) => { button.disabled = false; });
});

// Just sent from the payment form on the way to the gateway's page: go on at once, replacing this page in the history
// (Back from the gateway returns to the form). The link stays on the page for a browser without scripts.
document.addEventListener("DOMContentLoaded", () => {
  const forward = document.querySelector("a[data-pay-forward]");
  if (forward) {
    window.location.replace(forward.href);
  }
});
