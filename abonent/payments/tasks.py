"""Periodic jobs of payments (autopay, receipts, gateway status checks) register here."""
