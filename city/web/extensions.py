"""The city web's Flask extensions, created once and bound to an app by ``create_city_app``.

The city has its own instances (not the hub's): its users, its rate limits and its
CSRF exemptions are its own.
"""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
"""CSRF tokens on every form of the admin pages (the API's GETs need none)."""

login_manager = LoginManager()
"""Sessions of the city's users."""

babel = Babel()
"""Message catalogs (sk, cs, uk, en): the city's own, then the hub's for shared texts."""

limiter = Limiter(key_func=get_remote_address, storage_uri="memory://", headers_enabled=True)
"""Rate limits of sign-ins and of the statistics API, per client address."""
