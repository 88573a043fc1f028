"""The console's documents pages."""

from django.urls import path

from . import views

app_name = "documents"
urlpatterns = [
    path("", views.document_list, name="list"),
    path("list-export/", views.document_list_export, name="list_export"),
    path("<int:pk>/", views.document_detail, name="detail"),
    path("<int:pk>/pdf/", views.document_pdf, name="pdf"),
    path("<int:pk>/correct/", views.document_correct, name="correct"),
    path("generate/", views.generate, name="generate"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("export/", views.export, name="export"),
    path("subscribers/<int:subscriber_pk>/issue/", views.issue_month, name="issue"),
]
