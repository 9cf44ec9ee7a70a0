"""A buyer pays on the embedded Payment Element page on a phone: a declined card first, which the page
reports, then a card whose bank asks for 3-D Secure; the order is confirmed. Each page passes WCAG 2.2 AA.

The browser cannot load js.stripe.com here, so a small stand-in for Stripe.js is served beside the fake
Stripe: its element is a card-number field, and its ``confirmPayment`` posts the card to the stand-in,
which confirms the PaymentIntent on the fake with the matching test payment method and sends the
browser on as Stripe.js would (to the bank's page, or to the return URL).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
import stripe
from flask import Flask
from playwright.sync_api import Browser, expect
from pydantic import SecretStr
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bilten_core.testing import free_port
from plugins.payments.stripe_settings import EXTENSION, StripeSettings
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import PHONE
from tests.payments.card_helpers import CONNECT_PATH, CONNECT_SECRET, card_tenant
from tests.payments.stripe_fake import StripeFake, running
from tests.payments.stripe_fake import client as stripe_api
from tests.ticketing.event_factory import create_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site

# The test cards the stand-in knows, as Stripe's test PaymentMethods.
PAYMENT_METHODS = {
    "4242424242424242": "pm_card_visa",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000002760003184": "pm_card_authenticationRequired",
}

STRIPE_JS_DOUBLE = """
(function () {
  var base = document.currentScript.src.replace(/\\/v3\\/.*$/, "");
  window.Stripe = function (publishableKey, options) {
    var account = (options && options.stripeAccount) || "";
    var clientSecret = "";
    return {
      elements: function (config) {
        clientSecret = config.clientSecret;
        return { create: function () { return { mount: function (selector) {
          document.querySelector(selector).innerHTML =
            '<div class="field"><label for="test-card-number">Card number</label>' +
            '<input id="test-card-number" inputmode="numeric" autocomplete="cc-number"></div>';
        } }; } };
      },
      confirmPayment: function (request) {
        var form = document.createElement("form");
        form.method = "post";
        form.action = base + "/v3/confirm";
        var fields = { client_secret: clientSecret, account: account, return_url: request.confirmParams.return_url,
                       card: document.getElementById("test-card-number").value };
        Object.keys(fields).forEach(function (name) {
          var input = document.createElement("input");
          input.type = "hidden"; input.name = name; input.value = fields[name];
          form.appendChild(input);
        });
        document.body.appendChild(form);
        form.submit();
        return new Promise(function () {});
      }
    };
  };
})();
"""


def stripe_js_double(fake: StripeFake) -> Any:
    """A WSGI app serving the stand-in for Stripe.js and confirming what it posts on the fake."""

    @Request.application  # type: ignore[arg-type]
    def serve(request: Request) -> Response:
        if request.path == "/v3/":
            return Response(STRIPE_JS_DOUBLE, mimetype="text/javascript")
        if request.path != "/v3/confirm" or request.method != "POST":
            return Response("Not found", status=404)
        intent_id = request.form["client_secret"].split("_secret_")[0]
        return_url = request.form["return_url"]
        method = PAYMENT_METHODS.get(re.sub(r"\D", "", request.form["card"]), "pm_card_chargeDeclined")
        try:
            intent = stripe_api(fake, account=request.form["account"]).v1.payment_intents.confirm(
                intent_id, {"payment_method": method, "return_url": return_url})
        except stripe.CardError:
            status = "failed"
        else:
            if intent.status == "requires_action":
                return Response(status=303, headers={"Location": intent.next_action.redirect_to_url.url})
            status = "succeeded"
        query = urlencode({"payment_intent": intent_id, "redirect_status": status})
        return Response(status=303, headers={"Location": f"{return_url}?{query}"})

    return serve


@pytest.fixture
def fake(app: Flask, site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    with running() as stripe_fake:
        server = make_server("127.0.0.1", free_port(), stripe_js_double(stripe_fake), threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        monkeypatch.setitem(app.extensions, EXTENSION, StripeSettings(
            secret_key=SecretStr(stripe_fake.secret_key), connect_webhook_secret=SecretStr(CONNECT_SECRET),
            api_base=stripe_fake.base_url, timeout_seconds=10, max_network_retries=0,
            checkout_mode="elements", publishable_key="pk_test_browser0element",
            js_url=f"http://127.0.0.1:{server.server_port}/v3/",
        ))
        stripe_fake.add_webhook_endpoint(f"http://localhost:{site.port}{CONNECT_PATH}", connect=True,
                                         secret=CONNECT_SECRET)
        try:
            yield stripe_fake
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def test_a_buyer_pays_on_the_card_element_after_a_declined_card(
    site: Site, app: Flask, browser: Browser, fake: StripeFake
) -> None:
    tenant, _account = card_tenant(app, fake, "element")
    event = create_event(app, tenant, title="Harbour Lights Walk", ticket_types=(("Walker", 1800),))
    base = f"http://{tenant.primary_domain}:{site.port}"
    buyer = browser.new_context(**PHONE)
    try:
        page = buyer.new_page()
        page.goto(f"{base}/events/{event.slug}")
        page.get_by_label("Quantity").first.select_option("1")
        page.get_by_role("button", name="Choose these tickets").click()
        page.wait_for_url("**/checkout/**")
        page.get_by_label("Your name").fill("Ivo Buyer")
        page.get_by_label("Email address").first.fill("ivo@example.org")
        page.get_by_label("Card (Stripe)").check()
        page.get_by_role("button", name="Place order").click()

        page.wait_for_url("**/card")
        pay = page.get_by_role("button", name=re.compile(r"^Pay "))
        expect(pay).to_be_enabled()
        assert_accessible(page, "card element page on a phone")
        page.get_by_label("Card number").fill("4000 0000 0000 0002")
        pay.click()

        page.wait_for_url("**/card")
        expect(page.get_by_role("alert")).to_contain_text("Your card was declined")
        assert_accessible(page, "card element page after a declined card on a phone")
        page.get_by_label("Card number").fill("4000 0027 6000 3184")
        page.get_by_role("button", name=re.compile(r"^Pay ")).click()

        page.wait_for_url(re.compile(re.escape(fake.base_url) + r"/authorise/pi_\w+"))
        page.get_by_role("button", name="Authorise").click()
        page.wait_for_url("**/done")
        assert "your order is confirmed" in page.inner_text("main")
    finally:
        buyer.close()
