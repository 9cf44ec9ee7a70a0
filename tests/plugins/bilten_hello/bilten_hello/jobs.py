"""The hello plugin's background job and its schedule."""

from __future__ import annotations

import structlog

from bilten_core.jobs import Schedule, tenant_job
from bilten_hello import services

log = structlog.get_logger("bilten_hello")


# Runs on RQ inside one tenant's schema; the kernel refuses to run it for a tenant that turned
# hello off. It may run twice (a retry, the schedule), so it only touches unwelcomed greetings.
@tenant_job(name="hello.welcome_new")
def welcome_new() -> None:
    welcomed = services.welcome_new()
    if welcomed:
        log.info("hello.welcomed", greetings=welcomed)


# Every tenant that has hello on gets one run an hour, which also welcomes the greetings written
# without queuing the job (the provisioning greeting, the demo data).
HOURLY_WELCOME = Schedule(name="hello.hourly_welcome", job=welcome_new.name, interval=3600)
