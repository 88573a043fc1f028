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

// Subscriber search from the keyboard. "/" focuses the page's search box (the list's own, else the navbar's)
// unless one is typing. The navbar's box is a combobox: htmx fills #global-search-results with a listbox of
// the first matches (subscribers/_quick.html); arrows move through it (aria-activedescendant), Enter opens the
// one chosen or, with none chosen, submits to the list (which opens the card of an exact account, phone,
// login, IP or MAC), Escape closes it. On the list, ArrowDown goes from the box to the results and the arrows
// move between them; Enter with exactly one result shown for what is typed opens it.
(() => {
  const typingIn = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  const box = () => document.getElementById("global-search-input");
  const panel = () => document.getElementById("global-search-results");
  const options = () => Array.from(panel().querySelectorAll('[role="option"]'));
  const activeIndex = () => options().findIndex((option) => option.classList.contains("active"));

  function choose(index) {
    const input = box();
    options().forEach((option, i) => {
      option.classList.toggle("active", i === index);
      option.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    const chosen = options()[index];
    if (chosen) {
      input.setAttribute("aria-activedescendant", chosen.id);
      chosen.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function show(open) {
    const list = panel();
    list.hidden = !open;
    box().setAttribute("aria-expanded", open ? "true" : "false");
    if (!open) {
      choose(-1);
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || typingIn(event.target)) {
      return;
    }
    const input = document.getElementById("id_q") || box();
    if (input) {
      event.preventDefault();
      input.focus();
      input.select();
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.target.id !== "global-search-results") {
      return;
    }
    show(event.target.children.length > 0 && box().value.trim() !== "");
    if (event.target.querySelector("[data-autoselect]")) {
      choose(0); // an exact identifier, or the only match: Enter opens it
    }
  });

  document.addEventListener("input", (event) => {
    if (box() && event.target === box()) {
      choose(-1); // what was chosen belongs to the results of the text before
      if (!box().value.trim()) {
        show(false);
      }
    }
  });

  document.addEventListener("keydown", (event) => {
    const input = box();
    if (!input || event.target !== input) {
      return;
    }
    const list = panel();
    const count = options().length;
    if ((event.key === "ArrowDown" || event.key === "ArrowUp") && count) {
      event.preventDefault();
      if (list.hidden) {
        show(true);
      }
      const index = activeIndex();
      if (event.key === "ArrowDown") {
        choose(index < count - 1 ? index + 1 : 0);
      } else {
        choose(index > 0 ? index - 1 : count - 1);
      }
    } else if (event.key === "Enter") {
      const index = list.hidden ? -1 : activeIndex();
      if (index >= 0) {
        event.preventDefault();
        window.location.assign(options()[index].dataset.href);
      }
    } else if (event.key === "Escape" && !list.hidden) {
      event.preventDefault();
      show(false);
    }
  });

  document.addEventListener("click", (event) => {
    const list = panel();
    if (list && !list.hidden && !event.target.closest("#global-search")) {
      show(false);
    }
  });

  // A press inside the results keeps the focus in the box (so leaving the box means leaving the search), and a
  // click on an option's padding opens it like a click on its link.
  document.addEventListener("mousedown", (event) => {
    if (panel() && panel().contains(event.target)) {
      event.preventDefault();
    }
  });
  document.addEventListener("click", (event) => {
    const option = event.target.closest("#global-search-results [role='option']");
    if (option && !event.target.closest("a")) {
      window.location.assign(option.dataset.href);
    }
  });
  document.addEventListener("focusout", (event) => {
    if (box() && event.target === box() && !panel().hidden) {
      show(false);
    }
  });

  // The list page.
  document.addEventListener("submit", (event) => {
    if (event.target.id !== "filters") {
      return;
    }
    const single = document.querySelector("#results [data-single-result]");
    const input = document.getElementById("id_q");
    if (single && input && single.dataset.query.trim() === input.value.trim()) {
      event.preventDefault();
      window.location.assign(single.dataset.singleResult);
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") {
      return;
    }
    const links = Array.from(document.querySelectorAll("#results a.subscriber-link"));
    if (event.target.id === "id_q") {
      if (event.key === "ArrowDown" && links.length) {
        event.preventDefault();
        links[0].focus();
      }
      return;
    }
    const index = links.indexOf(event.target);
    if (index < 0) {
      return;
    }
    event.preventDefault();
    if (event.key === "ArrowDown") {
      links[Math.min(index + 1, links.length - 1)].focus();
    } else {
      (index > 0 ? links[index - 1] : document.getElementById("id_q")).focus();
    }
  });
})();
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
