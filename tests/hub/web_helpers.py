"""The web tests' admin password, and the CSRF token of a page's form."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

ADMIN_PASSWORD = "correct horse battery"


def csrf_token(client: FlaskClient, url: str) -> str:
    """The CSRF token of the form on page ``url``."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, f"no CSRF token on {url}"
    return match.group(1)
