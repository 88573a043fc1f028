"""Prices that differ from a plan's list price: individual and group prices, promotions, bundles.

``models`` (registered by ``billing.models``), ``rules`` (what price and discount a subscription has on a day:
pure, and loaded set-based for the billing run), ``actions``, ``selectors``, ``api``, ``views``.
docs/billing-pricing.md has the rules and the decisions.
"""
