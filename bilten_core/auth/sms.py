"""Text messages for the SMS second factor: one small sender interface and its two backends.

``ConsoleSender`` writes the message to the log (development: nothing leaves the machine);
``TwilioSender`` posts it to Twilio's Programmable Messaging REST API. Senders raise
:class:`SmsRejected` when the provider refuses the number and :class:`SmsUnavailable` when it
cannot be reached, answers with an error of its own, or is misconfigured: callers turn both into
a clear answer (never a 500) and keep the second step's other ways in (an app, a backup code).

Messages are sent synchronously, inside the request that asked for them: the person is waiting
for the code, and only the request can tell them that it could not be sent.
"""

from __future__ import annotations

import re
from typing import Protocol

import requests
import structlog

from bilten_core.config import SmsSettings

log = structlog.get_logger("bilten.auth.sms")

# E.164: a plus, a country code not starting with 0, at most 15 digits in all.
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_SEPARATORS = re.compile(r"[\s().\-/]")
# Twilio error codes for a number it will not send to (invalid, not mobile, unsubscribed...).
TWILIO_NUMBER_ERRORS = frozenset({21211, 21212, 21408, 21610, 21612, 21614})


class SmsError(Exception):
    """A message was not sent."""


class SmsUnavailable(SmsError):
    """The provider cannot be reached or refused the request for a reason of its own."""


class SmsRejected(SmsError):
    """The provider will not send to this number."""


class SmsSender(Protocol):
    def send(self, to: str, body: str) -> None:
        """Send ``body`` to the E.164 number ``to``; raise :class:`SmsError` if it was not sent."""


def normalize_phone(raw: str) -> str | None:
    """``raw`` as an E.164 number (spaces, dashes, dots and brackets dropped), or ``None``."""
    if len(raw) > 40:
        return None
    number = _SEPARATORS.sub("", raw.strip())
    if number.startswith("00"):
        number = "+" + number[2:]
    return number if E164.match(number) else None


def masked(phone: str) -> str:
    """The number as shown on pages and in answers: only its last digits."""
    return "•••" + phone[-3:]


class ConsoleSender:
    """Logs each message; the development default, so no SMS account is needed to try MFA."""

    def send(self, to: str, body: str) -> None:
        log.info("sms_console", to=to, body=body)


class TwilioSender:
    """Sends through ``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ValueError("Twilio needs a sender number or a messaging service sid")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def send(self, to: str, body: str) -> None:
        form = {"To": to, "Body": body}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.from_number or ""
        url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        try:
            response = requests.post(url, data=form, auth=(self.account_sid, self.auth_token), timeout=self.timeout)
        except requests.RequestException as exc:
            log.error("sms_provider_unreachable", provider="twilio", error=type(exc).__name__)
            raise SmsUnavailable("Twilio cannot be reached") from exc
        if response.status_code in (200, 201):
            return
        code = _twilio_error_code(response)
        if response.status_code == 400 and code in TWILIO_NUMBER_ERRORS:
            log.warning("sms_number_rejected", provider="twilio", code=code)
            raise SmsRejected(f"Twilio refused the number (error {code})")
        log.error("sms_provider_error", provider="twilio", status=response.status_code, code=code)
        raise SmsUnavailable(f"Twilio answered {response.status_code} (error {code})")


def _twilio_error_code(response: requests.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None


def sender_for(settings: SmsSettings) -> SmsSender:
    """The sender the settings name; a Twilio backend without credentials sends nothing and says so."""
    if settings.backend == "twilio":
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        if not settings.twilio_account_sid or not token:
            return _Misconfigured("sms.twilio_account_sid and BILTEN_SMS__TWILIO_AUTH_TOKEN are required")
        try:
            return TwilioSender(
                settings.twilio_account_sid,
                token,
                from_number=settings.twilio_from_number,
                messaging_service_sid=settings.twilio_messaging_service_sid,
                base_url=settings.twilio_base_url,
                timeout=settings.timeout_seconds,
            )
        except ValueError as exc:
            return _Misconfigured(str(exc))
    return ConsoleSender()


class _Misconfigured:
    def __init__(self, problem: str) -> None:
        self.problem = problem

    def send(self, to: str, body: str) -> None:
        log.error("sms_misconfigured", problem=self.problem)
        raise SmsUnavailable(self.problem)
