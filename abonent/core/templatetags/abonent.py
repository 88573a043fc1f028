from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

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
def number(value):
    """``{{ online|number }}`` → ``12 345``: a count meant to be read, grouped in the active language's format.
    Ids stay plain ``{{ x.pk }}`` (USE_THOUSAND_SEPARATOR is off: a grouped id no longer parses)."""
    if value is None or value == "":
        return ""
    return number_format(value, force_grouping=True)


@register.filter
def phone(value):
    return format_phone(value) if value else ""


@register.simple_tag(takes_context=True)
def has_perm(context, perm):
    user = context["request"].user
    return user.has_perm(perm)


@register.filter
def duration_hm(seconds):
    """Seconds as hours and minutes (``2 h 05 min``; under an hour ``35 min``), minutes rounded down."""
    if seconds in (None, ""):
        return ""
    minutes = max(0, int(seconds)) // 60
    if minutes < 60:
        return _("%(minutes)s min") % {"minutes": minutes}
    return _("%(hours)s h %(minutes)02d min") % {"hours": minutes // 60, "minutes": minutes % 60}
