"""Staff console pages of the network under ``/staff/network/``: the NAS (list, card, edit), the sessions online
with their Disconnect and CoA buttons, the IP pools, traffic by NAS and plan; and the forms of the subscriber card's
network panel. Thin: parse, check access, call an action or selector, render. NETWORK_VIEW sees, NETWORK_MANAGE
changes."""
