from django.urls import path

from . import views

app_name = "subscribers"
urlpatterns = [
    path("", views.subscriber_list, name="list"),
    path("new/", views.subscriber_create, name="create"),
    path("quick/", views.subscriber_quick_search, name="quick"),
    path("<int:pk>/", views.subscriber_card, name="card"),
    path("<int:pk>/edit/", views.subscriber_edit, name="edit"),
    path("<int:pk>/close/", views.subscriber_close, name="close"),
    path("<int:pk>/reopen/", views.subscriber_reopen, name="reopen"),
    path("<int:pk>/contacts/", views.contact_add, name="contact_add"),
    path("<int:pk>/contacts/<int:contact_pk>/remove/", views.contact_remove, name="contact_remove"),
    path("<int:pk>/addresses/", views.address_add, name="address_add"),
    path("<int:pk>/addresses/<int:address_pk>/remove/", views.address_remove, name="address_remove"),
    path("<int:pk>/notes/", views.note_add, name="note_add"),
    path("<int:pk>/history/", views.history_panel, name="history"),
    path("<int:pk>/notes/more/", views.notes_panel, name="notes"),
    path("<int:pk>/connection/", views.connection_event_add, name="connection_event_add"),
    path("<int:pk>/equipment/", views.equipment_assign, name="equipment_assign"),
    path("<int:pk>/equipment/<int:assignment_pk>/return/", views.equipment_return, name="equipment_return"),
]
