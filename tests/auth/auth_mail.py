"""Reading account mail as it arrived at the test SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy

import job_probe
from aiosmtpd.controller import Controller

from bilten_core.kernel import kernel
from bilten_core.testing import free_port

LINK = re.compile(r'(https?://[^/\s"]+)(/account/(?:verify-email|reset-password)/)([A-Za-z0-9_-]+)')


class Inbox:
    """An aiosmtpd handler that keeps what arrives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self, to=None):
        found = [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]
        return [m for m in found if to is None or m["To"] == to]

@contextmanager
def smtp_inbox(app, monkeypatch) -> Iterator[Inbox]:
    """A real SMTP server on a free loopback port, with ``app``'s mail settings pointed at it."""
    box = Inbox()
    port = free_port()
    settings = kernel(app).settings.mail
    monkeypatch.setattr(settings, "backend", "smtp")
    monkeypatch.setattr(settings, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(settings, "smtp_port", port)
    monkeypatch.setattr(settings, "smtp_starttls", False)
    monkeypatch.setattr(settings, "smtp_timeout", 2.0)
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop(no_assert=True)


def deliver(app):
    """Run a real RQ worker on the mail queue until it is empty."""
    job_probe.work(app, ["mail"])


def links_in(message):
    """(base URL, path, secret) of every account link in both parts of ``message``; they must agree."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    found = LINK.findall(text)
    assert set(found) == set(LINK.findall(html))
    return found
