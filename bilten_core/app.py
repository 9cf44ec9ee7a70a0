"""The app factory: a short, linear list of configure steps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from bilten_core import builtin
from bilten_core.api import configure_api
from bilten_core.auth.api_auth import configure_bearer_auth
from bilten_core.auth.oidc_web import configure_oidc_pages
from bilten_core.auth.throttle import configure_throttling
from bilten_core.auth.web import configure_accounts
from bilten_core.cache import configure_cache
from bilten_core.config import ConfigError, Settings, load_settings
from bilten_core.db import db, ping_after_idle
from bilten_core.errors import configure_errors
from bilten_core.jobs import configure_jobs
from bilten_core.kernel import Kernel
from bilten_core.observability import configure_logging, configure_observability
from bilten_core.outbox import install_session_listeners
from bilten_core.permissions import configure_permissions
from bilten_core.plugins import PluginManager
from bilten_core.tenancy.middleware import configure_tenancy
from bilten_core.tenancy.resolver import TenantResolver
from bilten_core.tenant_settings import configure_tenant_settings
from bilten_core.web import configure_web


def create_app(settings: Settings | None = None, extra_plugins: Iterable[tuple[str, Any]] = ()) -> Flask:
    """Build the Bilten app.

    ``extra_plugins`` registers ``(name, module)`` pairs beside the allow-listed entry points;
    tests use it to load a plugin without installing it.
    """
    settings = settings or load_settings()
    configure_logging(settings)
    app = Flask(
        "bilten_core",
        instance_path=settings.instance_path,
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.update(
        SECRET_KEY=settings.secret_key.get_secret_value(),
        MAX_CONTENT_LENGTH=settings.api.max_body_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        TESTING=settings.env == "test",
        BABEL_TRANSLATION_DIRECTORIES="translations",  # bilten_core/translations
    )
    kernel = _configure_kernel(app, settings, extra_plugins)
    configure_cache(app, settings)
    configure_permissions(kernel)
    configure_tenant_settings(kernel)
    configure_errors(app)
    configure_observability(app)
    configure_tenancy(app)
    configure_bearer_auth(app)  # after tenancy: a token is checked against the tenant being served
    configure_web(app)
    configure_accounts(app)
    configure_oidc_pages(app)
    _configure_plugin_routes(app, kernel)
    configure_throttling(app, settings)  # after every route it limits is registered
    configure_jobs(app)
    install_session_listeners()
    kernel.plugins.hook.app_configured(app=app)
    return app


def _configure_kernel(app: Flask, settings: Settings, extra_plugins: Iterable[tuple[str, Any]]) -> Kernel:
    if not settings.database.url:
        raise ConfigError("DATABASE_URL is not set: run `make run` for the embedded servers, or set it")
    if not settings.redis.url:
        raise ConfigError("REDIS_URL is not set: run `make run` for the embedded servers, or set it")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=settings.database.url,
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_size": settings.database.pool_size,
            "max_overflow": settings.database.max_overflow,
            "pool_recycle": settings.database.pool_recycle,
            "echo": settings.database.echo,
        },
    )
    db.init_app(app)
    with app.app_context():
        ping_after_idle(db.engine, settings.database.ping_after_idle)
    plugins = PluginManager()
    plugins.register("kernel", builtin)
    plugins.load(settings.plugins.enabled)
    for name, module in extra_plugins:
        plugins.register(name, module)
    # One quick retry: with Redis down a request should fail fast (503) rather than hang.
    redis_client = redis.Redis.from_url(
        settings.redis.url, socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 1)
    )
    resolver = TenantResolver(
        ttl=settings.tenancy.cache_ttl, max_size=settings.tenancy.cache_size, plugins=plugins, redis=redis_client
    )
    kernel = Kernel(settings=settings, plugins=plugins, redis=redis_client, resolver=resolver)
    app.extensions["bilten"] = kernel
    return kernel


def _configure_plugin_routes(app: Flask, kernel: Kernel) -> None:
    for owner, blueprint in kernel.plugins.collect("register_blueprints", app=app):
        app.register_blueprint(blueprint)
        kernel.blueprint_owners[blueprint.name] = owner
    for _owner, blueprint in kernel.plugins.collect("register_platform_blueprints", app=app):
        app.register_blueprint(blueprint)
        kernel.platform_blueprints.add(blueprint.name)
    api_blueprints = kernel.plugins.collect("register_api", app=app)
    for owner, blueprint in api_blueprints:
        kernel.blueprint_owners[blueprint.name] = owner
    platform_api_blueprints = kernel.plugins.collect("register_platform_api", app=app)
    for _owner, blueprint in platform_api_blueprints:
        kernel.platform_blueprints.add(blueprint.name)
    configure_api(app, api_blueprints + platform_api_blueprints)
