// Behaviour the console's markup asks for with data- attributes. Pages carry no inline <script> and no on*=
// handler: the Content-Security-Policy runs scripts from our static files only (settings.py,
// ABONENT_CONTENT_SECURITY_POLICY). Listeners sit on the document, so markup swapped in by htmx works too.
"use strict";

// <select data-submit-on-change>: choosing an option submits its form (the language switcher).
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-submit-on-change]");
  if (field && field.form) {
    field.form.submit();
  }
});

// <select> whose options carry data-direction (the card's plan change): the parts of its form marked
// data-show-for-direction="X" show only while an option of direction X is chosen, and a hidden checkbox is unticked
// (the server drops it anyway: billing.forms.PlanChangeForm).
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-plan-directions]");
  if (!select || !select.form) {
    return;
  }
  const chosen = select.selectedOptions[0];
  const direction = chosen ? chosen.dataset.direction || "" : "";
  for (const part of select.form.querySelectorAll("[data-show-for-direction]")) {
    const shown = part.dataset.showForDirection === direction;
    part.classList.toggle("d-none", !shown);
    if (!shown) {
      for (const box of part.querySelectorAll("input[type=checkbox]")) {
        box.checked = false;
      }
    }
  }
});
