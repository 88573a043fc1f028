"""Usage rating: traffic over a plan's included volume charged per billing period (``traffic``); the pure
arithmetic in ``common``, the estimate the card, the portal and the API show in ``estimate``."""
