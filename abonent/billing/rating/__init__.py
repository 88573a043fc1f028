"""Rating: charges computed from what was used. Traffic over a plan's included volume per billing period
(``traffic``; the pure arithmetic in ``common``, the estimate the card, the portal and the API show in ``estimate``),
and time online on pay-as-you-go plans (``time``, ``time_math``; the RADIUS side's budget in ``time_budget``)."""
