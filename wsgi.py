"""WSGI entry point: ``gunicorn wsgi:app``."""

from bilten_core.app import create_app

app = create_app()
