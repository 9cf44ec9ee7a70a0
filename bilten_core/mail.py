"""Mail: templated HTML and text, sent from the tenant's name, delivered from the ``mail`` queue.

:func:`send_mail` renders ``templates/mail/<template>.txt`` and ``.html`` (plugins ship theirs in
their own ``templates/mail/`` folder; both usually extend ``mail/base.txt`` / ``mail/base.html``),
builds the message and stages its delivery in the outbox, so it leaves only if the caller's
transaction commits and is not lost when the mail server or Redis is down: the delivery job raises
and RQ retries it. Files go along as :class:`Attachment` (a ticket PDF, for example).

The sender: every tenant sends from the platform's address (``mail.default_sender``) under the
tenant's own name, e.g. ``"Riverside Jazz Club" <noreply@tickets.example.com>``, so one verified
sending domain serves all tenants while recipients see who wrote to them.

Templates see the caller's ``context`` plus ``tenant``, ``subject``, ``html_lang``, ``html_dir``,
``site_url`` (the tenant's primary domain, never the request's Host header) and ``tenant_url(path)``
to build links from it; not the web pages' context processors, which assume a visitor's request.

Backends (``mail.backend``): ``smtp`` talks to ``mail.smtp_host``, with STARTTLS and a login when
configured; ``outbox`` (development) writes each message as an ``.eml`` file under
``instance/<mail.outbox_dir>/``, which the platform host lists at ``/_dev/mail``.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any, cast

import click
from flask import current_app
from flask_babel import force_locale

from bilten_core.jobs import tenant_job
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantInfo, current_tenant, tenant_context
from bilten_core.web import RTL_LANGUAGES

# Non-ASCII bodies are quoted-printable or base64 and headers RFC 2047-encoded, so a built
# message is plain ASCII: it travels through the outbox's JSON and any SMTP server unchanged.
MAIL_POLICY = policy.SMTP.clone(cte_type="7bit")
EML_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{32}\.eml$")


class MailError(ValueError):
    """A message cannot be built from what was given (a malformed address, for example)."""


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message, such as the tickets of an order as a PDF.

    With a ``content_id`` it is inline instead: a part of the HTML body that the HTML shows as
    ``<img src="cid:{content_id}">`` (a ticket's QR code), which mail clients show without fetching
    anything from the network.
    """

    filename: str
    content: bytes
    mimetype: str = "application/octet-stream"
    content_id: str | None = None


def send_mail(
    to: str | Sequence[str],
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    subject: str,
    locale: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """Mail the current tenant's ``template`` to ``to`` once the current transaction commits.

    ``subject`` is used as given (translate it first). The templates render in ``locale``
    (default: the platform's default locale), because the recipient's language is not the one of
    whoever caused the mail. ``attachments`` follow the text. Returns the message as it will be sent.
    """
    tenant = current_tenant()
    message = build_message(
        tenant, to, template, context or {}, subject=subject, locale=locale, attachments=attachments
    )
    deliver_mail.after_commit(message.as_bytes().decode("ascii"))
    return message


def tenant_base_url(tenant: TenantInfo) -> str:
    """Where the tenant's site is, for links in mail: its primary domain, never a request's Host."""
    settings = kernel().settings
    if settings.env == "development":
        # `make run` serves on a port; browsers send *.localhost to this machine.
        return f"http://{tenant.primary_domain}:{os.environ.get('PORT', '5000')}"
    return f"https://{tenant.primary_domain}"


def sender(tenant: TenantInfo) -> Address:
    """The tenant's name in front of the platform's sending address."""
    _name, addr = parseaddr(kernel().settings.mail.default_sender)
    username, _, domain = addr.partition("@")
    return Address(display_name=tenant.name, username=username, domain=domain)


def build_message(
    tenant: TenantInfo,
    to: str | Sequence[str],
    template: str,
    context: Mapping[str, Any],
    *,
    subject: str,
    locale: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        raise MailError("a message needs at least one recipient")
    for recipient in recipients:
        _name, addr = parseaddr(recipient)
        if "@" not in addr or any(c in recipient for c in "\r\n"):
            raise MailError(f"{recipient!r} is not an email address")
    base_url = tenant_base_url(tenant)
    locale = locale or current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    language = locale.split("_")[0]
    variables = {
        **context,
        "tenant": tenant,
        "subject": subject,
        "site_url": base_url,
        "tenant_url": lambda path="/": base_url + (path if path.startswith("/") else "/" + path),
        "html_lang": language,
        "html_dir": "rtl" if language in RTL_LANGUAGES else "ltr",
    }
    # Straight from the Jinja environment: web pages' context processors assume a visitor's
    # request, and mail is often rendered in a job, for a recipient who is not that visitor.
    env = current_app.jinja_env
    with force_locale(locale):
        text = env.get_template(f"mail/{template}.txt").render(variables)
        html = env.get_template(f"mail/{template}.html").render(variables)
    from_address = sender(tenant)
    message = EmailMessage(policy=MAIL_POLICY)
    message["Subject"] = subject
    message["From"] = from_address
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=from_address.domain or None)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    html_part = cast(EmailMessage, message.get_body(preferencelist=("html",)))
    for attachment in attachments:
        if attachment.content_id is not None:
            _attach(html_part, attachment, inline=True)
    for attachment in attachments:
        if attachment.content_id is None:
            _attach(message, attachment)
    return message


def _attach(message: EmailMessage, attachment: Attachment, inline: bool = False) -> None:
    maintype, _slash, subtype = attachment.mimetype.partition("/")
    cid = attachment.content_id
    bad_cid = cid is not None and (not cid or any(c in cid for c in "\r\n<> "))
    if not maintype or not subtype or bad_cid or any(c in attachment.filename for c in "\r\n"):
        raise MailError(f"cannot attach {attachment.filename!r} as {attachment.mimetype!r}")
    # Base64 under MAIL_POLICY, so the message stays plain ASCII whatever the bytes are.
    if inline:
        message.add_related(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename,
                            cid=f"<{cid}>", disposition="inline")
    else:
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename)


def parse_message(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]


@tenant_job(name="kernel.deliver_mail", queue="mail", retries=5)
def deliver_mail(raw: str) -> None:
    """Send one built message through the configured backend; raising makes RQ retry it."""
    message = parse_message(raw.encode("ascii"))
    if kernel().settings.mail.backend == "outbox":
        write_to_outbox(message)
    else:
        send_smtp(message)


def send_smtp(message: EmailMessage) -> None:
    settings = kernel().settings.mail
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        smtp.send_message(message)


def outbox_dir() -> Path:
    settings = kernel().settings
    return settings.instance_dir(settings.mail.outbox_dir)


def write_to_outbox(message: EmailMessage) -> Path:
    """Keep a message as ``<UTC time>-<random>.eml`` in the development mail folder."""
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex}.eml"
    path = outbox_dir() / name
    path.write_bytes(message.as_bytes(policy=policy.SMTP))
    return path


def outbox_messages() -> list[Path]:
    """The development outbox's messages, newest first."""
    return sorted((p for p in outbox_dir().glob("*.eml") if EML_NAME.match(p.name)), reverse=True)


@click.group("mail", help="Mail delivery.")
def mail_command() -> None:
    pass


@mail_command.command("send-test", help="Queue a test message from a tenant, to check mail delivery.")
@click.argument("slug")
@click.argument("recipient")
def send_test_command(slug: str, recipient: str) -> None:
    from flask_babel import gettext as _

    from bilten_core.db import db
    from tenants.service import TenantError, get_tenant, tenant_info

    try:
        tenant = tenant_info(get_tenant(slug))
    except TenantError as exc:
        raise click.ClickException(str(exc)) from exc
    with tenant_context(tenant):
        try:
            send_mail(recipient, "test_message", subject=_("Test message from %(name)s", name=tenant.name))
        except MailError as exc:
            raise click.ClickException(str(exc)) from exc
        db.session.commit()
    click.echo(f"test message to {recipient} queued on the mail queue (backend: {kernel().settings.mail.backend})")


KERNEL_JOBS = [deliver_mail]
