// Behaviour the portal's markup asks for with data- attributes. No inline <script>: the Content-Security-Policy
// runs scripts from our static files only.
"use strict";

// <select data-submit-on-change>: choosing an option submits its form (the language switcher).
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-submit-on-change]");
  if (field && field.form) {
    field.form.submit();
  }
});

// <form data-confirm="text">: ask before submitting (log out everywhere, cancel autopay).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// The service worker makes the portal installable on a phone's home screen (the manifest names the start page).
if ("serviceWorker" in navigator && document.body.dataset.serviceWorker) {
  navigator.serviceWorker.register(document.body.dataset.serviceWorker, { scope: "/my/" }).catch(() => {});
}
