import job_probe
import pytest

pytest_plugins = ["bilten_core.testing"]


@pytest.fixture(scope="module")
def jobs_app(app, make_app):
    """An app with the job probe plugin, whose jobs record what they saw."""
    return job_probe.build_app(make_app)


@pytest.fixture
def clean_jobs(jobs_app):
    """Empty queues and probe records, then run the test inside ``jobs_app``'s context."""
    job_probe.reset(jobs_app)
    with jobs_app.app_context():
        yield
