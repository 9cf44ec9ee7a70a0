"""Finding an order as a guest, and downloading its tickets by a signed link or as its signed-in buyer."""

from __future__ import annotations

import random
import re
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bilten_core.auth.models import Account
from bilten_core.config import ThrottleSettings
from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import host_of
from tests.ticketing.event_factory import CSRF, SiteClient, add_account, buy, shown_codes

PDF_HREF = re.compile(r'href="(/orders/[A-Z0-9]+/tickets\.pdf\?token=[^"]+)"')
NOT_FOUND = "We found no order with this code and email address."


class Visitor(SiteClient):
    """A browser of ``tenant``'s storefront: one cookie jar, one client address."""

    def __init__(self, app, tenant):
        super().__init__(app, tenant)
        self.client.environ_base["REMOTE_ADDR"] = f"10.{random.randrange(256)}.{random.randrange(256)}.7"

    def post_form(self, path, form_page, data):
        return self.post(path, data, token=self.token_on(form_page))

    def find(self, email, code):
        return self.post_form("/orders/find", "/orders/find", {"email": email, "code": code})


def _email():
    return f"guest-{uuid.uuid4().hex[:8]}@example.org"


def _without_csrf(html):
    return CSRF.sub("", html)


@pytest.fixture
def free_type(catalog):
    return catalog.simple(size=20, kind="free", price_minor=0, name="Standing")[2]


def test_the_right_address_and_code_show_the_order_and_a_working_pdf_link(client, tk_app, tenant, free_type):
    email = _email()
    order = buy(client, tenant, (free_type, 2), email=email)
    visitor = Visitor(tk_app, tenant)
    form = visitor.get("/orders/find")
    assert form.status_code == 200
    assert 'name="viewport"' in form.text and "Find your order" in form.text

    # Typed as people type: other case, stray spaces.
    found = visitor.find(f"  {email.upper()} ", f" {order['code'].lower()} ")
    assert found.status_code == 200, found.text
    assert "no-store" in found.headers["Cache-Control"]
    assert order["code"] in found.text and "Paid" in found.text and "Concert" in found.text
    assert all(code in found.text for code in shown_codes(tk_app, tenant, order))
    [pdf_path] = PDF_HREF.findall(found.text)
    pdf = visitor.get(pdf_path.replace("&amp;", "&"))
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-")
    assert pdf.headers["Content-Disposition"] == f'attachment; filename="tickets-{order["code"]}.pdf"'
    assert "no-store" in pdf.headers["Cache-Control"]


def test_a_wrong_code_and_a_wrong_address_get_the_same_answer(client, tk_app, tenant, free_type):
    email = _email()
    order = buy(client, tenant, (free_type, 1), email=email)
    visitor = Visitor(tk_app, tenant)
    wrong_code = visitor.find(email, "ZZZZ2222")
    wrong_email = visitor.find("someone@example.org", order["code"])
    assert wrong_code.status_code == wrong_email.status_code == 404
    assert NOT_FOUND in wrong_code.text
    # The same page, down to the letter, apart from the values typed back into the form.
    assert _without_csrf(wrong_code.text).replace("ZZZZ2222", order["code"]).replace(email, "someone@example.org") \
        == _without_csrf(wrong_email.text)
    assert shown_codes(tk_app, tenant, order)[0] not in wrong_email.text


def test_missing_or_overlong_fields_are_named(tk_app, tenant):
    visitor = Visitor(tk_app, tenant)
    empty = visitor.find("", "")
    assert empty.status_code == 400
    assert "Enter the email address you ordered with." in empty.text
    assert "Enter the order code from your confirmation mail" in empty.text
    assert 'aria-invalid="true"' in empty.text
    long = visitor.find("a@example.org", "X" * 5000)
    assert long.status_code == 400


def test_the_form_needs_its_csrf_token(tk_app, tenant):
    visitor = Visitor(tk_app, tenant)
    refused = visitor.client.post("/orders/find", base_url=visitor.base, data={"email": "a@example.org", "code": "X"})
    assert refused.status_code == 400
    assert "This form has expired" in refused.text


def test_another_tenant_finds_nothing_with_the_right_pair(client, tk_app, tenant, free_type, make_tenant):
    email = _email()
    order = buy(client, tenant, (free_type, 1), email=email)
    other = make_tenant("tk-other")
    answer = Visitor(tk_app, other).find(email, order["code"])
    assert answer.status_code == 404 and NOT_FOUND in answer.text


@pytest.fixture(scope="module")
def strict_app(tk_app, make_app):
    return make_app(throttle=ThrottleSettings(sign_in_per_ip="3/minute", sign_in_per_account="5/minute"))


def test_guessing_codes_is_rate_limited_per_client_and_per_address(strict_app, tenant):
    visitor = Visitor(strict_app, tenant)
    answers = [visitor.find("victim@example.org", f"GUESS{n:03d}").status_code for n in range(4)]
    assert answers == [404, 404, 404, 429]
    limited = visitor.find("victim@example.org", "GUESS999")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    # Showing the form is free.
    assert visitor.get("/orders/find").status_code == 200

    # Guessing from many addresses at one buyer's address is limited too.
    spread = [Visitor(strict_app, tenant).find("target@example.org", f"SPREAD{n:02d}").status_code for n in range(6)]
    assert spread == [404] * 5 + [429]


def _token_of(path):
    return path.split("token=", 1)[1]


def _pdf_path(tk_app, tenant, code):
    from plugins.ticketing.checkout import order_by_code
    from plugins.ticketing.ticket_links import download_path

    with tk_app.app_context(), tenant_context(tenant):
        return download_path(order_by_code(code))


def test_a_link_of_one_tenant_opens_nothing_on_another(client, tk_app, tenant, free_type, make_tenant, catalog_for):
    from plugins.ticketing.checkout import order_by_code

    email = _email()
    order = buy(client, tenant, (free_type, 1), email=email)
    path = _pdf_path(tk_app, tenant, order["code"])
    assert client.get(path, headers=host_of(tenant)).status_code == 200

    # The other tenant has an order with the very same code: the link still opens nothing there.
    other = make_tenant("tk-other")
    other_type = catalog_for(other).simple(size=5, kind="free", price_minor=0)[2]
    twin = buy(client, other, (other_type, 1), email=email)

    def take_the_code():
        order_by_code(twin["code"]).code = order["code"]
        db.session.commit()

    catalog_for(other).run(take_the_code)
    refused = client.get(path, headers=host_of(other))
    assert refused.status_code == 403
    assert "This download link is not valid." in refused.text
    assert "Find your order" in refused.text
    assert not refused.data.startswith(b"%PDF")


def test_tampered_missing_and_expired_links_are_refused(client, tk_app, tenant, free_type, catalog, monkeypatch):
    from plugins.ticketing import ticket_links

    first = buy(client, tenant, (free_type, 1), email=_email())
    second = buy(client, tenant, (free_type, 1), email=_email())
    path = _pdf_path(tk_app, tenant, first["code"])
    token = _token_of(path)

    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (f"/orders/{first['code']}/tickets.pdf?token={tampered}",
                f"/orders/{first['code']}/tickets.pdf",
                f"/orders/{first['code']}/tickets.pdf?token={'x' * 5000}",
                f"/orders/{second['code']}/tickets.pdf?token={token}",  # another order's link
                f"/orders/NOSUCHXX/tickets.pdf?token={token}",
                f"/orders/{'X' * 500}/tickets.pdf?token={token}"):
        refused = client.get(bad, headers=host_of(tenant))
        assert refused.status_code == 403, bad
        assert "This download link is not valid." in refused.text

    monkeypatch.setattr(ticket_links, "LIFETIME", timedelta(seconds=-1))
    expired = client.get(path, headers=host_of(tenant))
    assert expired.status_code == 403
    assert "This download link has expired." in expired.text


def test_an_unpaid_order_has_no_pdf(client, tk_app, tenant, catalog, staff_headers):
    _event, _quota, paid_type = catalog.simple(size=5, price_minor=2500)
    email = _email()
    order = buy(client, tenant, (paid_type, 1), email=email)
    assert order["status"] == "awaiting_payment"

    found = Visitor(tk_app, tenant).find(email, order["code"])
    assert found.status_code == 200 and "Awaiting payment" in found.text
    assert not PDF_HREF.findall(found.text)
    assert order["tickets"][0]["code"] not in found.text

    # Even a properly signed link gives no tickets before the money arrives.
    path = _pdf_path(tk_app, tenant, order["code"])
    unpaid = client.get(path, headers=host_of(tenant))
    assert unpaid.status_code == 404
    assert "No tickets to download" in unpaid.text and "once an order is paid" in unpaid.text

    cancelled = client.post(f"/api/v1/orders/{order['code']}/cancel", json={}, headers=staff_headers(tenant, "admin"))
    assert cancelled.status_code == 200, cancelled.text
    assert client.get(path, headers=host_of(tenant)).status_code == 404


def test_the_order_placed_page_links_to_the_pdf_once_paid(client, tk_app, tenant, catalog, free_type):
    visitor = Visitor(tk_app, tenant)

    def checkout(type_id):
        reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                               json={"items": [{"ticket_type_id": type_id, "quantity": 1}]})
        reservation = reserved.get_json()["id"]
        placed = visitor.post_form(f"/checkout/{reservation}", f"/checkout/{reservation}",
                                   {"name": "Gus", "email": _email(), "idempotency_key": uuid.uuid4().hex})
        assert placed.status_code == 303, placed.text
        return visitor.get(placed.location)

    free_page = checkout(free_type)
    [path] = PDF_HREF.findall(free_page.text)
    assert "Download tickets (PDF)" in free_page.text
    assert visitor.get(path.replace("&amp;", "&")).mimetype == "application/pdf"

    unpaid_page = checkout(catalog.simple(size=5, price_minor=2500)[2])
    assert unpaid_page.status_code == 200
    assert not PDF_HREF.findall(unpaid_page.text)


def test_the_signed_in_buyer_downloads_without_a_link_and_sees_it_in_my_tickets(client, tk_app, tenant, free_type):
    email = _email()
    order = buy(client, tenant, (free_type, 1), email=email)
    bare = f"/orders/{order['code']}/tickets.pdf"
    add_account(tk_app, email)
    buyer = Visitor(tk_app, tenant)
    buyer.sign_in(email)
    assert buyer.get(bare).mimetype == "application/pdf"
    my_tickets = buyer.get("/my/tickets")
    [path] = PDF_HREF.findall(my_tickets.text)
    assert buyer.get(path.replace("&amp;", "&")).status_code == 200

    # Someone else's account gets nothing, nor the buyer's once the address is no longer confirmed.
    stranger = _email()
    add_account(tk_app, stranger)
    someone = Visitor(tk_app, tenant)
    someone.sign_in(stranger)
    assert someone.get(bare).status_code == 403
    with tk_app.app_context():
        db.session.scalar(sa.select(Account).where(Account.email == email)).email_verified_at = None
        db.session.commit()
    assert buyer.get(bare).status_code == 403


def test_every_storefront_page_links_to_the_find_page(client, tenant):
    home = client.get("/", headers=host_of(tenant))
    assert 'href="/orders/find"' in home.text and "Find your order" in home.text
