"""``{% screen_pop %}`` in base.html: the mount point of the screen-pop for staff who have an extension (one
indexed query per page; nothing for the others, so their pages open no stream)."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

from abonent.staff.permissions import Perm, has_perm

from .. import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def screen_pop(context) -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not has_perm(user, Perm.CALL_VIEW):
        return ""
    if not selectors.extension_of(user):
        return ""
    return format_html(
        '<div id="screen-pop" class="screen-pop" data-events-url="{}" aria-live="polite"></div>',
        reverse("telephony:events"),
    )
