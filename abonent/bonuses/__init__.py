"""Bonus points: earned for on-time payment, tenure and referrals, spent on fees, expiring; all in the ledger."""
