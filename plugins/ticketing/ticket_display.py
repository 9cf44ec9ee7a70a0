"""The code a ticket's holder is shown: what a plugin offers (a signed code for the door), else ``ticket.code``."""

from __future__ import annotations

from bilten_core.kernel import kernel
from plugins.ticketing.orders import Ticket


def display_code(ticket: Ticket) -> str:
    """The code to print and show for ``ticket``, from the ``ticket_code_for_display`` hook or its own."""
    offered = kernel().plugins.hook_for_tenant("ticket_code_for_display")(ticket=ticket)
    return offered or ticket.code
