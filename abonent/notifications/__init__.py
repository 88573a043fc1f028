"""Notifications: messages to subscribers by e-mail, SMS and Telegram, through an outbox.

Any app queues a message with ``actions.notify`` (one subscriber) or ``actions.notify_many`` (a sweep's
thousands), inside its own transaction: the message commits with what it tells, or not at all. Each message is
rendered at queueing from the event's template (per channel and language, ``Template`` or the defaults in
``templates_default``), for each channel the subscriber can and wants to be reached on, and is unique by its
``dedup_key``: queueing the same notice again is a no-op. The worker (``delivery``) sends what is due with
retries and backoff, holding SMS and Telegram back during quiet hours in the subscriber's time zone, and
records a final status per message. This app is a sink: it imports ``core`` and ``subscribers`` only;
other apps call it, and register bulk-message audiences (``audiences``) for what only they know.
"""
