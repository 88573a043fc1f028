"""The dunning console: the access panel's actions on the card (``card``), the queue (``queue``), exemptions and
rules (``settings``). Thin: parse, check access (permission 403, another branch's subscriber 404), call an action
or a selector, render."""
