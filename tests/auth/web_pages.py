"""A browser stand-in for the account pages: the Flask test client on one host, with its cookies."""

from __future__ import annotations

import re
import uuid

import requests
from auth_mail import deliver, links_in
from flask.sessions import session_json_serializer

from bilten_core.auth.sessions import COOKIE_NAME, KEY_PREFIX
from bilten_core.kernel import kernel

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REVOKE = re.compile(r'action="/account/sessions/([0-9a-f]+)/revoke"')


def direct_http() -> requests.Session:
    """A requests session that talks to loopback servers directly, whatever proxy the environment sets."""
    http = requests.Session()
    http.trust_env = False
    return http


def unique_email(name="web"):
    return f"{name}-{uuid.uuid4().hex[:8]}@example.org"


class Browser:
    """One browser on one host: requests go to ``host`` and cookies are kept for it."""

    def __init__(self, app, host, user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"):
        self.app = app
        self.host = host
        self.client = app.test_client()
        self.user_agent = user_agent

    def get(self, path, **kwargs):
        return self.client.get(path, base_url=f"http://{self.host}", headers={"User-Agent": self.user_agent}, **kwargs)

    def post(self, path, data, **kwargs):
        return self.client.post(
            path, base_url=f"http://{self.host}", data=data, headers={"User-Agent": self.user_agent}, **kwargs
        )

    def token_on(self, path):
        page = self.get(path)
        assert page.status_code == 200, page.text
        [token] = set(CSRF.findall(page.text))
        return token

    def submit(self, page_path, data, action=None):
        """Open ``page_path``, then post ``data`` with its CSRF token to ``action`` (default: the page)."""
        return self.post(action or page_path, {"csrf_token": self.token_on(page_path), **data})

    @property
    def session_id(self):
        cookie = self.client.get_cookie(COOKIE_NAME, domain=self.host)
        return cookie.value if cookie else None

    def replay_cookie_on(self, other_host, session_id):
        self.client.set_cookie(COOKIE_NAME, session_id, domain=other_host)


def stored_session(app, session_id):
    raw = kernel(app).redis.get(KEY_PREFIX + session_id)
    return None if raw is None else session_json_serializer.loads(raw.decode())


def rewrite_session(app, session_id, **meta):
    """Change a stored session's bookkeeping (its times), as if time had passed."""
    stored = stored_session(app, session_id)
    stored["meta"].update(meta)
    kernel(app).redis.set(KEY_PREFIX + session_id, session_json_serializer.dumps(stored))


def newest_link(app, inbox, email):
    deliver(app)
    [*_, message] = inbox.messages(to=email)
    [(base, path, secret)] = links_in(message)
    return base, path, secret


def sign_up_and_verify(app, inbox, browser, email, password=PASSWORD):
    response = browser.submit("/account/sign-up", {"email": email, "password": password, "display_name": "Ada Fan"})
    assert response.status_code == 302 and response.location == "/account/check-your-mail", response.text
    _base, path, secret = newest_link(app, inbox, email)
    assert path == "/account/verify-email/"
    response = browser.submit(path + secret, {})
    assert response.status_code == 302 and response.location == "/account/sign-in"


def sign_in(browser, email, password=PASSWORD, next_path=None):
    data = {"email": email, "password": password}
    if next_path is not None:
        data["next"] = next_path
    return browser.submit("/account/sign-in", data)
