"""The local PayPal fake over real HTTP, used the way a client following PayPal's REST docs uses PayPal:
a token, orders created idempotently, the buyer approving on the page, capture, refunds, webhooks
delivered and verified by posting back, PayPal's error format, faults, and one app's data kept from another."""

from __future__ import annotations

import json
import threading
import time
import uuid
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.payments.paypal_fake import CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID, PayPalFake, buyer_clicks

RETURN_URL = "https://shop.example.org/paypal/return?order=42"
CANCEL_URL = "https://shop.example.org/paypal/cancel"
TRANSMISSION_HEADERS = ("PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG",
                        "PAYPAL-CERT-URL", "PAYPAL-AUTH-ALGO")


class WebhookInbox:
    """A merchant's webhook endpoint on loopback: keeps what PayPal posts, answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/paypal"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __call__(self, environ, start_response):
        incoming = Request(environ)
        self.received.append((dict(incoming.headers), incoming.get_data()))
        return Response("", status=self.status)(environ, start_response)

    def events(self, event_type: str) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for headers, body in self.received if json.loads(body)["event_type"] == event_type]

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture(scope="module")
def paypal():
    running = PayPalFake().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def inbox(paypal):
    receiving = WebhookInbox()
    paypal.configure_webhook(receiving.url, WEBHOOK_ID)
    yield receiving
    receiving.stop()


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False  # loopback, whatever proxy the environment sets
    return session


def access_token(http, paypal, client_id=CLIENT_ID, secret=CLIENT_SECRET):
    answer = http.post(f"{paypal.base}/v1/oauth2/token", auth=(client_id, secret),
                       data={"grant_type": "client_credentials"}, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def api(http, paypal, token, method, path, body=None, request_id=None, prefer=None, timeout=5):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if request_id:
        headers["PayPal-Request-Id"] = request_id
    if prefer:
        headers["Prefer"] = prefer
    data = None if body is None else json.dumps(body)
    return http.request(method, f"{paypal.base}{path}", data=data, headers=headers, timeout=timeout)


def order_body(value="25.00", currency="EUR", **unit):
    return {
        "intent": "CAPTURE",
        "purchase_units": [{"reference_id": "bilten-order-42", "amount": {"currency_code": currency, "value": value},
                            "custom_id": "tenant-a:42", **unit}],
        "application_context": {"return_url": RETURN_URL, "cancel_url": CANCEL_URL},
    }


def link(resource, rel):
    [href] = [item["href"] for item in resource["links"] if item["rel"] == rel]
    return href


def approved_order(http, paypal, token, **unit):
    created = api(http, paypal, token, "POST", "/v2/checkout/orders", order_body(**unit)).json()
    assert buyer_clicks(http, link(created, "approve")).status_code == 302
    return created["id"]


def captured(http, paypal, token, **unit):
    order_id = approved_order(http, paypal, token, **unit)
    answer = api(http, paypal, token, "POST", f"/v2/checkout/orders/{order_id}/capture")
    assert answer.status_code == 201, answer.text
    return answer.json()["purchase_units"][0]["payments"]["captures"][0]


def assert_paypal_error(answer, status, name, issue):
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["name"] == name
    assert body["message"] and body["debug_id"]
    assert answer.headers["Paypal-Debug-Id"] == body["debug_id"]
    assert body["details"][0]["issue"] == issue
    assert body["details"][0]["description"]
    return body


def verification(http, paypal, token, headers, event, webhook_id=WEBHOOK_ID):
    answer = api(http, paypal, token, "POST", "/v1/notifications/verify-webhook-signature", {
        "auth_algo": headers["Paypal-Auth-Algo"],
        "cert_url": headers["Paypal-Cert-Url"],
        "transmission_id": headers["Paypal-Transmission-Id"],
        "transmission_sig": headers["Paypal-Transmission-Sig"],
        "transmission_time": headers["Paypal-Transmission-Time"],
        "webhook_id": webhook_id,
        "webhook_event": event,
    })
    assert answer.status_code == 200, answer.text
    return answer.json()["verification_status"]


def test_client_credentials_give_a_bearer_token_and_nothing_else_does(http, paypal):
    answer = http.post(f"{paypal.base}/v1/oauth2/token", auth=(CLIENT_ID, CLIENT_SECRET),
                       data={"grant_type": "client_credentials"}, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer"
    assert answer.json()["expires_in"] > 0

    wrong = http.post(f"{paypal.base}/v1/oauth2/token", auth=(CLIENT_ID, "not-the-secret"),
                      data={"grant_type": "client_credentials"}, timeout=5)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    other_grant = http.post(f"{paypal.base}/v1/oauth2/token", auth=(CLIENT_ID, CLIENT_SECRET),
                            data={"grant_type": "password"}, timeout=5)
    assert other_grant.status_code == 400
    assert other_grant.json()["error"] == "unsupported_grant_type"

    unauthenticated = api(http, paypal, "made-up", "POST", "/v2/checkout/orders", order_body())
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["name"] == "AUTHENTICATION_FAILURE"


def test_an_expired_token_is_refused_until_a_new_one_is_fetched(http, paypal):
    token = access_token(http, paypal)
    paypal.expire_tokens()
    assert api(http, paypal, token, "POST", "/v2/checkout/orders", order_body()).status_code == 401
    fresh = access_token(http, paypal)
    assert api(http, paypal, fresh, "POST", "/v2/checkout/orders", order_body()).status_code == 201


def test_the_same_request_id_creates_one_order(http, paypal):
    token = access_token(http, paypal)
    key = str(uuid.uuid4())
    first = api(http, paypal, token, "POST", "/v2/checkout/orders", order_body(), request_id=key)
    again = api(http, paypal, token, "POST", "/v2/checkout/orders", order_body(), request_id=key)
    other = api(http, paypal, token, "POST", "/v2/checkout/orders", order_body(), request_id=str(uuid.uuid4()))
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert first.json()["status"] == "CREATED"
    assert set(first.json()) == {"id", "status", "links"}  # the minimal answer unless asked for more
    assert link(first.json(), "approve") == f"{paypal.base}/checkoutnow?token={first.json()['id']}"

    order = api(http, paypal, token, "GET", f"/v2/checkout/orders/{first.json()['id']}").json()
    [unit] = order["purchase_units"]
    assert unit["amount"] == {"currency_code": "EUR", "value": "25.00"}
    assert (unit["reference_id"], unit["custom_id"]) == ("bilten-order-42", "tenant-a:42")


def test_return_representation_answers_the_whole_order(http, paypal):
    token = access_token(http, paypal)
    answer = api(http, paypal, token, "POST", "/v2/checkout/orders", order_body(invoice_id=f"INV-{uuid.uuid4()}"),
                 prefer="return=representation")
    assert answer.status_code == 201
    assert answer.json()["intent"] == "CAPTURE"
    assert answer.json()["purchase_units"][0]["invoice_id"].startswith("INV-")


def test_the_buyer_approves_on_the_page_and_the_merchant_captures_once(http, paypal):
    token = access_token(http, paypal)
    created = api(http, paypal, token, "POST", "/v2/checkout/orders", order_body(value="100.00")).json()
    page = http.get(link(created, "approve"), timeout=5)
    assert page.status_code == 200
    assert '<html lang="en">' in page.text and "<h1>Pay with PayPal</h1>" in page.text
    assert 'name="viewport"' in page.text
    assert ">Pay with PayPal</button>" in page.text and ">Cancel</button>" in page.text
    assert "100.00 EUR" in page.text

    back = buyer_clicks(http, link(created, "approve"))
    assert back.status_code == 302
    target = urlsplit(back.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == RETURN_URL.split("?")[0]
    query = parse_qs(target.query)
    assert query["order"] == ["42"] and query["token"] == [created["id"]] and query["PayerID"][0]
    order = api(http, paypal, token, "GET", f"/v2/checkout/orders/{created['id']}").json()
    assert order["status"] == "APPROVED"
    assert order["payer"]["payer_id"] == query["PayerID"][0]

    key = str(uuid.uuid4())
    capture_path = f"/v2/checkout/orders/{created['id']}/capture"
    answer = api(http, paypal, token, "POST", capture_path, request_id=key)
    assert answer.status_code == 201
    assert answer.json()["status"] == "COMPLETED"
    capture = answer.json()["purchase_units"][0]["payments"]["captures"][0]
    assert capture["status"] == "COMPLETED"
    assert capture["amount"] == {"currency_code": "EUR", "value": "100.00"}
    breakdown = capture["seller_receivable_breakdown"]
    fee, net = Decimal(breakdown["paypal_fee"]["value"]), Decimal(breakdown["net_amount"]["value"])
    assert fee > 0 and fee + net == Decimal("100.00")

    replayed = api(http, paypal, token, "POST", capture_path, request_id=key)
    assert replayed.status_code == 200
    assert replayed.json()["purchase_units"][0]["payments"]["captures"][0]["id"] == capture["id"]
    assert_paypal_error(api(http, paypal, token, "POST", capture_path), 422, "UNPROCESSABLE_ENTITY",
                        "ORDER_ALREADY_CAPTURED")
    assert api(http, paypal, token, "GET", f"/v2/payments/captures/{capture['id']}").json()["status"] == "COMPLETED"


def test_an_unapproved_order_cannot_be_captured_and_cancel_goes_back(http, paypal):
    token = access_token(http, paypal)
    created = api(http, paypal, token, "POST", "/v2/checkout/orders", order_body()).json()
    assert_paypal_error(api(http, paypal, token, "POST", f"/v2/checkout/orders/{created['id']}/capture"),
                        422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")

    back = buyer_clicks(http, link(created, "approve"), "Cancel")
    assert back.status_code == 302
    assert back.headers["Location"] == f"{CANCEL_URL}?token={created['id']}"
    assert api(http, paypal, token, "GET", f"/v2/checkout/orders/{created['id']}").json()["status"] == "CREATED"


def test_an_order_with_an_experience_context_asks_for_payer_action(http, paypal):
    token = access_token(http, paypal)
    body = order_body()
    del body["application_context"]
    body["payment_source"] = {"paypal": {"experience_context": {"return_url": RETURN_URL, "cancel_url": CANCEL_URL}}}
    created = api(http, paypal, token, "POST", "/v2/checkout/orders", body).json()
    assert created["status"] == "PAYER_ACTION_REQUIRED"
    back = buyer_clicks(http, link(created, "payer-action"))
    assert back.headers["Location"].startswith(RETURN_URL + "&token=")
    answer = api(http, paypal, token, "POST", f"/v2/checkout/orders/{created['id']}/capture")
    assert answer.json()["status"] == "COMPLETED"


def test_partial_then_full_refunds_and_no_more(http, paypal):
    token = access_token(http, paypal)
    capture = captured(http, paypal, token, value="50.00")
    refund_path = f"/v2/payments/captures/{capture['id']}/refund"

    key = str(uuid.uuid4())
    partial = api(http, paypal, token, "POST", refund_path, {"amount": {"currency_code": "EUR", "value": "20.00"},
                                                             "note_to_payer": "One ticket returned"}, request_id=key)
    assert partial.status_code == 201
    assert partial.json()["status"] == "COMPLETED"
    assert api(http, paypal, token, "POST", refund_path, {"amount": {"currency_code": "EUR", "value": "20.00"}},
               request_id=key).json()["id"] == partial.json()["id"]
    assert api(http, paypal, token, "GET", f"/v2/payments/captures/{capture['id']}").json()["status"] == (
        "PARTIALLY_REFUNDED")

    assert_paypal_error(api(http, paypal, token, "POST", refund_path, {"amount": {"currency_code": "EUR",
                                                                                  "value": "30.01"}}),
                        422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
    assert_paypal_error(api(http, paypal, token, "POST", refund_path, {"amount": {"currency_code": "USD",
                                                                                  "value": "1.00"}}),
                        422, "UNPROCESSABLE_ENTITY", "REFUND_CAPTURE_CURRENCY_MISMATCH")

    rest = api(http, paypal, token, "POST", refund_path, prefer="return=representation")
    assert rest.status_code == 201
    assert rest.json()["amount"] == {"currency_code": "EUR", "value": "30.00"}
    assert rest.json()["seller_payable_breakdown"]["total_refunded_amount"]["value"] == "50.00"
    assert api(http, paypal, token, "GET", f"/v2/payments/captures/{capture['id']}").json()["status"] == "REFUNDED"
    assert_paypal_error(api(http, paypal, token, "POST", refund_path), 422, "UNPROCESSABLE_ENTITY",
                        "CAPTURE_FULLY_REFUNDED")

    first = api(http, paypal, token, "GET", f"/v2/payments/refunds/{partial.json()['id']}").json()
    assert first["amount"]["value"] == "20.00" and first["note_to_payer"] == "One ticket returned"


def test_webhooks_arrive_signed_and_verify(http, paypal, inbox):
    token = access_token(http, paypal)
    already = len(paypal.deliveries)
    capture = captured(http, paypal, token)
    api(http, paypal, token, "POST", f"/v2/payments/captures/{capture['id']}/refund",
        {"amount": {"currency_code": "EUR", "value": "5.00"}})
    deliveries = paypal.wait_for_deliveries(already + 3)[already:]
    assert [d.event_type for d in deliveries] == [
        "CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.REFUNDED"]
    assert all(d.status == 200 and d.url == inbox.url for d in deliveries)

    received = {json.loads(body)["event_type"]: (headers, json.loads(body)) for headers, body in inbox.received[-3:]}
    headers, completed = received["PAYMENT.CAPTURE.COMPLETED"]
    assert all(headers[name.title()] for name in TRANSMISSION_HEADERS)
    assert completed["id"].startswith("WH-")
    assert completed["resource"]["id"] == capture["id"]
    assert completed["resource"]["supplementary_data"]["related_ids"]["order_id"]
    for headers, event in received.values():
        assert verification(http, paypal, token, headers, event) == "SUCCESS"
    # Some clients hand the body back as it arrived rather than parsed.
    raw_headers, raw_body = inbox.received[-1]
    assert verification(http, paypal, token, raw_headers, raw_body.decode()) == "SUCCESS"


def test_a_tampered_or_unknown_webhook_fails_verification(http, paypal, inbox):
    token = access_token(http, paypal)
    already = len(paypal.deliveries)
    captured(http, paypal, token, value="10.00")
    paypal.wait_for_deliveries(already + 2)
    headers, body = inbox.events("PAYMENT.CAPTURE.COMPLETED")[-1]
    event = json.loads(body)
    assert verification(http, paypal, token, headers, event) == "SUCCESS"

    richer = json.loads(body)
    richer["resource"]["amount"]["value"] = "1000.00"
    assert verification(http, paypal, token, headers, richer) == "FAILURE"
    assert verification(http, paypal, token, {**headers, "Paypal-Transmission-Id": str(uuid.uuid4())},
                        event) == "FAILURE"
    assert verification(http, paypal, token, {**headers, "Paypal-Transmission-Time": "2020-01-01T00:00:00Z"},
                        event) == "FAILURE"
    other_headers, _ = inbox.events("CHECKOUT.ORDER.APPROVED")[-1]
    assert verification(http, paypal, token, {**headers, "Paypal-Transmission-Sig":
                                              other_headers["Paypal-Transmission-Sig"]}, event) == "FAILURE"
    assert verification(http, paypal, token, headers, event, webhook_id="SOMEOTHERWEBHOOK") == "FAILURE"

    missing = api(http, paypal, token, "POST", "/v1/notifications/verify-webhook-signature",
                  {"webhook_id": WEBHOOK_ID, "webhook_event": event})
    assert_paypal_error(missing, 400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER")


def test_a_failed_delivery_is_recorded_and_can_be_resent(http, paypal, inbox):
    token = access_token(http, paypal)
    already = len(paypal.deliveries)
    inbox.status = 500
    try:
        approved_order(http, paypal, token)
        [failed] = paypal.wait_for_deliveries(already + 1)[already:]
    finally:
        inbox.status = 200
    assert failed.status == 500

    resent = http.post(f"{paypal.base}/_fake/events/{failed.event_id}/resend", timeout=5)
    assert resent.status_code == 202
    [again] = paypal.wait_for_deliveries(already + 2)[already + 1:]
    assert again.status == 200 and again.event_id == failed.event_id
    assert again.transmission_id == resent.json()["transmission_id"] != failed.transmission_id
    headers, body = inbox.received[-1]
    assert verification(http, paypal, token, headers, json.loads(body)) == "SUCCESS"
    listed = http.get(f"{paypal.base}/_fake/deliveries", timeout=5).json()["items"]
    assert [d["status"] for d in listed[already:already + 2]] == [500, 200]


def test_a_pending_capture_can_be_denied_later(http, paypal, inbox):
    token = access_token(http, paypal)
    assert http.post(f"{paypal.base}/_fake/next-capture", json={"outcome": "PENDING"}, timeout=5).ok
    capture = captured(http, paypal, token)
    assert capture["status"] == "PENDING"
    assert_paypal_error(api(http, paypal, token, "POST", f"/v2/payments/captures/{capture['id']}/refund"),
                        422, "UNPROCESSABLE_ENTITY", "REFUND_NOT_ALLOWED")

    already = len(paypal.deliveries)
    assert http.post(f"{paypal.base}/_fake/captures/{capture['id']}/deny", timeout=5).json()["status"] == "DECLINED"
    [denied] = paypal.wait_for_deliveries(already + 1)[already:]
    assert denied.event_type == "PAYMENT.CAPTURE.DENIED"
    assert http.post(f"{paypal.base}/_fake/captures/{capture['id']}/deny", timeout=5).status_code == 409


def test_a_declined_instrument_sends_the_buyer_back_to_approve(http, paypal):
    token = access_token(http, paypal)
    order_id = approved_order(http, paypal, token)
    paypal.next_capture = "DECLINED"
    declined = assert_paypal_error(api(http, paypal, token, "POST", f"/v2/checkout/orders/{order_id}/capture"),
                                   422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED")
    [again] = [item["href"] for item in declined["links"] if item["rel"] == "redirect"]
    assert api(http, paypal, token, "GET", f"/v2/checkout/orders/{order_id}").json()["status"] == "CREATED"
    assert buyer_clicks(http, again).status_code == 302
    assert api(http, paypal, token, "POST", f"/v2/checkout/orders/{order_id}/capture").status_code == 201


def test_an_invoice_id_is_paid_once(http, paypal):
    token = access_token(http, paypal)
    invoice = f"INV-{uuid.uuid4()}"
    captured(http, paypal, token, invoice_id=invoice)
    second = approved_order(http, paypal, token, invoice_id=invoice)
    assert_paypal_error(api(http, paypal, token, "POST", f"/v2/checkout/orders/{second}/capture"),
                        422, "UNPROCESSABLE_ENTITY", "DUPLICATE_INVOICE_ID")


@pytest.mark.parametrize(("change", "status", "issue"), [
    ({"intent": None}, 400, "MISSING_REQUIRED_PARAMETER"),
    ({"intent": "AUTHORIZE"}, 400, "INVALID_PARAMETER_VALUE"),
    ({"purchase_units": []}, 400, "MISSING_REQUIRED_PARAMETER"),
    ({"value": 12.5}, 400, "INVALID_PARAMETER_SYNTAX"),
    ({"value": "twelve"}, 400, "INVALID_PARAMETER_SYNTAX"),
    ({"value": "12.345"}, 422, "DECIMAL_PRECISION"),
    ({"value": "0.00"}, 422, "CANNOT_BE_ZERO_OR_NEGATIVE"),
    ({"value": "-5.00"}, 422, "CANNOT_BE_ZERO_OR_NEGATIVE"),
    ({"currency": "JPY", "value": "1000.50"}, 422, "DECIMALS_NOT_SUPPORTED"),
    ({"currency": "XYZ"}, 422, "CURRENCY_NOT_SUPPORTED"),
    ({"custom_id": "x" * 128}, 400, "INVALID_STRING_LENGTH"),
])
def test_bad_orders_get_paypal_errors(http, paypal, change, status, issue):
    token = access_token(http, paypal)
    body = order_body(value="12.00")
    unit = body["purchase_units"][0]
    for name, value in change.items():
        if name in {"intent", "purchase_units"}:
            body[name] = value
        elif name in {"value", "currency"}:
            unit["amount"]["currency_code" if name == "currency" else "value"] = value
        else:
            unit[name] = value
    body = {name: value for name, value in body.items() if value is not None}
    name = "INVALID_REQUEST" if status == 400 else "UNPROCESSABLE_ENTITY"
    error = assert_paypal_error(api(http, paypal, token, "POST", "/v2/checkout/orders", body), status, name, issue)
    assert error["details"][0]["field"].startswith("/")


def test_malformed_json_and_unknown_ids(http, paypal):
    token = access_token(http, paypal)
    malformed = http.post(f"{paypal.base}/v2/checkout/orders", data="{not json",
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, timeout=5)
    assert_paypal_error(malformed, 400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON")
    for path in ("/v2/checkout/orders/NOSUCHORDER00000", "/v2/payments/captures/NOSUCHCAPTURE000",
                 "/v2/payments/refunds/NOSUCHREFUND0000"):
        assert_paypal_error(api(http, paypal, token, "GET", path), 404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
    assert http.get(f"{paypal.base}/checkoutnow?token=NOSUCHORDER00000", timeout=5).status_code == 404


def test_one_app_cannot_reach_another_apps_payments(http, paypal):
    token = access_token(http, paypal)
    capture = captured(http, paypal, token)
    order_id = capture["supplementary_data"]["related_ids"]["order_id"]
    other = http.post(f"{paypal.base}/_fake/apps", json={}, timeout=5).json()
    stranger = access_token(http, paypal, other["client_id"], other["client_secret"])

    for method, path in (("GET", f"/v2/checkout/orders/{order_id}"),
                         ("POST", f"/v2/checkout/orders/{order_id}/capture"),
                         ("GET", f"/v2/payments/captures/{capture['id']}"),
                         ("POST", f"/v2/payments/captures/{capture['id']}/refund")):
        assert_paypal_error(api(http, paypal, stranger, method, path), 404, "RESOURCE_NOT_FOUND",
                            "INVALID_RESOURCE_ID")
    assert api(http, paypal, token, "GET", f"/v2/payments/captures/{capture['id']}").json()["status"] == "COMPLETED"


def test_another_apps_webhook_does_not_verify_with_my_credentials(http, paypal, inbox):
    token = access_token(http, paypal)
    other = http.post(f"{paypal.base}/_fake/apps", json={}, timeout=5).json()
    assert http.put(f"{paypal.base}/_fake/webhook", json={"client_id": other["client_id"], "url": inbox.url},
                    timeout=5).ok
    stranger = access_token(http, paypal, other["client_id"], other["client_secret"])
    already = len(paypal.deliveries)
    approved_order(http, paypal, stranger)
    paypal.wait_for_deliveries(already + 1)
    headers, body = inbox.received[-1]
    event = json.loads(body)
    assert verification(http, paypal, stranger, headers, event, other["webhook_id"]) == "SUCCESS"
    assert verification(http, paypal, token, headers, event, other["webhook_id"]) == "FAILURE"
    assert verification(http, paypal, token, headers, event) == "FAILURE"


def test_an_outage_answers_500_and_a_lost_answer_is_replayed(http, paypal):
    token = access_token(http, paypal)
    assert http.post(f"{paypal.base}/_fake/faults", json={"count": 1, "status": 500}, timeout=5).ok
    down = api(http, paypal, token, "POST", "/v2/checkout/orders", order_body())
    assert down.status_code == 500 and down.json()["name"] == "INTERNAL_SERVER_ERROR"
    assert api(http, paypal, token, "POST", "/v2/checkout/orders", order_body()).status_code == 201

    # The order is made but the answer comes too late for the client, which retries with the same id.
    key = str(uuid.uuid4())
    paypal.fail_next(status=None, delay=0.5, path="/v2/checkout/orders")
    with pytest.raises(requests.Timeout):
        api(http, paypal, token, "POST", "/v2/checkout/orders", order_body(), request_id=key, timeout=0.1)
    time.sleep(1.0)  # the client backs off; meanwhile PayPal finished the first call
    retried = api(http, paypal, token, "POST", "/v2/checkout/orders", order_body(), request_id=key)
    assert retried.status_code == 200
    made = [r for r in http.get(f"{paypal.base}/_fake/requests", timeout=5).json()["items"]
            if r["request_id"] == key]
    assert len(made) == 2
    assert made[0]["body"]["purchase_units"][0]["custom_id"] == "tenant-a:42"
