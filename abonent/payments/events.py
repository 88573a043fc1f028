"""What payments does after other apps' commits (none yet) and the events it emits:

- ``payments.payment_received(payment_id)``: a payment credited or put in suspense (receipts, notifications);
- ``payments.payment_cancelled(payment_id)``;
- ``payments.refund_created(refund_id)``: a refund that needs a return receipt.
"""
