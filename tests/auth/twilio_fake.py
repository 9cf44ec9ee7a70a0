"""A local stand-in for Twilio's Programmable Messaging API, served over real HTTP on loopback.

It implements ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` as Twilio documents it:
HTTP basic auth with the account sid and auth token, form fields ``To``, ``From`` or
``MessagingServiceSid``, and ``Body``; a 201 with the message resource (``status: "queued"``), a
401 error (code 20003) for bad credentials, a 400 error for an invalid ``To`` (code 21211), a
missing sender (21603) or a missing body (21602). Messages it accepted are kept, so tests read
the codes from them. ``failing`` makes it answer as Twilio does during an outage.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate

from pydantic import SecretStr
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bilten_core.kernel import kernel

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
FROM_NUMBER = "+15005550006"
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
SIX_DIGITS = re.compile(r"\b([0-9]{6})\b")
PATH = re.compile(r"^/2010-04-01/Accounts/([A-Za-z0-9]+)/Messages\.json$")


@dataclass
class Message:
    sid: str
    to: str
    sender: str | None
    messaging_service_sid: str | None
    body: str

    @property
    def code(self) -> str:
        [code] = SIX_DIGITS.findall(self.body)
        return code


@dataclass
class TwilioFake:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[Message] = field(default_factory=list)
    # Numbers that are well-formed but that Twilio will not text (landlines, unknown ranges).
    unreachable_numbers: set[str] = field(default_factory=set)
    # An HTTP status to answer every request with, as during an outage (e.g. 500 or 503).
    failing: int | None = None
    requests: int = 0
    base_url: str = ""

    def to(self, number: str) -> list[Message]:
        return [message for message in self.messages if message.to == number]

    def last_code(self, number: str) -> str:
        found = self.to(number)
        assert found, f"no message to {number}"
        return found[-1].code

    def __call__(self, environ, start_response):
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        self.requests += 1
        match = PATH.match(request.path)
        if match is None:
            return _error(404, 20404, "The requested resource was not found")
        if request.method != "POST":
            return _error(405, 20004, "Method not allowed")
        if self.failing is not None:
            return _error(self.failing, 20500, "Internal Server Error")
        if not self._authorised(request, match.group(1)):
            return _error(401, 20003, "Authenticate")
        to = request.form.get("To", "")
        sender = request.form.get("From")
        service = request.form.get("MessagingServiceSid")
        body = request.form.get("Body", "")
        if not E164.match(to) or to in self.unreachable_numbers:
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not sender and not service:
            return _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
        if not body:
            return _error(400, 21602, "Message body is required.")
        message = Message("SM" + uuid.uuid4().hex, to, sender, service, body)
        self.messages.append(message)
        return _json(201, {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": formatdate(usegmt=True),
            "date_sent": None,
            "date_updated": formatdate(usegmt=True),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": message.sid,
            "status": "queued",
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message.sid}.json",
        })

    def _authorised(self, request: Request, path_sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid == path_sid and password == self.auth_token


def _json(status: int, body: dict) -> Response:
    import json

    return Response(json.dumps(body), status=status, mimetype="application/json")


def _error(status: int, code: int, message: str) -> Response:
    return _json(status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    })


def start() -> tuple[TwilioFake, object, threading.Thread]:
    fake = TwilioFake()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    fake.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return fake, server, thread


def serving(app, monkeypatch):
    """Run a fake Twilio that ``app`` sends its text messages to; a generator for a fixture."""
    fake, server, thread = start()
    settings = kernel(app).settings.sms
    monkeypatch.setattr(settings, "backend", "twilio")
    monkeypatch.setattr(settings, "twilio_base_url", fake.base_url)
    monkeypatch.setattr(settings, "twilio_account_sid", ACCOUNT_SID)
    monkeypatch.setattr(settings, "twilio_auth_token", SecretStr(AUTH_TOKEN))
    monkeypatch.setattr(settings, "twilio_from_number", FROM_NUMBER)
    monkeypatch.setattr(settings, "timeout_seconds", 2.0)
    yield fake
    server.shutdown()
    thread.join(timeout=5)
