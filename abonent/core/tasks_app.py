"""django-tasks-db's app under a name in the operator's language (its admin section said "Tasks Database Backend").

The library marks its models' names, fields and statuses for translation but ships no Russian; they are listed
here so that ``makemessages`` keeps them in our catalogue, which Django merges with every app's (LOCALE_PATHS).
"""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_tasks_db.apps import TasksAppConfig


class TasksDatabaseConfig(TasksAppConfig):
    verbose_name = _("Background tasks")


LIBRARY_MESSAGES = (
    _("Task Result"),
    _("Task Results"),
    _("enqueued at"),
    _("started at"),
    _("finished at"),
    _("args kwargs"),
    _("priority"),
    _("task path"),
    _("worker id"),
    _("queue name"),
    _("backend name"),
    _("run after"),
    _("return value"),
    _("exception class path"),
    _("traceback"),
    pgettext_lazy("Task", "Ready"),
    pgettext_lazy("Task", "Running"),
    pgettext_lazy("Task", "Failed"),
    pgettext_lazy("Task", "Successful"),
)
