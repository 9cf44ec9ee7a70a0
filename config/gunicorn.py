"""gunicorn settings for the production image (``gunicorn -c config/gunicorn.py wsgi:app``)."""

import os

from prometheus_client import multiprocess

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
accesslog = "-"
graceful_timeout = 30


def on_starting(server):  # type: ignore[no-untyped-def]
    # Samples of workers from an earlier run would otherwise be added to this run's.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
