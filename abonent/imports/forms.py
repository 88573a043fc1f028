"""The import wizard's forms: the upload, the column mapping (one select per column of the file), and the run's
options with a decision per duplicate group. They parse input only; the actions decide what is acceptable."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from abonent.core.forms import StyledForm
from abonent.core.models import Branch

from .models import DuplicateDecision, Entity
from .wizard_selectors import field_choices

_LIST_SPLIT_RE = re.compile(r"[\s,;]+")
MAX_PILOT_IDS = 10_000


def split_list(text: str) -> list[str]:
    return [part for part in _LIST_SPLIT_RE.split(text or "") if part]


class UploadForm(StyledForm):
    entity = forms.ChoiceField(label=_("The file holds"), choices=Entity.choices, initial=Entity.SUBSCRIBERS)
    source = forms.CharField(
        label=_("Old system"),
        max_length=50,
        help_text=_("For example mikbill or abills: a later file of the same system updates what this one imported."),
    )
    file = forms.FileField(label=_("File (CSV or XLSX)"))
    sheet = forms.CharField(
        label=_("Sheet"), max_length=100, required=False, help_text=_("XLSX only; empty: the first sheet.")
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.ABONENT_IMPORT_MAX_BYTES
        if upload.size > limit:
            # Refused before the bytes are read into memory; the action checks the content's size again.
            raise ValidationError(
                _("The file is larger than %(limit)s MB.") % {"limit": round(limit / 1024 / 1024, 1)},
                code="file_too_large",
            )
        return upload


def check_mappable(headers: list[str]) -> None:
    """Refused (on ``file``) when the mapping form could not be sent back: it carries two selects a column and a few
    other fields, and Django refuses a POST of more than ``DATA_UPLOAD_MAX_NUMBER_FIELDS``."""
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    most = (limit - 10) // 2 if limit is not None else None
    if most is not None and len(headers) > most:
        raise ValidationError(
            {
                "file": ValidationError(
                    _("The file has %(n)s columns; the wizard maps at most %(most)s: remove the columns not imported.")
                    % {"n": len(headers), "most": most},
                    code="file_too_wide",
                )
            }
        )


class MappingForm(StyledForm):
    """Per non-empty header of the file a select of our field (``col_<index>``) and a second one (``col_<index>_also``)
    for a column that fills two fields (Mikbill's ``uid`` is the old id and the old account number), and an
    optional name to save the mapping as a profile for the next file of the same shape."""

    save_profile_as = forms.CharField(
        label=_("Save as a profile named"),
        max_length=100,
        required=False,
        help_text=_("Optional: the next file of this shape is mapped in one click."),
    )

    def __init__(self, *args, entity: str, headers: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = headers
        choices = [("", _("— not imported —")), *field_choices(entity)]
        self.labels = dict(field_choices(entity))
        self.column_fields = []
        for position, header in enumerate(headers):
            if not header:
                continue
            name = f"col_{position}"
            for key, label in ((name, header), (f"{name}_also", _("%(column)s, also as") % {"column": header})):
                self.fields[key] = forms.ChoiceField(label=label, choices=choices, required=False)
                self.fields[key].widget.attrs["class"] = "form-select form-select-sm"
            self.column_fields.append((position, name))

    def clean(self):
        data = super().clean()
        mapping: dict[str, str] = {}
        for position, name in self.column_fields:
            for key in (name, f"{name}_also"):
                target = data.get(key)
                if not target:
                    continue
                if target in mapping:
                    self.add_error(
                        key,
                        ValidationError(
                            _("“%(field)s” is chosen for two columns: “%(first)s” and “%(second)s”.")
                            % {
                                "field": self.labels[target].removesuffix(" *"),
                                "first": mapping[target],
                                "second": self.headers[position],
                            },
                            code="mapping_field_twice",
                        ),
                    )
                    continue
                mapping[target] = self.headers[position]
        data["mapping"] = mapping
        return data

    def select_name(self, field_name: str) -> str | None:
        """The select where ``field_name`` was chosen (to put an action's refusal on it)."""
        data = getattr(self, "cleaned_data", {})
        for _position, name in self.column_fields:
            for key in (name, f"{name}_also"):
                if data.get(key) == field_name:
                    return key
        return None


class OptionsForm(StyledForm):
    cutover_date = forms.DateField(
        label=_("The old system has charged through"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Imported subscriptions are charged here from the next day."),
    )
    default_branch = forms.ModelChoiceField(
        label=_("Branch of rows that name none"), queryset=Branch.objects.none(), required=False
    )
    duplicate_default = forms.ChoiceField(
        label=_("Duplicates, unless decided below"), choices=DuplicateDecision.choices, initial=DuplicateDecision.SKIP
    )
    pilot_branches = forms.MultipleChoiceField(
        label=_("Pilot: only these branches"), required=False, widget=forms.SelectMultiple(attrs={"size": 4})
    )
    pilot_nas = forms.CharField(
        label=_("Pilot: only these NAS"),
        required=False,
        max_length=2000,
        help_text=_("The NAS names as the file has them, separated by commas."),
    )
    pilot_old_ids = forms.CharField(
        label=_("Pilot: only these old ids or account numbers"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Separated by spaces, commas or new lines. Empty pilot fields: every row."),
    )

    def __init__(self, *args, groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        branches = Branch.objects.filter(is_active=True).order_by("name")
        self.fields["default_branch"].queryset = branches
        self.fields["pilot_branches"].choices = [(b.name, b.name) for b in branches]
        self.groups = list(groups)
        decisions = [("", _("as by default")), *DuplicateDecision.choices]
        for group in self.groups:
            name = f"dup_{group.pk}"
            self.fields[name] = forms.ChoiceField(label=group.key, choices=decisions, required=False)
            self.fields[name].widget.attrs["class"] = "form-select form-select-sm"

    def clean_pilot_old_ids(self):
        ids = split_list(self.cleaned_data.get("pilot_old_ids", ""))
        if len(ids) > MAX_PILOT_IDS:
            raise ValidationError(
                _("At most %(n)s ids in a pilot: import the rest as a whole.") % {"n": MAX_PILOT_IDS},
                code="pilot_too_long",
            )
        return ids

    def pilot(self) -> dict:
        data = self.cleaned_data
        ids = data.get("pilot_old_ids") or []
        # One list, two readings: the old system's id or its account number, whichever the operator pasted.
        return {
            "branches": list(data.get("pilot_branches") or []),
            "nas": split_list(data.get("pilot_nas", "")),
            "old_ids": ids,
            "accounts": ids,
        }

    def decisions(self) -> dict[int, str]:
        return {group.pk: self.cleaned_data.get(f"dup_{group.pk}") or "" for group in self.groups}

    def group_fields(self):
        return [(group, self[f"dup_{group.pk}"]) for group in self.groups]
