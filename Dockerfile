# Production image: gunicorn serving wsgi:app. The same image runs the worker (`bilten worker`)
# and one-off commands (`bilten migrate`). Configuration comes from the environment:
# DATABASE_URL, REDIS_URL and SECRET_KEY are required; see README.md.
FROM python:3.11-slim

# gunicorn reads WEB_CONCURRENCY (worker processes; about 2 per CPU) and FORWARDED_ALLOW_IPS
# (the proxies trusted to set X-Forwarded-*); override both with `docker run -e`.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BILTEN_ENV=production \
    WEB_CONCURRENCY=3 \
    FORWARDED_ALLOW_IPS=127.0.0.1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/bilten-metrics

WORKDIR /app

# DejaVu Sans sets the ticket PDFs in every Latin, Greek and Cyrillic script.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, from the hashed lock, so code changes reuse this layer.
COPY requirements/lock.txt requirements/lock.txt
RUN pip install --require-hashes -r requirements/lock.txt

COPY . .
# Editable, so the code, config/ and migrations/ are read from /app; the install adds the
# `bilten` command and the plugins' entry points.
RUN pip install --no-deps --no-build-isolation -e . \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home bilten \
    && mkdir -p /app/instance \
    && chown bilten:bilten /app/instance

USER bilten
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# config/gunicorn.py: workers, threads, and /metrics summed over all workers.
CMD ["gunicorn", "-c", "config/gunicorn.py", "wsgi:app"]
