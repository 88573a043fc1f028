"""Demo and benchmark billing data: registered after subscribers (see abonent.core.seeding)."""
