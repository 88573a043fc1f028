"""``{% incident_banner %}`` on the portal's home (the open incidents of the signed-in subscriber) and
``{% ticket_incidents ticket %}`` on a ticket's console page (the incidents it is linked to)."""

from django import template

from .. import selectors

register = template.Library()


@register.inclusion_tag("incidents/_portal_banner.html", takes_context=True)
def incident_banner(context):
    request = context.get("request")
    subscriber = getattr(request, "subscriber", None)
    return {"incidents": selectors.open_incidents_of(subscriber.pk) if subscriber is not None else []}


@register.inclusion_tag("incidents/_ticket_incidents.html")
def ticket_incidents(ticket):
    return {"incidents": selectors.incidents_of_ticket(ticket.pk)}
