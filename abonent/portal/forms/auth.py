"""The login's forms. What a phone needs to fill them in one go: the autocomplete names a password manager reads
(username, current-password, one-time-code, new-password), a numeric keypad for the code, no capital first letter
or spelling check in a login. The actions check everything again; the forms only shape the input."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ..actions import MAX_PASSWORD_LENGTH
from ..codes import DIGITS, clean_code
from ..identify import MAX_LENGTH
from ..models import CodeChannel

LOGIN_ATTRS = {
    "autocomplete": "username",
    "autocapitalize": "none",
    "spellcheck": "false",
    "autocorrect": "off",
    "class": "form-control form-control-lg",
}


RULES = _("At least 10 characters; not a common password and not like your name or account number.")


def _password(autocomplete: str, label, help_text="") -> forms.CharField:
    return forms.CharField(
        label=label,
        help_text=help_text,
        max_length=MAX_PASSWORD_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete, "class": "form-control form-control-lg"}),
    )


class LoginField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Account number, PPPoE login or phone"))
        kwargs.setdefault("max_length", MAX_LENGTH)
        kwargs.setdefault("widget", forms.TextInput(attrs=LOGIN_ATTRS))
        super().__init__(**kwargs)


class LoginForm(forms.Form):
    login = LoginField()
    password = _password("current-password", _("Password"))


class CodeLoginForm(forms.Form):
    """The first step of getting a code: who you are."""

    login = LoginField(help_text=_("The account number is on your contract and on every receipt."))


class CodeChannelForm(forms.Form):
    """The second step: where to send the code (the page lists the contract's phone and e-mail, masked)."""

    login = LoginField(widget=forms.HiddenInput)
    channel = forms.ChoiceField(choices=CodeChannel.choices, widget=forms.RadioSelect, label=_("Send the code by"))


class CodeField(forms.CharField):
    def __init__(self, **kwargs):
        attrs = {
            "autocomplete": "one-time-code",
            "inputmode": "numeric",
            "pattern": r"[0-9 \-]*",
            "class": "form-control form-control-lg portal-code-input",
        }
        kwargs.setdefault("label", _("Code from the message"))
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("widget", forms.TextInput(attrs=attrs))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        code = clean_code(value)
        if not code:
            raise forms.ValidationError(_("The code is %(digits)d digits.") % {"digits": DIGITS}, code="code_format")
        return code


class ResetForm(forms.Form):
    """The last step: the code and the new password together (one page: nothing to keep between them)."""

    login = LoginField(widget=forms.HiddenInput)
    code = CodeField()
    new_password = _password("new-password", _("New password"), RULES)


class ChangePasswordForm(forms.Form):
    current_password = _password("current-password", _("Current password"))
    new_password = _password(
        "new-password",
        _("New password"),
        _(
            "At least 10 characters; not a common password and not like your name or account number. Your other "
            "devices will be logged out."
        ),
    )
