"""The Flask extensions, created once and bound to an app by :func:`create_app`."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
"""CSRF tokens on every form (the token-authenticated API is exempt)."""

login_manager = LoginManager()
"""Sessions of the admin pages' users."""

babel = Babel()
"""Message catalogs (sk, cs, uk, en) and dates in the citizen's language."""

limiter = Limiter(key_func=get_remote_address, storage_uri="memory://", headers_enabled=True)
"""Rate limits of lookups, logins and ticket requests, per client address."""
