from django import template

from abonent.core.money import format_money
from abonent.core.phones import format_phone

register = template.Library()


@register.filter
def money(value):
    """``{{ balance|money }}`` → ``1 234,50 ₽`` in the active language's number format."""
    if value is None or value == "":
        return ""
    return format_money(value)


@register.filter
def phone(value):
    return format_phone(value) if value else ""


@register.simple_tag(takes_context=True)
def has_perm(context, perm):
    user = context["request"].user
    return user.has_perm(perm)
