"""Demo catalog: registered before subscriptions (see abonent.core.seeding)."""
