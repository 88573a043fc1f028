"""The subscriber's documents in the portal (``/my/documents/``): their final invoices, acts, VAT invoices and UPDs
with the PDFs, downloaded only through here (another subscriber's id is a 404), and the statement of account as a
PDF for any dates, from the same statement the Pay section shows."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.urls import path
from django.utils import translation

from abonent.core import clock
from abonent.core.forms import apply_action_errors
from abonent.documents import rendering
from abonent.documents.selectors import own_document, own_documents
from abonent.documents.views import pdf_response, stored_pdf_response

from .. import pay_data
from .pay import _periods, _statement_form


def document_list(request):
    context = {"documents": own_documents(request.subscriber), "statement_form": _statement_form(request)}
    return render(request, "portal/documents.html", context)


def document_pdf(request, pk: int):
    document = own_document(request.subscriber, pk)
    return stored_pdf_response(document)


def statement_pdf(request):
    form = _statement_form(request)
    if not form.is_valid():
        context = {"form": form, "periods": _periods(clock.today())}
        return render(request, "portal/statement.html", context, status=400)
    start, end = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
    try:
        with translation.override("ru"):  # the PDF is a Russian form; its operation names with it
            account = pay_data.statement(request.subscriber, start, end)
            data = rendering.statement_pdf(request.subscriber, account)
    except ValidationError as exc:  # too many operations for one PDF: a shorter period
        apply_action_errors(form, exc)
        context = {"form": form, "periods": _periods(clock.today())}
        return render(request, "portal/statement.html", context, status=400)
    compact = lambda day: day.isoformat().replace("-", "")  # noqa: E731 - 20261112
    name = f"statement-{request.subscriber.account_number}-{compact(start)}-{compact(end)}.pdf"
    return pdf_response(data, name)


urlpatterns = [
    path("documents/", document_list, name="pay_documents"),
    path("documents/<int:pk>/pdf/", document_pdf, name="pay_document_pdf"),
    path("pay/statement.pdf", statement_pdf, name="pay_statement_pdf"),
]
