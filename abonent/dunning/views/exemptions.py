"""Exemptions from blocking: the list (in force, not started, expired, revoked), a new one for a subscriber or a
group, revoking one."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, check_perm, has_perm, require_perm

from .. import actions, selectors
from ..forms import ExemptionFilterForm, ExemptionForm

PAGE_SIZE = 50


@require_perm(Perm.DUNNING_VIEW)
def exemption_list(request):
    filter_form = ExemptionFilterForm(request.GET or None)
    status = filter_form.cleaned_data.get("status", "") if filter_form.is_valid() else ""
    page = Paginator(selectors.list_exemptions(request.user, status=status), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    can_manage = has_perm(request.user, Perm.DUNNING_MANAGE)
    form = ExemptionForm(request.POST or None, user=request.user) if can_manage else None
    status_code = 200
    if request.method == "POST":
        check_perm(request.user, Perm.DUNNING_MANAGE)
        if form.is_valid():
            data = form.cleaned_data
            try:
                actions.do_create_exemption(
                    acting_user=request.user,
                    subscriber=data["subscriber"],
                    group=data["group"],
                    reason=data["reason"],
                    starts_on=data["starts_on"],
                    expires_on=data["expires_on"],
                )
            except ValidationError as exc:
                apply_action_errors(form, exc)
            except actions.AccessBusy as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Exempt from blocking."))
                return redirect("dunning:exemptions")
        status_code = 422
    rows = [(e, *_status(e)) for e in page.object_list]
    context = {"filter_form": filter_form, "form": form, "page": page, "rows": rows, "can_manage": can_manage}
    return render(request, "dunning/exemptions.html", context, status=status_code)


def _status(exemption) -> tuple[str, str]:
    status = selectors.exemption_status(exemption)
    return status, selectors.ExemptionStatus(status).label


@require_POST
@require_perm(Perm.DUNNING_MANAGE)
def exemption_revoke(request, pk):
    exemption = get_object_or_404(selectors.visible_exemptions(request.user), pk=pk)
    selectors.check_exemption_scope(request.user, group=exemption.group)
    try:
        actions.do_revoke_exemption(exemption, acting_user=request.user, reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except actions.AccessBusy as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Exemption revoked."))
    return redirect("dunning:exemptions")
