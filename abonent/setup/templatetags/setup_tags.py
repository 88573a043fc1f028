from django import template

from ..selectors import shows_banner

register = template.Library()


@register.inclusion_tag("setup/_banner.html", takes_context=True)
def setup_banner(context):
    """The "Finish set-up" banner on every console page of an administrator until the wizard is done; none on
    the wizard's own pages. One query, and only for those who may run the wizard."""
    request = context.get("request")
    user = getattr(request, "user", None)
    in_wizard = getattr(getattr(request, "resolver_match", None), "app_name", "") == "setup"
    return {"show": user is not None and not in_wizard and shows_banner(user)}
