"""The notifications pages of the staff console: the outbox (and a subscriber's full log), the templates with their
live preview, bulk messages, and the card panel's preferences form. One module per page group; views parse,
check access, call actions and selectors, render."""
