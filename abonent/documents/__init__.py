"""Invoices, acts, VAT invoices (or УПД) and statements of account: numbered, rendered to PDF, never changed."""
