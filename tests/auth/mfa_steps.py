"""Steps of the two-factor tests: enrol through the pages, and codes of neighbouring time steps."""

from __future__ import annotations

import re
import time

import pyotp

SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
BACKUP_CODE = re.compile(r"<li><code>([a-z2-9]{4}-[a-z2-9]{4})</code></li>")


def code_at(secret, steps_from_now=0):
    """The code of the step ``steps_from_now`` away: each step's code is accepted once, within one step of drift."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


def enrol(browser, steps_from_now=0):
    """Turn MFA on for the signed-in ``browser`` as a person would; (secret, backup codes shown).

    An account's TOTP codes are accepted once per time step, whatever the secret: enrolling the
    same account again within a step needs a neighbouring step's code.
    """
    response = browser.submit("/account/mfa", {}, action="/account/mfa/start")
    assert response.status_code == 302 and response.location == "/account/mfa/enrol", response.text
    page = browser.get("/account/mfa/enrol")
    assert page.status_code == 200 and "<svg" in page.text
    [secret] = SECRET.findall(page.text)
    response = browser.submit("/account/mfa/enrol", {"code": code_at(secret, steps_from_now)})
    assert response.status_code == 302 and response.location == "/account/mfa/backup-codes", response.text
    shown = browser.get("/account/mfa/backup-codes")
    codes = BACKUP_CODE.findall(shown.text)
    assert len(codes) == 10
    return secret, codes
