"""Staff and subscriber actions on notifications; queueing itself is ``queueing.notify`` / ``notify_many``."""

from .queueing import Notice, notify, notify_many

__all__ = ["Notice", "notify", "notify_many"]
