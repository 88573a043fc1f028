from django import template

from abonent.reports.pages import reports_for

register = template.Library()


@register.simple_tag(takes_context=True)
def business_reports(context):
    """The reports the user may open, for the menu (``reports/_nav.html``)."""
    request = context.get("request")
    return reports_for(request.user) if request is not None else []
