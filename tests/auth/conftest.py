"""Fixtures for the account tests: an app with the auth probe plugin, a real SMTP server, tenants."""

from __future__ import annotations

import auth_probe
import job_probe
import pytest
from auth_mail import smtp_inbox


@pytest.fixture(scope="module")
def auth_app(app, make_app):
    return make_app(extra_plugins=(("authprobe", auth_probe),))


@pytest.fixture
def web(auth_app):
    """``auth_app`` with empty queues and probe records, for tests that drive it over HTTP."""
    job_probe.reset(auth_app)
    auth_probe.revoked.clear()
    return auth_app


@pytest.fixture
def auth_ctx(auth_app):
    """Empty queues and probe records, then run the test inside ``auth_app``'s context."""
    job_probe.reset(auth_app)
    auth_probe.revoked.clear()
    with auth_app.app_context():
        yield auth_app


@pytest.fixture
def inbox(auth_app, monkeypatch):
    """A running SMTP server on a free loopback port, which the app's mail settings point at."""
    with smtp_inbox(auth_app, monkeypatch) as box:
        yield box


@pytest.fixture
def make_info(auth_app, make_tenant):
    """A new tenant as ``auth_app`` sees it."""

    def make(name="auth", **kwargs):
        return job_probe.fresh_info(auth_app, make_tenant(name, **kwargs))

    return make
