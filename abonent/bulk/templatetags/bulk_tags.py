from django import template

from ..models import BulkKind

register = template.Library()


@register.simple_tag
def bulk_kinds():
    """The bulk actions for the subscriber list's bar: (value, label)."""
    return BulkKind.choices
