"""The console's forms for bank statements: the upload, and assigning a suspense line to a subscriber."""

from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm


class StatementUploadForm(ConsoleForm):
    file = forms.FileField(
        label=_("Statement file"),
        help_text=_("The 1CClientBankExchange text file (kl_to_1c.txt) exported from the bank or from 1C."),
    )


class AssignLineForm(ConsoleForm):
    candidate = forms.TypedChoiceField(label=_("Candidate"), coerce=int, required=False, empty_value=None)
    account_number = forms.CharField(label=_("or account number"), max_length=20, required=False)
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["candidate"].choices = [("", "—")] + [
            (s.pk, f"{s.account_number} {s.display_name}") for s in candidates
        ]
        if not candidates:
            del self.fields["candidate"]
            self.fields["account_number"].label = _("Account number")

    def clean(self):
        data = super().clean()
        if not data.get("candidate") and not (data.get("account_number") or "").strip():
            raise forms.ValidationError(_("Choose the subscriber or type their account number."), code="required")
        return data
