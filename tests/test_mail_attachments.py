"""Mail attachments reach a real SMTP server byte for byte, beside the text and HTML parts."""

from __future__ import annotations

import os

import job_probe as probe
import pytest

from bilten_core.db import db
from bilten_core.mail import Attachment, MailError, send_mail
from bilten_core.tenancy.context import tenant_context
from tests.auth.auth_mail import smtp_inbox

pytestmark = pytest.mark.usefixtures("clean_jobs")


def test_an_attachment_arrives_intact_after_both_text_parts(jobs_app, make_tenant, monkeypatch):
    tenant = probe.fresh_info(jobs_app, make_tenant("mail-attach"))
    # Every byte value, including the ones a careless 7-bit encoding would mangle.
    content = bytes(range(256)) + os.urandom(4096)
    with smtp_inbox(jobs_app, monkeypatch) as inbox:
        with tenant_context(tenant):
            send_mail("fan@example.org", "test_message", subject="Your tickets",
                      attachments=[Attachment("tickets-ABC23456.pdf", content, "application/pdf")])
            db.session.commit()
        probe.work(jobs_app, ["mail"])
        [message] = inbox.messages()

    assert message.get_content_type() == "multipart/mixed"
    assert "This is a test message" in message.get_body(preferencelist=("plain",)).get_content()
    assert message.get_body(preferencelist=("html",)) is not None
    [attached] = list(message.iter_attachments())
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_filename() == "tickets-ABC23456.pdf"
    assert attached.get_content() == content


def test_a_message_without_attachments_stays_a_plain_alternative(jobs_app, make_tenant):
    tenant = probe.fresh_info(jobs_app, make_tenant("mail-plain"))
    with tenant_context(tenant):
        message = send_mail("fan@example.org", "test_message", subject="Hello")
        db.session.rollback()
    assert message.get_content_type() == "multipart/alternative"


@pytest.mark.parametrize("attachment", [
    Attachment("tickets.pdf\r\nBcc: victim@example.org", b"%PDF", "application/pdf"),
    Attachment("tickets.pdf", b"%PDF", "pdf"),
], ids=["header injection in the name", "a mimetype without subtype"])
def test_a_malformed_attachment_is_refused(jobs_app, make_tenant, attachment):
    tenant = probe.fresh_info(jobs_app, make_tenant("mail-badattach"))
    with tenant_context(tenant), pytest.raises(MailError):
        send_mail("fan@example.org", "test_message", subject="Hello", attachments=[attachment])
    with tenant_context(tenant):
        db.session.rollback()


def test_an_inline_image_is_part_of_the_html_and_a_file_stays_an_attachment(jobs_app, make_tenant, monkeypatch):
    tenant = probe.fresh_info(jobs_app, make_tenant("mail-inline"))
    image = b"\x89PNG\r\n\x1a\n" + os.urandom(512)
    with smtp_inbox(jobs_app, monkeypatch) as inbox:
        with tenant_context(tenant):
            send_mail("fan@example.org", "test_message", subject="Your tickets", attachments=[
                Attachment("ticket-1.png", image, "image/png", content_id="qr-1@bilten"),
                Attachment("tickets-ABC23456.pdf", b"%PDF-1.7", "application/pdf"),
            ])
            db.session.commit()
        probe.work(jobs_app, ["mail"])
        [message] = inbox.messages()

    related = next(part for part in message.walk() if part.get_content_type() == "multipart/related")
    html, inline = related.iter_parts()
    assert html.get_content_type() == "text/html"
    assert inline["Content-ID"] == "<qr-1@bilten>" and inline.get_content() == image
    assert inline.get_content_disposition() == "inline"
    assert [part.get_filename() for part in message.iter_attachments()] == ["tickets-ABC23456.pdf"]
    assert "This is a test message" in message.get_body(preferencelist=("plain",)).get_content()


def test_a_content_id_that_could_break_the_header_is_refused(jobs_app, make_tenant):
    tenant = probe.fresh_info(jobs_app, make_tenant("mail-badcid"))
    with tenant_context(tenant), pytest.raises(MailError):
        send_mail("fan@example.org", "test_message", subject="Hello",
                  attachments=[Attachment("qr.png", b"\x89PNG", "image/png", content_id="a>\r\nBcc: x@example.org")])
    with tenant_context(tenant):
        db.session.rollback()
