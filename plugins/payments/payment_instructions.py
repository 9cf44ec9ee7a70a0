"""What a buyer who pays offline is told: the tenant's bank account and the order's reference for a bank
transfer, or that they pay at the entrance. Ticketing shows it on the order page and in the mail that says
how to pay (its ``payment_instructions`` hook)."""

from __future__ import annotations

from flask_babel import gettext as _

from plugins.payments.door import DOOR
from plugins.payments.offline_settings import bank_details
from plugins.ticketing.orders import Order
from plugins.ticketing.payments import INVOICE, PaymentInstructions


def spaced_iban(iban: str) -> str:
    """An IBAN in groups of four, as banks print it and buyers type it."""
    return " ".join(iban[start:start + 4] for start in range(0, len(iban), 4))


def _bank_transfer(order: Order) -> PaymentInstructions | None:
    bank = bank_details()
    if not bank.complete:
        return None  # no account to name: the buyer is told to wait for the invoice
    details = [(_("Account holder"), bank.account_holder or ""), (_("IBAN"), spaced_iban(bank.iban or ""))]
    if bank.bic:
        details.append((_("BIC"), bank.bic))
    if bank.bank_name:
        details.append((_("Bank"), bank.bank_name))
    details.append((_("Payment reference"), order.code))
    return PaymentInstructions(
        summary=_("Transfer the amount to this account and give the payment reference, so that your payment "
                  "is matched to your order."),
        details=details, note=bank.instructions,
    )


def instructions_for(order: Order) -> PaymentInstructions | None:
    if order.payment_provider == INVOICE:
        return _bank_transfer(order)
    if order.payment_provider == DOOR:
        return PaymentInstructions(
            summary=_("Pay at the entrance when you arrive, and show this order code there."),
            details=[(_("Order code"), order.code)],
        )
    return None
