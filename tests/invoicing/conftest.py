"""Fixtures for the invoicing tests: a tenant with a paid event, and the mail as an SMTP server receives it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import job_probe
import pytest
from flask import Flask

from bilten_core.tenancy.context import TenantInfo
from tests.auth.auth_mail import Inbox, smtp_inbox
from tests.invoicing.invoicing_helpers import without_fraud_limits


@pytest.fixture
def tenant(app: Flask, make_tenant: Callable[..., TenantInfo]) -> TenantInfo:
    return without_fraud_limits(app, make_tenant("inv", display_name="Riverside Jazz Club"))


@pytest.fixture
def inbox(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """The mail the app sends, as a real SMTP server receives it; the job queues start empty."""
    job_probe.reset(app)
    with smtp_inbox(app, monkeypatch) as box:
        yield box


@pytest.fixture(autouse=True)
def empty_queues(app: Flask) -> None:
    """Jobs left queued by earlier tests must not run in this one."""
    job_probe.reset(app)
