"""Bank statements in the 1C exchange format (``1CClientBankExchange``): reading the file (``parser``, pure) and
finding whose payment each line is (``matching``). The import itself is the action
``payments.actions.do_import_statement``; the rows are ``payments.models.BankStatement`` and ``StatementLine``.
"""
