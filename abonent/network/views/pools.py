"""IP pools: the list with each pool's use at the last sample (warning and danger thresholds), adding one."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, has_perm, require_perm

from .. import actions
from ..forms import IpPoolForm
from ..monitoring import selectors as monitoring


@require_perm(Perm.NETWORK_VIEW)
def pool_list(request):
    return render(
        request,
        "network/pool_list.html",
        {
            "states": monitoring.pool_states(),
            "warning_percent": settings.ABONENT_NETWORK_POOL_WARNING_PERCENT,
            "danger_percent": settings.ABONENT_NETWORK_POOL_DANGER_PERCENT,
            "can_manage": has_perm(request.user, Perm.NETWORK_MANAGE),
        },
    )


@require_perm(Perm.NETWORK_MANAGE)
def pool_create(request):
    form = IpPoolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            pool = actions.do_create_ip_pool(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Pool %(name)s added.") % {"name": pool.name})
            return redirect("network:pool_list")
    return render(request, "network/pool_form.html", {"form": form}, status=422 if form.errors else 200)
