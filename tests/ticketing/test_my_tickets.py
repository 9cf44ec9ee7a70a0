"""My tickets over HTTP: a signed-in buyer sees this tenant's orders bought with their confirmed address."""

from __future__ import annotations

import uuid

from bilten_core.auth.models import Account
from bilten_core.auth.sessions import COOKIE_NAME
from bilten_core.db import db
from bilten_core.testing import host_of
from tests.ticketing.event_factory import SiteClient, add_account, buy, shown_codes


class Buyer(SiteClient):
    """An account signed in through the sign-in page of ``tenant``'s host."""

    def __init__(self, app, tenant, email):
        super().__init__(app, tenant)
        self.sign_in(email)


def _unverify(app, account_id):
    with app.app_context():
        db.session.get(Account, account_id).email_verified_at = None
        db.session.commit()


def _email():
    return f"buyer-{uuid.uuid4().hex[:8]}@example.org"


def test_a_verified_buyer_sees_their_orders_newest_first_with_ticket_codes(client, tk_app, tenant, catalog):
    email = _email()
    _event, _quota, free = catalog.simple(size=10, kind="free", price_minor=0)
    _event2, _quota2, paid = catalog.simple(size=10, price_minor=2500)
    first = buy(client, tenant, (free, 2), email=email)
    # Bought as a guest with the address written differently: still theirs.
    second = buy(client, tenant, (paid, 1), email=email.upper())
    someone_else = buy(client, tenant, (free, 1), email=_email())
    add_account(tk_app, email)

    page = Buyer(tk_app, tenant, email).get("/my/tickets")
    assert page.status_code == 200, page.text
    assert "no-store" in page.headers["Cache-Control"]
    assert page.text.index(second["code"]) < page.text.index(first["code"])
    assert all(code in page.text for code in shown_codes(tk_app, tenant, first))
    # Unpaid: the order is listed, its codes not yet.
    assert second["status"] == "awaiting_payment"
    assert not any(code in page.text for code in shown_codes(tk_app, tenant, second))
    assert "Awaiting payment" in page.text
    assert someone_else["code"] not in page.text
    assert not any(ticket["code"] in page.text for ticket in someone_else["tickets"])
    assert 'name="viewport"' in page.text


def test_an_unverified_address_shows_nothing_but_how_to_verify(client, tk_app, tenant, catalog):
    email = _email()
    _event, _quota, free = catalog.simple(size=10, kind="free", price_minor=0)
    order = buy(client, tenant, (free, 1), email=email)
    account_id = add_account(tk_app, email)
    buyer = Buyer(tk_app, tenant, email)
    assert order["code"] in buyer.get("/my/tickets").text

    _unverify(tk_app, account_id)
    page = buyer.get("/my/tickets")
    assert page.status_code == 200
    assert "Confirm your email address first" in page.text
    assert order["code"] not in page.text
    assert order["tickets"][0]["code"] not in page.text


def test_anonymous_visitors_are_sent_to_sign_in(client, tenant):
    response = client.get("/my/tickets", headers=host_of(tenant))
    assert response.status_code == 302
    assert response.location == "/account/sign-in?next=/my/tickets"


def test_orders_of_another_tenant_never_show(client, tk_app, tenant, catalog, catalog_for, make_tenant):
    email = _email()
    other = make_tenant("tk-other")
    _e, _q, here = catalog.simple(size=5, kind="free", price_minor=0)
    _e2, _q2, there = catalog_for(other).simple(size=5, kind="free", price_minor=0)
    mine_here = buy(client, tenant, (here, 1), email=email)
    mine_there = buy(client, other, (there, 1), email=email)
    add_account(tk_app, email)

    page = Buyer(tk_app, tenant, email).get("/my/tickets")
    assert mine_here["code"] in page.text
    assert mine_there["code"] not in page.text
    assert mine_there["tickets"][0]["code"] not in page.text

    # Signed in on the other tenant's host, the same account sees only that tenant's order.
    elsewhere = Buyer(tk_app, other, email).get("/my/tickets")
    assert mine_there["code"] in elsewhere.text and mine_here["code"] not in elsewhere.text

    # A session of this tenant's host is worth nothing on the other's.
    replayed = tk_app.test_client()
    session_id = Buyer(tk_app, tenant, email).client.get_cookie(COOKIE_NAME, domain=tenant.primary_domain).value
    replayed.set_cookie(COOKIE_NAME, session_id, domain=other.primary_domain)
    response = replayed.get("/my/tickets", base_url=f"http://{other.primary_domain}")
    assert response.status_code == 302 and mine_there["code"] not in response.text
