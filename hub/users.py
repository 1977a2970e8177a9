"""People and systems allowed into the hub's web side: users with roles, and API tokens.

Users sign in to the admin pages; their passwords are kept as argon2id hashes
(argon2-cffi). Each user has a session key, part of every session cookie of theirs:
a new key (at sign-out, or with a new password) ends every session signed in before.
An *admin* manages everything and works at any counter; a *clerk* sees the dashboard
and the statistics, and works at the counters (and for the services) the admin
assigned them (none assigned: any).
City systems use the REST API with a bearer token each; only the token's SHA-256
is stored (a token is 256 random bits, so a fast hash is enough), and each token
carries the scopes it may use.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol, TypeVar, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.engine import Connection

from common.errors import PoradovnikError
from hub.model import Counter
from hub.store import Store, metadata

UserRole = Literal["admin", "clerk"]
"""What a user may do: an admin everything, a clerk the dashboard, statistics and counter panel."""

USER_ROLES: Final = get_args(UserRole)

TokenScope = Literal["eservice", "counters", "statistics"]
"""What an API token may do: send e-service updates, act at counters, read statistics."""

SCOPES: Final = get_args(TokenScope)

MIN_PASSWORD_LENGTH: Final = 10
"""Shorter passwords are refused."""

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_users: Final = metadata.tables["users"]
_tokens: Final = metadata.tables["api_tokens"]

hasher: Final = PasswordHasher()
"""argon2id with argon2-cffi's recommended parameters (RFC 9106's low-memory profile)."""

_DUMMY_HASH: Final = hasher.hash(secrets.token_hex(16))


class AccountError(PoradovnikError):
    """A user or token cannot be created or changed as asked."""


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in to the admin pages."""

    username: str
    role: UserRole
    active: bool = True
    session_key: str = field(default="", repr=False)
    """What the user's sessions must carry to count (see :meth:`Users.end_sessions`)."""
    counters: tuple[str, ...] | None = None
    """The counters a clerk may work at; ``None``: any."""
    services: tuple[str, ...] | None = None
    """The services a clerk serves; ``None``: any."""

    @property
    def is_admin(self) -> bool:
        """Whether the user may change the office's set-up."""
        return self.role == "admin"

    def may_work(self, counter: Counter) -> bool:
        """Whether the user may act at ``counter``.

        An admin anywhere; a clerk at an assigned counter that serves one of their services.
        """
        if self.is_admin:
            return True
        if self.counters is not None and counter.id not in self.counters:
            return False
        return self.services is None or bool(set(self.services) & set(counter.services))


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A city system's access to the REST API."""

    name: str
    scopes: tuple[TokenScope, ...]


def check_name(name: str, what: str = "user name") -> str:
    """Return ``name`` if it is a usable user or system name, else raise AccountError."""
    if not _NAME_RE.fullmatch(name):
        raise AccountError(
            f"{what} {name!r}: use 1-64 letters, digits and . _ @ - (starting with a letter "
            "or digit)",
            code="invalid_name",
            params={"name": name[:64]},
        )
    return name


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Check ``secret`` against an argon2 hash, taking as long when there is no hash.

    The same work for an unknown name as for a wrong secret: the time of a
    refusal does not tell which part was wrong.
    """
    try:
        return hasher.verify(stored_hash or _DUMMY_HASH, secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def rehashed(stored_hash: str, secret: str) -> str | None:
    """A new hash of ``secret`` if ``stored_hash``'s argon2 parameters are not today's.

    ``secret`` was just verified against ``stored_hash``; ``None``: it is up to date.
    Called at sign-in, the only time the secret is known: hashes made with older (or
    weaker) parameters are replaced as their users come.
    """
    return hasher.hash(secret) if hasher.check_needs_rehash(stored_hash) else None


def new_session_key() -> str:
    """A user's new session key: every session cookie carrying the old one ends."""
    return secrets.token_hex(16)


def session_id(username: str, session_key: str) -> str:
    """What a session cookie holds: the user's name and their session key."""
    return f"{username}:{session_key}"


class _Keyed(Protocol):
    @property
    def session_key(self) -> str: ...


K = TypeVar("K", bound=_Keyed)


def session_user(session: str, find: Callable[[str], K | None]) -> K | None:
    """The user whose :func:`session_id` a cookie holds, if it carries their current key.

    ``find`` gives a user by name (``None``: no such user, or one who may not sign in).
    The keys are compared in constant time.
    """
    username, _, key = session.rpartition(":")
    user = find(username) if username else None
    if user is None or not hmac.compare_digest(key, user.session_key):
        return None
    return user


class Users:
    """The ``users`` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, username: str, password: str, role: UserRole) -> User:
        """Create a user, or reset an existing one's password and role (and reactivate it)."""
        check_name(username)
        if role not in USER_ROLES:
            raise AccountError(
                f"role {role!r}: choose one of {', '.join(USER_ROLES)}", code="invalid_role"
            )
        check_password(password)
        values = {
            "role": role,
            "password_hash": hasher.hash(password),
            "active": True,
            "session_key": new_session_key(),
        }
        with self.store.transaction() as conn:
            found = conn.execute(
                update(_users).where(_users.c.username == username).values(values)
            ).rowcount
            if not found:
                conn.execute(
                    insert(_users).values(username=username, created_at=datetime.now(UTC), **values)
                )
        return User(username, role, session_key=str(values["session_key"]))

    def authenticate(self, username: str, password: str) -> User | None:
        """The active user with this name and password, else ``None`` (same time either way)."""
        with self.store.db.connect() as conn:
            row = conn.execute(select(_users).where(_users.c.username == username)).first()
        stored = row.password_hash if row is not None and row.active else None
        if not verify_secret(stored, password) or row is None:
            return None
        if (fresh := rehashed(row.password_hash, password)) is not None:
            with self.store.transaction() as conn:
                conn.execute(
                    update(_users).where(_users.c.username == username).values(password_hash=fresh)
                )
        return _user(row)

    def get(self, username: str) -> User | None:
        """The user ``username``, active or not."""
        with self.store.db.connect() as conn:
            row = conn.execute(select(_users).where(_users.c.username == username)).first()
        return None if row is None else _user(row)

    def all(self) -> list[User]:
        """Every user, by name."""
        with self.store.db.connect() as conn:
            rows = conn.execute(select(_users).order_by(_users.c.username)).all()
        return [_user(row) for row in rows]

    def set_role(self, username: str, role: UserRole, *, active: bool) -> None:
        """Change a user's role and whether they may sign in."""
        if role not in USER_ROLES:
            raise AccountError(
                f"role {role!r}: choose one of {', '.join(USER_ROLES)}", code="invalid_role"
            )
        with self.store.transaction() as conn:
            self._refuse_last_admin(conn, username, keeps_admin=role == "admin" and active)
            conn.execute(
                update(_users).where(_users.c.username == username).values(role=role, active=active)
            )

    def assign(
        self, username: str, counters: tuple[str, ...] | None, services: tuple[str, ...] | None
    ) -> None:
        """Set the counters and services a clerk works (``None``: any)."""
        with self.store.transaction() as conn:
            conn.execute(
                update(_users)
                .where(_users.c.username == username)
                .values(
                    counters=None if counters is None else list(counters),
                    services=None if services is None else list(services),
                )
            )

    def set_password(self, username: str, password: str) -> None:
        """Give a user a new password; every session signed in with the old one ends."""
        check_password(password)
        with self.store.transaction() as conn:
            conn.execute(
                update(_users)
                .where(_users.c.username == username)
                .values(password_hash=hasher.hash(password), session_key=new_session_key())
            )

    def end_sessions(self, username: str) -> None:
        """End every session of the user (on every browser): at sign-out."""
        with self.store.transaction() as conn:
            conn.execute(
                update(_users)
                .where(_users.c.username == username)
                .values(session_key=new_session_key())
            )

    def remove(self, username: str) -> bool:
        """Delete a user; ``False`` if there was none. The last active admin stays."""
        with self.store.transaction() as conn:
            self._refuse_last_admin(conn, username, keeps_admin=False)
            return bool(conn.execute(delete(_users).where(_users.c.username == username)).rowcount)

    @staticmethod
    def _refuse_last_admin(conn: Connection, username: str, *, keeps_admin: bool) -> None:
        if keeps_admin:
            return
        admins = {
            name
            for (name,) in conn.execute(
                select(_users.c.username).where(_users.c.role == "admin", _users.c.active)
            )
        }
        if admins == {username}:
            raise AccountError(
                f"{username} is the only active admin; make another admin first",
                code="last_admin",
                params={"name": username},
            )


def _user(row: Row[Any]) -> User:
    return User(
        row.username,
        row.role,
        row.active,
        row.session_key,
        None if row.counters is None else tuple(row.counters),
        None if row.services is None else tuple(row.services),
    )


def check_password(password: str) -> None:
    """Refuse (:class:`AccountError`) a new password shorter than :data:`MIN_PASSWORD_LENGTH`."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
            code="short_password",
            params={"min": MIN_PASSWORD_LENGTH},
        )


def token_digest(token: str) -> str:
    """The stored form of an API token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokens:
    """The ``api_tokens`` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def issue(self, name: str, scopes: tuple[TokenScope, ...]) -> str:
        """Create (or replace) the token of system ``name``; returns the token, shown once."""
        check_name(name, "system name")
        unknown = [s for s in scopes if s not in SCOPES]
        if not scopes or unknown:
            raise AccountError(f"scopes: choose from {', '.join(SCOPES)}", code="invalid_scopes")
        token = secrets.token_urlsafe(32)
        values = {"token_hash": token_digest(token), "scopes": sorted(set(scopes))}
        with self.store.transaction() as conn:
            conn.execute(delete(_tokens).where(_tokens.c.name == name))
            conn.execute(insert(_tokens).values(name=name, created_at=datetime.now(UTC), **values))
        return token

    def find(self, token: str) -> ApiToken | None:
        """The system a presented token belongs to, if any."""
        with self.store.db.connect() as conn:
            row = conn.execute(
                select(_tokens).where(_tokens.c.token_hash == token_digest(token))
            ).first()
        return None if row is None else ApiToken(row.name, tuple(row.scopes))

    def all(self) -> list[ApiToken]:
        """Every token's system and scopes (never the tokens), by name."""
        with self.store.db.connect() as conn:
            rows = conn.execute(select(_tokens).order_by(_tokens.c.name)).all()
        return [ApiToken(row.name, tuple(row.scopes)) for row in rows]

    def revoke(self, name: str) -> bool:
        """Delete system ``name``'s token; ``False`` if it had none."""
        with self.store.transaction() as conn:
            return bool(conn.execute(delete(_tokens).where(_tokens.c.name == name)).rowcount)
