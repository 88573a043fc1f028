from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import Plan
from abonent.core.forms import ConsoleForm
from abonent.notifications.actions import MAX_PER_MINUTE, check_bulk_texts
from abonent.notifications.models import Channel
from abonent.subscribers.models import SubscriberGroup

from .models import BulkKind
from .rules import Params


class BulkActionForm(ConsoleForm):
    """What to do with the selection: the action and what it needs."""

    kind = forms.ChoiceField(label=_("Action"), choices=BulkKind.choices)
    group = forms.ModelChoiceField(
        label=_("Group"), required=False, queryset=SubscriberGroup.objects.order_by("name"), empty_label="—"
    )
    plan = forms.ModelChoiceField(
        label=_("New plan"),
        required=False,
        queryset=Plan.objects.filter(is_archived=False).select_related("service").order_by("service__name", "name"),
        empty_label="—",
        help_text=_("From the start of each subscription's next period; nothing is charged or credited now."),
    )
    replace_scheduled = forms.BooleanField(
        label=_("Replace scheduled changes"),
        required=False,
        help_text=_("Otherwise a subscription with a change to another plan scheduled already is skipped."),
    )
    channel = forms.ChoiceField(label=_("Channel"), required=False, choices=Channel.choices)
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False, help_text=_("For e-mail."))
    body = forms.CharField(label=_("Text"), max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 4}))
    marketing = forms.BooleanField(
        label=_("Advertising"),
        required=False,
        help_text=_("Sent only to subscribers who agreed to advertising."),
    )
    per_minute = forms.IntegerField(
        label=_("Messages per minute"), min_value=1, max_value=MAX_PER_MINUTE, initial=600, required=False
    )
    reason = forms.CharField(
        label=_("Comment for the history"), required=False, max_length=500, help_text=_("Written in each audit record.")
    )

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        required = _("Choose one.")
        if kind in (BulkKind.GROUP_ADD, BulkKind.GROUP_REMOVE) and not data.get("group"):
            self.add_error("group", ValidationError(required, code="required"))
        if kind == BulkKind.PLAN_CHANGE and not data.get("plan"):
            self.add_error("plan", ValidationError(required, code="required"))
        if kind == BulkKind.MESSAGE:
            if not data.get("channel"):
                self.add_error("channel", ValidationError(required, code="required"))
            else:
                try:
                    data["subject"], data["body"] = check_bulk_texts(
                        data["channel"], data.get("subject") or "", data.get("body") or ""
                    )
                except ValidationError as exc:
                    for field, errors in exc.error_dict.items():
                        for error in errors:
                            self.add_error(field, error)
        return data

    def params(self) -> Params:
        data = self.cleaned_data
        kind = data["kind"]
        if kind in (BulkKind.GROUP_ADD, BulkKind.GROUP_REMOVE):
            return Params(kind=kind, group_id=data["group"].pk)
        if kind == BulkKind.PLAN_CHANGE:
            return Params(kind=kind, plan_id=data["plan"].pk, replace_scheduled=bool(data.get("replace_scheduled")))
        return Params(
            kind=kind,
            channel=data["channel"],
            subject=data.get("subject") or "",
            body=data["body"],
            marketing=bool(data.get("marketing")),
            per_minute=data.get("per_minute") or 600,
        )
