"""``/_dev/mail``: the development mail outbox, on the platform host, only when ``env`` is development.

With ``mail.backend = "outbox"`` nothing leaves the machine; this page lists the kept messages and
shows one with its headers, its text part and its HTML part (in a sandboxed frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, render_template, send_file

from bilten_core.mail import EML_NAME, outbox_dir, outbox_messages, parse_message

blueprint = Blueprint("dev_mail", __name__, url_prefix="/_dev/mail")


@blueprint.get("/")
def index() -> Any:
    messages = []
    for path in outbox_messages():
        message = parse_message(path.read_bytes())
        messages.append({"name": path.name, "subject": message["Subject"], "from": message["From"],
                         "to": message["To"], "date": message["Date"]})
    return render_template("dev_mail/index.html", messages=messages)


@blueprint.get("/<name>")
def show(name: str) -> Any:
    message = parse_message(_message_path(name).read_bytes())
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return render_template(
        "dev_mail/show.html",
        name=name,
        message=message,
        text=text.get_content() if text else "",
        html=html.get_content() if html else "",
    )


@blueprint.get("/<name>/raw")
def raw(name: str) -> Any:
    return send_file(_message_path(name), mimetype="message/rfc822", as_attachment=True)


def _message_path(name: str) -> Path:
    # Only names the outbox itself writes: nothing else on disk can be read through this page.
    path = outbox_dir() / name
    if not EML_NAME.match(name) or not path.is_file():
        abort(404)
    return path
