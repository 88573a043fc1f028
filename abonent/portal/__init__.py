"""The subscriber's own cabinet at ``/my/`` and its JSON API at ``/api/v1/my/``.

The portal writes nothing of other apps itself: it calls their actions (billing, payments, helpdesk,
notifications) with ``acting_user=None`` for the subscriber, and keeps only what its own login needs: the
subscriber's password, sessions and API tokens, one-time codes and login attempts (ADR 0017).
"""
