"""My tickets over HTTP: a signed-in buyer sees this tenant's orders bought with their confirmed address."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from bilten_core.auth.models import Account
from bilten_core.auth.passwords import hash_password
from bilten_core.auth.sessions import COOKIE_NAME
from bilten_core.db import db
from bilten_core.testing import host_of

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Buyer:
    """An account signed in through the sign-in page of ``tenant``'s host."""

    def __init__(self, app, tenant, email):
        self.client = app.test_client()
        self.base = f"http://{tenant.primary_domain}"
        page = self.get("/account/sign-in")
        token = CSRF.findall(page.text)[0]
        signed_in = self.client.post("/account/sign-in", base_url=self.base,
                                     data={"email": email, "password": PASSWORD, "csrf_token": token})
        assert signed_in.status_code == 302, signed_in.text

    def get(self, path):
        return self.client.get(path, base_url=self.base)


def _account(app, email, verified=True):
    with app.app_context():
        account = Account(email=email, display_name="Ann Buyer", password_hash=hash_password(PASSWORD),
                          email_verified_at=datetime.now(UTC) if verified else None)
        db.session.add(account)
        db.session.commit()
        return account.id


def _unverify(app, account_id):
    with app.app_context():
        db.session.get(Account, account_id).email_verified_at = None
        db.session.commit()


def _order(client, tenant, type_id, email, quantity=1):
    reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                           json={"items": [{"ticket_type_id": type_id, "quantity": quantity}]})
    assert reserved.status_code == 201, reserved.text
    ordered = client.post("/api/v1/orders", headers=host_of(tenant),
                          json={"reservation_id": reserved.get_json()["id"], "email": email, "name": "Ann"})
    assert ordered.status_code == 201, ordered.text
    return ordered.get_json()


def _email():
    return f"buyer-{uuid.uuid4().hex[:8]}@example.org"


def test_a_verified_buyer_sees_their_orders_newest_first_with_ticket_codes(client, tk_app, tenant, catalog):
    email = _email()
    _event, _quota, free = catalog.simple(size=10, kind="free", price_minor=0)
    _event2, _quota2, paid = catalog.simple(size=10, price_minor=2500)
    first = _order(client, tenant, free, email, quantity=2)
    # Bought as a guest with the address written differently: still theirs.
    second = _order(client, tenant, paid, email.upper())
    someone_else = _order(client, tenant, free, _email())
    _account(tk_app, email)

    page = Buyer(tk_app, tenant, email).get("/my/tickets")
    assert page.status_code == 200, page.text
    assert "no-store" in page.headers["Cache-Control"]
    assert page.text.index(second["code"]) < page.text.index(first["code"])
    assert all(ticket["code"] in page.text for ticket in first["tickets"])
    # Unpaid: the order is listed, its codes not yet.
    assert second["status"] == "awaiting_payment"
    assert not any(ticket["code"] in page.text for ticket in second["tickets"])
    assert "Awaiting payment" in page.text
    assert someone_else["code"] not in page.text
    assert not any(ticket["code"] in page.text for ticket in someone_else["tickets"])
    assert 'name="viewport"' in page.text


def test_an_unverified_address_shows_nothing_but_how_to_verify(client, tk_app, tenant, catalog):
    email = _email()
    _event, _quota, free = catalog.simple(size=10, kind="free", price_minor=0)
    order = _order(client, tenant, free, email)
    account_id = _account(tk_app, email)
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
    mine_here = _order(client, tenant, here, email)
    mine_there = _order(client, other, there, email)
    _account(tk_app, email)

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
