"""Dunning rules: the default, per subscriber group and per plan (warn days, suspend after days or never)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, has_perm, require_perm

from .. import actions, selectors
from ..forms import RuleForm
from ..models import DunningRule


@require_perm(Perm.DUNNING_VIEW)
def rule_list(request):
    context = {"rules": selectors.list_rules(), "can_manage": has_perm(request.user, Perm.DUNNING_MANAGE)}
    return render(request, "dunning/rules.html", context)


@require_perm(Perm.DUNNING_MANAGE)
def rule_edit(request, pk=None):
    rule = get_object_or_404(DunningRule, pk=pk) if pk else None
    initial = RuleForm.initial_for(rule) if rule else {"warn_days": 3, "suspend_after_days": 14}
    form = RuleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_save_rule(rule, acting_user=request.user, **form.rule_fields())
        except ValidationError as exc:
            # The model names "group"/"plan" for a scope that has its rule already, "__all__" for a second default.
            apply_action_errors(form, exc, {"is_default": "scope"})
        else:
            messages.success(request, _("Rule saved."))
            return redirect("dunning:rules")
    title = _("Dunning rule") if rule else _("New dunning rule")
    return render(
        request,
        "dunning/rule_form.html",
        {"form": form, "rule": rule, "title": title},
        status=422 if form.errors else 200,
    )


@require_POST
@require_perm(Perm.DUNNING_MANAGE)
def rule_delete(request, pk):
    rule = get_object_or_404(DunningRule, pk=pk)
    actions.do_delete_rule(rule, acting_user=request.user)
    messages.success(request, _("Rule deleted."))
    return redirect("dunning:rules")
