"""A loopback HTTP endpoint that keeps the webhooks posted to it, as an app's webhook route receives them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bilten_core.testing import free_port


@dataclass(frozen=True)
class Received:
    payload: bytes
    signature: str

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.payload)
        return event


@dataclass(eq=False)
class WebhookInbox:
    url: str = ""
    # What the endpoint answers; a 5xx makes the sender keep the delivery pending.
    status: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.received.append(Received(request.get_data(), request.headers.get("Stripe-Signature", "")))
            status = self.status
        return Response(status=status)(environ, start_response)

    def types(self) -> list[str]:
        with self.lock:
            return [received.event["type"] for received in self.received]

    def of_type(self, kind: str) -> list[Received]:
        with self.lock:
            return [received for received in self.received if received.event["type"] == kind]


@contextmanager
def webhook_inbox() -> Iterator[WebhookInbox]:
    inbox = WebhookInbox()
    server = make_server("127.0.0.1", free_port(), inbox, threaded=True)
    inbox.url = f"http://127.0.0.1:{server.server_port}/webhooks/stripe"
    # A short poll interval: shutting down waits for one poll, and every test starts and stops a server.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield inbox
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
