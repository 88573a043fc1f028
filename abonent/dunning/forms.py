"""Forms of the dunning console: they parse and display; the actions decide what is allowed (their errors land on
the fields they name)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import Plan
from abonent.core.forms import ConsoleForm
from abonent.core.models import Branch
from abonent.staff.permissions import allowed_branch_ids
from abonent.subscribers.forms import branch_choices
from abonent.subscribers.models import SubscriberGroup
from abonent.subscribers.selectors import subscriber_by_account, visible_subscribers

from .actions import MAX_REASON
from .selectors import GROUP_SCOPE_MESSAGE, QUEUE_STATES, ExemptionStatus

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ReasonForm(ConsoleForm):
    reason = forms.CharField(label=_("Reason"), max_length=MAX_REASON, widget=forms.TextInput)


class QueueFilterForm(ConsoleForm):
    state = forms.ChoiceField(label=_("Access state"), required=False)
    branch = forms.ModelChoiceField(
        label=_("Branch"), queryset=Branch.objects.none(), required=False, empty_label=_("All branches")
    )
    exempt = forms.ChoiceField(
        label=_("Exemption"),
        required=False,
        choices=[("", _("Any")), ("yes", _("Exempt")), ("no", _("Not exempt"))],
    )
    order = forms.ChoiceField(
        label=_("Sort by"),
        required=False,
        choices=[("owed", _("Owed, largest first")), ("since", _("Since, longest first"))],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["state"].choices = [("", _("Any state"))] + [(s.value, s.label) for s in QUEUE_STATES]
        self.fields["branch"].queryset = branch_choices(user)


class ExemptionFilterForm(ConsoleForm):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *ExemptionStatus.choices]
    )


class ExemptionForm(ConsoleForm):
    """For one subscriber (by account number) or a whole group; the action checks the dates."""

    account_number = forms.CharField(label=_("Account"), max_length=20, required=False)
    group = forms.ModelChoiceField(
        label=_("or a subscriber group"), queryset=SubscriberGroup.objects.all(), required=False
    )
    reason = forms.CharField(label=_("Reason"), max_length=MAX_REASON)
    starts_on = forms.DateField(label=_("From"), required=False, widget=DATE_WIDGET)
    expires_on = forms.DateField(label=_("Until"), widget=DATE_WIDGET)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self):
        data = super().clean()
        account, group = (data.get("account_number") or "").strip(), data.get("group")
        if bool(account) == bool(group) and "group" not in self.errors:
            raise ValidationError(_("Give an account number or choose a group, not both."), code="scope")
        data["subscriber"] = None
        if group is not None and allowed_branch_ids(self.user) is not None:
            self.add_error("group", ValidationError(GROUP_SCOPE_MESSAGE, code="branch_scope"))
        if account:
            subscriber = subscriber_by_account(account, queryset=visible_subscribers(self.user))
            if subscriber is None:
                self.add_error("account_number", ValidationError(_("No such account."), code="not_found"))
            data["subscriber"] = subscriber
        return data


class SubscriberExemptionForm(ConsoleForm):
    """The card's form: the subscriber is the card's."""

    reason = forms.CharField(label=_("Reason"), max_length=MAX_REASON)
    expires_on = forms.DateField(label=_("Until"), widget=DATE_WIDGET)


SCOPE_DEFAULT, SCOPE_GROUP, SCOPE_PLAN = "default", "group", "plan"


class RuleForm(ConsoleForm):
    name = forms.CharField(label=_("Name"), max_length=100)
    scope = forms.ChoiceField(
        label=_("Applies to"),
        choices=[
            (SCOPE_DEFAULT, _("Everyone (default)")),
            (SCOPE_GROUP, _("A subscriber group")),
            (SCOPE_PLAN, _("A plan")),
        ],
    )
    group = forms.ModelChoiceField(label=_("Subscriber group"), queryset=SubscriberGroup.objects.all(), required=False)
    plan = forms.ModelChoiceField(label=_("Plan"), queryset=Plan.objects.all(), required=False)
    warn_days = forms.IntegerField(label=_("Warn when money lasts fewer than, days"), min_value=0, max_value=365)
    suspend_after_days = forms.IntegerField(
        label=_("Suspend after restricted for, days"), min_value=1, max_value=3650, required=False
    )
    never_suspend = forms.BooleanField(label=_("Never suspend automatically"), required=False)

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        if scope == SCOPE_GROUP and not data.get("group") and "group" not in self.errors:
            self.add_error("group", ValidationError(_("Choose a group."), code="required"))
        if scope == SCOPE_PLAN and not data.get("plan") and "plan" not in self.errors:
            self.add_error("plan", ValidationError(_("Choose a plan."), code="required"))
        days_missing = data.get("suspend_after_days") is None and "suspend_after_days" not in self.errors
        if days_missing and not data.get("never_suspend"):
            self.add_error(
                "suspend_after_days", ValidationError(_("Give the days, or tick “never suspend”."), code="required")
            )
        return data

    def rule_fields(self) -> dict:
        data = self.cleaned_data
        scope = data["scope"]
        return {
            "name": data["name"],
            "group": data.get("group") if scope == SCOPE_GROUP else None,
            "plan": data.get("plan") if scope == SCOPE_PLAN else None,
            "warn_days": data["warn_days"],
            "suspend_after_days": None if data.get("never_suspend") else data["suspend_after_days"],
        }

    @classmethod
    def initial_for(cls, rule) -> dict:
        scope = SCOPE_GROUP if rule.group_id else SCOPE_PLAN if rule.plan_id else SCOPE_DEFAULT
        return {
            "name": rule.name,
            "scope": scope,
            "group": rule.group_id,
            "plan": rule.plan_id,
            "warn_days": rule.warn_days,
            "suspend_after_days": rule.suspend_after_days,
            "never_suspend": rule.suspend_after_days is None,
        }
