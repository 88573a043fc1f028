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
