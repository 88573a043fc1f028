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
