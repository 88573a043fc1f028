from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VouchersConfig(AppConfig):
    name = "abonent.vouchers"
    label = "vouchers"
    verbose_name = _("Prepaid cards")

    def ready(self) -> None:
        from abonent.core import secrets

        from . import panels, tasks  # noqa: F401
        from .codes import rehash

        # The field-key rotation re-encrypts the codes; their lookup HMACs follow under the new key.
        secrets.register_field("vouchers.Voucher", "code_encrypted", on_rotated=rehash)
