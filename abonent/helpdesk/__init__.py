"""Tickets (the seed's «заявки»): a subscriber's problem or request, its thread and status.

Opened from the portal, its API or the console; answered by staff in public replies or internal notes; the
subscriber is told of a public reply or a status change (the ``ticket_updated`` notification). This is the minimal
model issue 15 needs; issue 18 adds queues and assignees, SLA timers, attachments, mass incidents and field work on
top of the same two tables (docs/helpdesk.md).
"""
