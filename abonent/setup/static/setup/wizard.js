// The first-run wizard: "Copy" buttons for the NAS's configuration lines (no inline handlers: the
// Content-Security-Policy runs only our static files).
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) {
    return;
  }
  const source = document.querySelector(button.dataset.copyTarget);
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent).then(() => {
      button.classList.replace("btn-outline-secondary", "btn-success");
    });
  }
});
