"""Dunning: a subscriber's access follows the money (DESIGN.md invariant 5).

Each subscriber has one ``AccessState``: ``active`` → ``warned`` (the balance covers fewer than N days of fees)
→ ``restricted`` (balance + credit limit < 0: web traffic goes to the payment page) → ``suspended``
(restricted for D days: access rejected) → ``terminated`` by staff. ``frozen`` (every subscription on a
voluntary freeze) and ``blocked`` (an operator's block) are states of their own that the money rules leave
alone. Thresholds come from ``DunningRule`` (per subscriber group, per plan, or the default); an
``Exemption`` ("never block": hospitals, schools, staff) stops a subscriber at ``warned``.

The state is computed by ``actions.evaluate`` after every balance change and by the periodic sweep
(``sweep``); each change is written to ``AccessTransition``, notified through the notifications app and
announced as ``dunning.states_changed`` so that the network app pushes it to the NAS (CoA / Disconnect).
Network and RADIUS read the states through ``selectors``; this app never imports network.
"""
