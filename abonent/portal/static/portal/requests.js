// The requests pages: the address field only for a connection request, and no second request by a double tap.
"use strict";

(() => {
  const form = document.querySelector("form[data-request-form]");
  if (form) {
    const category = form.elements.namedItem("category");
    const address = form.querySelector("[data-address-field]");
    const wanted = form.dataset.connectionCategory;
    const sync = () => {
      // Kept visible while it holds text or an error, so nothing typed is hidden.
      const input = address.querySelector("input");
      const needed = category.value === wanted || input.value !== "" || input.classList.contains("is-invalid");
      address.hidden = !needed;
    };
    category.addEventListener("change", sync);
    sync();
  }
})();

// <button data-disable-on-submit>: disabled once its form is really submitted (not when a confirm was declined).
document.addEventListener("submit", (event) => {
  if (event.defaultPrevented) {
    return;
  }
  const button = event.target.querySelector("[data-disable-on-submit]");
  if (button) {
    // After the submission has started: a disabled button's name/value would not be sent.
    window.setTimeout(() => { button.disabled = true; }, 0);
  }
});
