"""Mass incidents: an outage or planned work linked to NAS and addresses, the subscribers it affects, one message to
them, their tickets linked, and a compensation credited exactly once (docs/incidents.md)."""
