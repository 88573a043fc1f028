"""``{% screen_pop %}`` in base.html: the mount point of the screen-pop for staff who may see calls. It costs no
query (pages' query counts are pinned): whether the user has an extension is the stream's answer (204 without one),
which screen_pop.js remembers for a while so such a user's pages do not ask again and again."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

from abonent.staff.permissions import Perm, has_perm

register = template.Library()


@register.simple_tag(takes_context=True)
def screen_pop(context) -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not has_perm(user, Perm.CALL_VIEW):
        return ""
    return format_html(
        '<div id="screen-pop" class="screen-pop" data-events-url="{}" aria-live="polite"></div>',
        reverse("telephony:events"),
    )
