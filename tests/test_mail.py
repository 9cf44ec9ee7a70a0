"""Mail through a real SMTP server (aiosmtpd) and real RQ workers; the development outbox and viewer."""

from __future__ import annotations

from email import message_from_bytes, policy

import job_probe as probe
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from bilten_core.cli import build_cli
from bilten_core.config import MailSettings
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.mail import MailError, outbox_messages, send_mail
from bilten_core.tenancy.context import TenantRequired, tenant_context
from bilten_core.testing import free_port, host_of


class Inbox:
    """An aiosmtpd handler that keeps what arrives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self):
        return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


pytestmark = pytest.mark.usefixtures("clean_jobs")


@pytest.fixture
def smtp_server(jobs_app, monkeypatch):
    """A real SMTP server on a free loopback port, which the app's mail settings point at."""
    inbox = Inbox()
    port = free_port()
    settings = kernel(jobs_app).settings.mail
    monkeypatch.setattr(settings, "backend", "smtp")
    monkeypatch.setattr(settings, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(settings, "smtp_port", port)
    monkeypatch.setattr(settings, "smtp_starttls", False)
    monkeypatch.setattr(settings, "smtp_timeout", 2.0)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    inbox.start = controller.start
    yield inbox
    controller.stop(no_assert=True)


def test_mail_arrives_from_the_tenant_with_both_parts_and_its_own_links(jobs_app, make_tenant, smtp_server):
    smtp_server.start()
    tenant = probe.fresh_info(jobs_app, make_tenant("mail-ok", display_name="Riverside Jazz Club"))
    # Sent while serving a request that came in on another Host: links must not use it.
    with jobs_app.test_request_context("/", headers={"Host": "attacker.example"}), tenant_context(tenant):
        send_mail("fan@example.org", "test_message", {}, subject="Your tickets")
        db.session.commit()
    assert smtp_server.envelopes == []  # queued on the mail queue, not sent in the request

    probe.work(jobs_app, ["mail"])

    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "noreply@localhost"
    assert envelope.rcpt_tos == ["fan@example.org"]
    [message] = smtp_server.messages()
    assert message["From"].addresses[0].display_name == "Riverside Jazz Club"
    assert message["From"].addresses[0].addr_spec == "noreply@localhost"
    assert message["Subject"] == "Your tickets"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "This is a test message from Riverside Jazz Club." in text
    assert "<p>This is a test message from Riverside Jazz Club.</p>" in html
    assert f"https://{tenant.primary_domain}/" in text
    assert f'href="https://{tenant.primary_domain}/"' in html
    assert "attacker.example" not in envelope.content.decode()


def test_a_tenant_name_with_accents_and_markup_is_encoded_not_injected(jobs_app, make_tenant, smtp_server):
    smtp_server.start()
    tenant = probe.fresh_info(jobs_app, make_tenant("mail-utf", display_name='Kültür <b>"Sahnesi"</b>'))
    with tenant_context(tenant):
        send_mail(["a@example.org", "b@example.org"], "test_message", subject="Biletleriniz geldi")
        db.session.commit()
    probe.work(jobs_app, ["mail"])

    [message] = smtp_server.messages()
    assert message["From"].addresses[0].display_name == 'Kültür <b>"Sahnesi"</b>'
    assert message["Subject"] == "Biletleriniz geldi"
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Kültür &lt;b&gt;" in html
    assert sorted(smtp_server.envelopes[0].rcpt_tos) == ["a@example.org", "b@example.org"]


def test_mail_is_retried_while_the_smtp_server_is_down_and_not_lost(jobs_app, make_tenant, smtp_server):
    tenant = probe.fresh_info(jobs_app, make_tenant("mail-down"))
    with tenant_context(tenant):
        send_mail("fan@example.org", "test_message", subject="Eventually")
        db.session.commit()

    probe.work(jobs_app, ["mail"])  # nobody listens on the port yet: the delivery fails
    assert smtp_server.envelopes == []
    smtp_server.start()
    assert probe.release_retries(jobs_app) == 1
    probe.work(jobs_app, ["mail"])

    assert [m["Subject"] for m in smtp_server.messages()] == ["Eventually"]


def test_mail_of_a_rolled_back_transaction_is_never_sent(jobs_app, make_tenant, smtp_server):
    smtp_server.start()
    with tenant_context(probe.fresh_info(jobs_app, make_tenant("mail-rollback"))):
        send_mail("fan@example.org", "test_message", subject="Never")
        db.session.rollback()
    probe.work(jobs_app, ["mail"])
    assert smtp_server.envelopes == []


def test_mail_needs_a_tenant_and_valid_recipients(jobs_app, make_tenant):
    with pytest.raises(TenantRequired):
        send_mail("fan@example.org", "test_message", subject="Who am I")
    with tenant_context(probe.fresh_info(jobs_app, make_tenant("mail-bad"))):
        for bad in ("not an address", "x@example.org\r\nBcc: all@example.org", []):
            with pytest.raises(MailError):
                send_mail(bad, "test_message", subject="Hi")


def test_the_send_test_command_queues_a_message(jobs_app, make_tenant, smtp_server):
    smtp_server.start()
    tenant = make_tenant("mail-cli", display_name="Command Line Club")
    runner = CliRunner()
    result = runner.invoke(build_cli(jobs_app), ["mail", "send-test", tenant.slug, "ops@example.org"], obj=jobs_app)
    missing = runner.invoke(build_cli(jobs_app), ["mail", "send-test", "no-such-org", "ops@example.org"], obj=jobs_app)
    probe.work(jobs_app, ["mail"])

    assert result.exit_code == 0, result.output
    assert "queued on the mail queue" in result.output
    assert [m["Subject"] for m in smtp_server.messages()] == ["Test message from Command Line Club"]
    assert missing.exit_code == 1
    assert "no tenant named 'no-such-org'" in missing.output


@pytest.fixture(scope="module")
def dev_app(app, make_app):
    return probe.build_app(make_app, env="development", mail=MailSettings(backend="outbox"))


def test_development_keeps_mail_in_a_local_outbox_shown_on_the_platform_host(dev_app, make_tenant):
    probe.reset(dev_app)
    tenant = probe.fresh_info(dev_app, make_tenant("mail-dev", display_name="Dev Club"))
    with dev_app.app_context():
        with tenant_context(tenant):
            send_mail("fan@example.org", "test_message", subject="Kept locally")
            db.session.commit()
        probe.work(dev_app, ["mail"])
        [path] = [p for p in outbox_messages() if b"Kept locally" in p.read_bytes()]
    client = dev_app.test_client()
    platform = {"Host": "localhost"}

    listing = client.get("/_dev/mail/", headers=platform)
    shown = client.get(f"/_dev/mail/{path.name}", headers=platform)
    raw = client.get(f"/_dev/mail/{path.name}/raw", headers=platform)

    assert listing.status_code == 200
    assert b"Kept locally" in listing.data
    assert shown.status_code == 200
    assert b"This is a test message from Dev Club." in shown.data
    # Development links carry the port `make run` serves on.
    assert f"http://{tenant.primary_domain}:".encode() in shown.data
    assert raw.status_code == 200
    assert raw.headers["Content-Type"].startswith("message/rfc822")
    assert client.get("/_dev/mail/../../config.toml", headers=platform).status_code == 404
    assert client.get("/_dev/mail/20250101T000000-" + "0" * 32 + ".eml", headers=platform).status_code == 404
    assert client.get("/_dev/mail/", headers=host_of(tenant)).status_code == 404


def test_the_mail_viewer_does_not_exist_outside_development(jobs_app):
    assert jobs_app.test_client().get("/_dev/mail/", headers={"Host": "localhost"}).status_code == 404
