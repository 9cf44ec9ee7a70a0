"""Fixtures for the scanner tests: a tenant with an event and paid tickets at its door, and a live server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from bilten_core.tenancy.context import TenantInfo
from bilten_core.testing import served_by_gunicorn
from tests.scanner.door_helpers import Door


@pytest.fixture
def door(app: Flask, make_tenant: Callable[..., TenantInfo]) -> Door:
    return Door.open(app, make_tenant("door"))


@pytest.fixture
def open_door(app: Flask, make_tenant: Callable[..., TenantInfo]) -> Callable[..., Door]:
    """A door of a new tenant (or of ``tenant``), its event made with these fields."""

    def make(tenant: TenantInfo | None = None, **event_fields: object) -> Door:
        return Door.open(app, tenant or make_tenant("door"), **event_fields)

    return make


@pytest.fixture(scope="session")
def scanner_server(app: Flask, database_url: str, redis_url: str) -> Iterator[str]:
    """The app served by gunicorn (worker processes with threads, as in production); yields its URL."""
    with served_by_gunicorn({"DATABASE_URL": database_url, "REDIS_URL": redis_url}, workers=2, threads=16) as url:
        yield url
