// The login pages: a "Show password" box turns the password field into plain text and back (no inline script).
"use strict";

document.addEventListener("change", (event) => {
  const box = event.target.closest("[data-show-password]");
  if (!box) {
    return;
  }
  const field = document.getElementById(box.dataset.showPassword);
  if (field) {
    field.type = box.checked ? "text" : "password";
  }
});
