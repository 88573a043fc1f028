from django import forms
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import ConsoleForm


class LoginForm(ConsoleForm):
    username = forms.CharField(
        label=_("Login"), max_length=150, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"})
    )
    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class CodeForm(ConsoleForm):
    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        help_text=_("Six digits from your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "one-time-code", "spellcheck": "false"}),
    )


class EnrolmentCodeForm(ConsoleForm):
    code = forms.CharField(
        label=_("Code from the app"),
        max_length=20,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )


class PasswordAndCodeForm(ConsoleForm):
    """Re-authentication before a change to one's own second factor."""

    password = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        help_text=_("Six digits from your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )
