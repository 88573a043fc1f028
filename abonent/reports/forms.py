from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm
from abonent.core.models import Branch
from abonent.staff.permissions import allowed_branch_ids

from .receivables import BUCKETS


class ReceivablesFilterForm(ConsoleForm):
    bucket = forms.ChoiceField(
        label=_("In debt for"), required=False, choices=[("", _("Any time")), *((b.key, b.label) for b in BUCKETS)]
    )
    branch = forms.ModelChoiceField(
        label=_("Branch"), required=False, queryset=Branch.objects.none(), empty_label=_("All branches")
    )
    q = forms.CharField(
        label=_("Account or name"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        branches = Branch.objects.order_by("name")
        ids = allowed_branch_ids(user)
        self.fields["branch"].queryset = branches if ids is None else branches.filter(pk__in=ids)
