"""The fake's stand-ins for Stripe's hosted pages: checkout, the bank's 3-D Secure check, and notices.

They speak English only: they stand in for Stripe's pages, not for Bilten's.
"""

from __future__ import annotations

from html import escape
from typing import Any

from werkzeug.wrappers import Response


def money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


def redirect(location: str) -> Response:
    return Response(status=303, headers={"Location": location})


PAGE_STYLE = """
body { font: 1rem/1.5 system-ui, sans-serif; color: #1f2933; background: #fff; margin: 0; }
main { max-width: 28rem; margin: 0 auto; padding: 1.5rem 1rem; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input { box-sizing: border-box; width: 100%; font-size: 1.125rem; padding: .625rem; border: 2px solid #52606d;
        border-radius: .375rem; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; margin-top: 1rem; }
button { min-height: 2.75rem; min-width: 6rem; font-size: 1rem; padding: .5rem 1rem; border-radius: .375rem;
         border: 2px solid #1d4ed8; background: #1d4ed8; color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: #1d4ed8; }
:focus-visible { outline: 3px solid #b45309; outline-offset: 2px; }
.error { color: #b91c1c; font-weight: 600; }
"""


def html(status: int, title: str, body: str) -> Response:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - Test payments</title><style>{PAGE_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return Response(page, status=status, mimetype="text/html")


def checkout_page(session: dict[str, Any], items: list[dict[str, Any]], error: str | None = None,
                  status: int = 200) -> Response:
    currency = session["currency"]
    rows = "".join(
        f"<li>{escape(item['price_data']['product_data']['name'])} &times; {item['quantity']}: "
        f"{money(item['price_data']['unit_amount'] * item['quantity'], currency)}</li>"
        for item in items
    )
    alert = f'<p class="error" role="alert" id="card-error">{escape(error)}</p>' if error else ""
    described = ' aria-describedby="card-error" aria-invalid="true"' if error else ""
    body = (
        f"<ul>{rows}</ul><p>Total: <strong>{money(session['amount_total'], currency)}</strong></p>{alert}"
        f'<form method="post" action="/pay/{escape(session["id"])}">'
        '<label for="card">Card number</label>'
        f'<input id="card" name="card" inputmode="numeric" autocomplete="cc-number" required{described}>'
        '<div class="actions"><button type="submit" name="action" value="pay">Pay</button>'
        '<button type="submit" name="action" value="cancel" class="secondary" formnovalidate>Cancel</button>'
        "</div></form>"
    )
    return html(status, "Pay with card", body)


def authentication_page(action: str, amount: str) -> Response:
    body = (
        f"<p>Your bank asks you to confirm the payment of <strong>{escape(amount)}</strong>.</p>"
        f'<form method="post" action="{escape(action)}"><div class="actions">'
        '<button type="submit" name="action" value="authorise">Authorise</button>'
        '<button type="submit" name="action" value="fail" class="secondary">Fail</button>'
        "</div></form>"
    )
    return html(200, "Confirm this payment", body)

