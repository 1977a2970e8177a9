"""The web tests' admin password, the CSRF token of a page's form, and a clerk signed in."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from hub.store import Store
from hub.users import Users

ADMIN_PASSWORD = "correct horse battery"


def csrf_token(client: FlaskClient, url: str) -> str:
    """The CSRF token of the form on page ``url``."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def sign_in_clerk(client: FlaskClient, store: Store) -> None:
    """Add the clerk ``jana`` (password :data:`ADMIN_PASSWORD`) and sign ``client`` in."""
    Users(store).add("jana", ADMIN_PASSWORD, "clerk")
    token = csrf_token(client, "/admin/login")
    client.post(
        "/admin/login", data={"username": "jana", "password": ADMIN_PASSWORD, "csrf_token": token}
    )
