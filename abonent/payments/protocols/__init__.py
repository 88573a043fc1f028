"""Protocols outside callers speak to hand us payments: ``osmp`` (the QIWI/OSMP check/pay of terminals and bank
apps). Another protocol (Sber's "ЕПС", AllTime) is a module beside it over the same intake."""
