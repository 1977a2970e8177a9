"""The web tests' admin password, the CSRF token of a page's form, a clerk signed in, a
session cookie copied to another browser, and the text a reader sees on a page."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from argon2 import PasswordHasher
from flask import Flask
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


def cookie_copy(app: Flask, client: FlaskClient, cookie: str) -> FlaskClient:
    """Another browser holding a copy of ``client``'s cookie named ``cookie`` (kept, or stolen)."""
    found = client.get_cookie(cookie)
    assert found is not None
    other = app.test_client()
    other.set_cookie(cookie, found.value)
    return other


def sign_in_clerk(client: FlaskClient, store: Store) -> None:
    """Add the clerk ``jana`` (password :data:`ADMIN_PASSWORD`) and sign ``client`` in."""
    Users(store).add("jana", ADMIN_PASSWORD, "clerk")
    token = csrf_token(client, "/admin/login")
    client.post(
        "/admin/login", data={"username": "jana", "password": ADMIN_PASSWORD, "csrf_token": token}
    )


class _Text(HTMLParser):
    """The text a reader sees on a page (and what it says to screen readers)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.extend(v for k, v in attrs if k in ("aria-label", "title") and v)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(" ".join(p.split()) for p in parser.parts)


def older_hasher(current: PasswordHasher) -> PasswordHasher:
    """An argon2id hasher with other parameters than ``current``: a hash from an older
    version, which a sign-in must replace."""
    return PasswordHasher(
        time_cost=current.time_cost + 1,
        memory_cost=current.memory_cost,
        parallelism=current.parallelism,
    )
