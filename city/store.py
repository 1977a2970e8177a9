"""The city's database: every branch's history stored exactly once, its branches and users.

:class:`CityStore` is the one way into the city's PostgreSQL database (SQLAlchemy 2,
psycopg 3; SQLite is refused by the settings already). Its schema is
:mod:`city.tables`, created and upgraded by the Alembic migrations in
``city/migrations`` (their revision in a table of their own, :data:`VERSION_TABLE`).

What it keeps:

- **branches** with their accounts on the city's broker (:meth:`CityStore.add_branch`
  makes the password, keeps only its Mosquitto ``$7$`` hash and returns it once);
- **history**: :meth:`CityStore.store_batch` stores a branch's batch by the consumer's
  rule (``docs/city.md``, "Exactly once") in one transaction and says what to acknowledge;
- **users** with their roles per branch (argon2, as the hub's users: :mod:`hub.users`);
- the **catalogue** of services the city defines for the branches that take it.

Every method opens its own short transaction; the store is safe to share between the
consumer's thread and the web's. A database that is away raises SQLAlchemy's
:class:`~sqlalchemy.exc.OperationalError` (or another
:class:`~sqlalchemy.exc.DBAPIError`), which the consumer takes as "reconnect and resync".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args

from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from city import tables
from common.errors import PoradovnikError
from hub.store import alembic_config as hub_alembic_config
from hub.store import upgrade_to_head
from hub.users import (
    check_name,
    check_password,
    hasher,
    new_session_key,
    rehashed,
    verify_secret,
)
from sync_agent.broker_accounts import TOPIC_ID, hash_password, new_password
from sync_agent.city_protocol import Catalogue, CatalogueService, HistoryBatch

__all__ = [
    "HEAD_REVISION",
    "MAX_SEQ",
    "VERSION_TABLE",
    "Branch",
    "BranchEvent",
    "BranchRole",
    "CityError",
    "CityStore",
    "CityUser",
    "Lag",
    "Progress",
    "StoreResult",
    "alembic_config",
    "branch_username",
]

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"

VERSION_TABLE: Final = "alembic_version_city"
"""Where the city's migrations keep their revision."""

HEAD_REVISION: Final = "0002_city_sessions"
"""The newest migration: a database at it has exactly :data:`city.tables.metadata`."""

MAX_SEQ: Final = 2**63 - 1
"""The largest sequence a ``BIGINT`` holds; a batch claiming more is refused unread."""

_PG_MIGRATION_LOCK: Final = 0x63697479  # "city"
"""Advisory lock key: two city processes starting at once must not both migrate."""

BranchRole = Literal["viewer", "manager"]
"""What a city user may do at a branch: see it (dashboard, devices, statistics), or also
manage its catalogue."""

BRANCH_ROLES: Final = get_args(BranchRole)

_branches: Final = tables.metadata.tables["branches"]
_events: Final = tables.metadata.tables["branch_events"]
_progress: Final = tables.metadata.tables["branch_progress"]
_users: Final = tables.metadata.tables["city_users"]
_roles: Final = tables.metadata.tables["city_roles"]
_services: Final = tables.metadata.tables["catalogue_services"]
_catalogue: Final = tables.metadata.tables["catalogue_state"]


class CityError(PoradovnikError):
    """A branch, user or catalogue cannot be created or changed as asked; says why."""


def branch_username(site: str) -> str:
    """The default account of branch ``site`` on the city's broker: ``branch-<site>``."""
    return f"branch-{site}"


def alembic_config(url: str) -> Config:
    """The Alembic configuration of the city's migrations, in code (no ``alembic.ini``)."""
    return hub_alembic_config(url, MIGRATIONS_DIR)


@dataclass(frozen=True, slots=True)
class Branch:
    """An office of the city, as the city knows it."""

    site: str
    name: str
    address: str
    url: str | None
    """The branch's public portal (its my-ticket, booking and e-service pages)."""
    username: str
    """Its account on the city's broker."""
    catalogue: bool
    """Whether it takes the city's service catalogue."""
    created_at: datetime
    password_hash: str = field(repr=False, default="")
    """The broker account's Mosquitto ``$7$`` hash."""


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the city holds one branch's history."""

    site: str
    seq: int
    """The highest sequence stored with none missing before it (0: none yet)."""
    first_seq: int
    """The first sequence the city holds (0: none yet)."""
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What :meth:`CityStore.store_batch` did with a batch."""

    ack: int
    """The sequence to acknowledge: what the city now holds of the branch's history."""
    stored: int
    """How many of the batch's events were new (0 for a duplicate or a gap)."""
    gap: bool = False
    """The batch started after a hole the branch can still fill: nothing was stored."""


@dataclass(frozen=True, slots=True)
class BranchEvent:
    """One stored row of a branch's audit log."""

    site: str
    seq: int
    at: datetime
    action: str
    actor: str
    ticket_id: str | None
    counter_id: str | None
    service: str | None
    from_state: str | None
    to_state: str | None
    detail: Mapping[str, Any]
    number: str | None
    business_day: date | None
    priority: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Lag:
    """How late one branch's history reaches the city (``received_at - at``)."""

    site: str
    events: int
    """Rows measured."""
    mean_s: float
    max_s: float
    last_received_at: datetime | None


@dataclass(frozen=True, slots=True)
class CityUser:
    """A person who signs in to the city's admin pages."""

    username: str
    city_admin: bool
    """Sees and manages every branch, the catalogue and the users."""
    roles: Mapping[str, BranchRole] = field(default_factory=dict)
    """By site: what the user may do at each branch (a city admin may do all anyway)."""
    session_key: str = field(default="", repr=False)
    """What the user's sessions must carry to count: a new password, or a sign-out
    (:meth:`CityStore.end_sessions`), gives a new one and ends every session before."""

    def role_at(self, site: str) -> BranchRole | None:
        """What the user may do at ``site``: ``None`` for nothing."""
        return "manager" if self.city_admin else self.roles.get(site)


class CityStore:
    """The city's PostgreSQL database (see the module's docstring).

    ``url`` is a SQLAlchemy URL (``postgresql+psycopg://…``; ``postgresql://`` is taken
    as psycopg 3). Connections are checked before use, so after a failover the pool
    reconnects to whichever server the URL's hosts lead to.
    """

    def __init__(self, url: str, *, clock: Callable[[], datetime] | None = None) -> None:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() != "postgresql":
            raise CityError(f"the city's database must be PostgreSQL, not {parsed.drivername}")
        self.url = parsed.render_as_string(hide_password=False)
        self.clock = clock if clock is not None else lambda: datetime.now(UTC)
        self.db: Engine = create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=4,
            max_overflow=4,
            # A server that vanished (a failover, a cut) must fail the query in seconds,
            # not after TCP's retransmissions: the consumer then reconnects.
            connect_args={
                "connect_timeout": 5,
                "keepalives_idle": 10,
                "keepalives_interval": 3,
                "keepalives_count": 3,
                "tcp_user_timeout": 15_000,
            },
        )

    def __enter__(self) -> CityStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def shown_url(self) -> str:
        """The database's URL without its password, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        """Close every pooled connection."""
        self.db.dispose()

    def reconnect(self) -> None:
        """Drop every pooled connection: the next use connects afresh (after a failover)."""
        self.db.dispose()

    # -- schema ----------------------------------------------------------------------

    def upgrade(self) -> None:
        """Create the schema or bring it to :data:`HEAD_REVISION`; safe to repeat.

        Raises :class:`CityError` when the database cannot be reached, saying where.
        """
        try:
            with self.db.begin() as conn:
                upgrade_to_head(conn, alembic_config(self.url), _PG_MIGRATION_LOCK)
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise CityError(f"cannot open the city's database {self.shown_url}: {reason}") from None

    def revision(self) -> str | None:
        """The database's schema revision (``None`` before the first upgrade)."""
        with self.db.connect() as conn:
            if not conn.dialect.has_table(conn, VERSION_TABLE):
                return None
            return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()

    # -- branches --------------------------------------------------------------------

    def add_branch(
        self,
        site: str,
        *,
        name: str,
        address: str,
        url: str | None = None,
        catalogue: bool = False,
        username: str | None = None,
    ) -> tuple[Branch, str]:
        """Add branch ``site`` with a new broker account; the branch and its password.

        The password is returned only here (the database keeps its hash). Raises
        :class:`CityError` for a site id that cannot be a topic level, a text too long,
        or a site or user name taken.
        """
        if not TOPIC_ID.fullmatch(site) or len(site) > 63:
            raise CityError(f"site id {site!r}: use 1-63 letters, digits, '_', '.', ':', '-'")
        username = check_name(username or branch_username(site), "broker user name")
        _check_text(name, "name", 120, required=True)
        _check_text(address, "address", 240, required=True)
        if url is not None:
            _check_text(url, "url", 240, required=True)
            if not url.startswith(("https://", "http://")):
                raise CityError(f"url {url!r}: must start with https:// (or http://)")
            url = url.rstrip("/")
        password = new_password()
        row = {
            "site": site,
            "name": name,
            "address": address,
            "url": url,
            "username": username,
            "password_hash": hash_password(password),
            "catalogue": catalogue,
            "created_at": self.clock(),
        }
        try:
            with self.db.begin() as conn:
                conn.execute(insert(_branches).values(row))
        except IntegrityError:
            raise CityError(f"branch {site!r} or user name {username!r} exists already") from None
        return _branch(row), password

    def branches(self) -> list[Branch]:
        """Every branch, by site."""
        with self.db.connect() as conn:
            rows = conn.execute(select(_branches).order_by(_branches.c.site)).all()
        return [_branch(row) for row in rows]

    def branch(self, site: str) -> Branch | None:
        """One branch, or ``None``."""
        with self.db.connect() as conn:
            row = conn.execute(select(_branches).where(_branches.c.site == site)).first()
        return _branch(row) if row is not None else None

    def remove_branch(self, site: str) -> bool:
        """Remove a branch with its history, progress and roles; ``False`` if unknown."""
        with self.db.begin() as conn:
            return bool(conn.execute(delete(_branches).where(_branches.c.site == site)).rowcount)

    def set_catalogue_branch(self, site: str, *, takes: bool) -> bool:
        """Say whether ``site`` takes the city's catalogue; ``False`` if unknown."""
        with self.db.begin() as conn:
            changed = conn.execute(
                update(_branches).where(_branches.c.site == site).values(catalogue=takes)
            )
            return bool(changed.rowcount)

    # -- history ---------------------------------------------------------------------

    def progress(self) -> dict[str, Progress]:
        """How far the city holds each branch's history, for every branch (0: nothing)."""
        query = select(
            _branches.c.site, _progress.c.seq, _progress.c.first_seq, _progress.c.updated_at
        ).select_from(_branches.outerjoin(_progress, _progress.c.site == _branches.c.site))
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return {
            site: Progress(site, seq or 0, first or 0, updated)
            for site, seq, first, updated in rows
        }

    def store_batch(self, site: str, batch: HistoryBatch) -> StoreResult:
        """Store what is new in ``batch`` from branch ``site``, in one transaction.

        With ``p`` the sequence held so far: a batch ending at or below ``p`` is a
        duplicate (nothing stored); one starting above ``p + 1`` is a gap, unless it
        starts at the branch's ``first_available`` (the rows before are gone at the
        branch: pruned before it joined, or after a failover lost what the city had
        acknowledged), and nothing is stored. Otherwise its events above ``p`` are
        inserted (``INSERT … ON CONFLICT DO NOTHING``) and the progress moved to the
        batch's last, in the same transaction. The result says what to acknowledge:
        only what is committed.

        Raises :class:`CityError` for an unknown branch, a payload's site that is not
        ``site`` or values the database cannot hold (they are refused whole, unread);
        SQLAlchemy's errors when the database fails.
        """
        [result] = self.store_batches([(site, batch)])
        return result

    def store_batches(self, batches: Sequence[tuple[str, HistoryBatch]]) -> list[StoreResult]:
        """Store several branches' batches in order, by :meth:`store_batch`'s rule, at once.

        One transaction for all (the consumer's group commit: one commit for all that
        waited). The batches must have passed :func:`check_batch`. Raises as :meth:`store_batch`;
        then nothing of any of them is stored.
        """
        for site, batch in batches:
            check_batch(site, batch)
        now = self.clock()
        with self.db.begin() as conn:
            return [_store_in(conn, site, batch, now) for site, batch in batches]

    def events(
        self, start: date, end: date, *, sites: Iterable[str] | None = None
    ) -> list[BranchEvent]:
        """The stored events of business days ``start`` to ``end`` (inclusive).

        By site and sequence; of ``sites`` only, when given (for statistics by branch).
        """
        query = select(_events).where(
            _events.c.business_day >= start, _events.c.business_day <= end
        )
        if sites is not None:
            query = query.where(_events.c.site.in_(list(sites)))
        with self.db.connect() as conn:
            rows = conn.execute(query.order_by(_events.c.site, _events.c.seq)).all()
        return [BranchEvent(**row._mapping) for row in rows]

    def count_events(self, site: str) -> int:
        """How many events of ``site`` the city holds."""
        with self.db.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(_events).where(_events.c.site == site)
            ).scalar_one()

    def lag(self, since: datetime) -> dict[str, Lag]:
        """Per branch, how late its events received since ``since`` reached the city."""
        lag_s = func.extract("epoch", _events.c.received_at - _events.c.at)
        query = (
            select(
                _events.c.site,
                func.count(),
                func.avg(lag_s),
                func.max(lag_s),
                func.max(_events.c.received_at),
            )
            .where(_events.c.received_at >= since)
            .group_by(_events.c.site)
        )
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return {
            site: Lag(site, count, float(mean or 0), float(most or 0), last)
            for site, count, mean, most, last in rows
        }

    # -- users -----------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        password: str,
        *,
        city_admin: bool = False,
        roles: Mapping[str, BranchRole] | None = None,
    ) -> CityUser:
        """Create ``username`` or replace their password and roles (the roles given only).

        A new password ends every session the user signed in with before. Raises
        :class:`CityError` for a bad name, a short password, an unknown role or branch.
        """
        try:
            check_name(username)
            check_password(password)
        except PoradovnikError as exc:
            raise CityError(str(exc)) from None
        roles = dict(roles or {})
        for role in roles.values():
            if role not in BRANCH_ROLES:
                raise CityError(f"role {role!r}: use {' or '.join(BRANCH_ROLES)}")
        session_key = new_session_key()
        values = {
            "password_hash": hasher.hash(password),
            "city_admin": city_admin,
            "session_key": session_key,
        }
        try:
            with self.db.begin() as conn:
                upsert = pg_insert(_users).values(
                    username=username, created_at=self.clock(), **values
                )
                conn.execute(
                    upsert.on_conflict_do_update(index_elements=[_users.c.username], set_=values)
                )
                conn.execute(delete(_roles).where(_roles.c.username == username))
                if roles:
                    conn.execute(
                        insert(_roles),
                        [{"username": username, "site": s, "role": r} for s, r in roles.items()],
                    )
        except IntegrityError:
            unknown = sorted(set(roles) - {b.site for b in self.branches()})
            raise CityError(f"no branch {', '.join(unknown)}") from None
        return CityUser(username, city_admin, roles, session_key)

    def user(self, username: str) -> CityUser | None:
        """One user with their roles, or ``None``."""
        with self.db.connect() as conn:
            return _user(conn, username)

    def users(self) -> list[CityUser]:
        """Every user, by name."""
        with self.db.connect() as conn:
            names = conn.execute(select(_users.c.username).order_by(_users.c.username)).scalars()
            return [user for name in names.all() if (user := _user(conn, name)) is not None]

    def authenticate(self, username: str, password: str) -> CityUser | None:
        """The user if ``password`` is theirs, else ``None`` (as slow either way).

        A hash made with other argon2 parameters than today's is replaced.
        """
        with self.db.connect() as conn:
            stored = conn.execute(
                select(_users.c.password_hash).where(_users.c.username == username)
            ).scalar()
            if stored is None or not verify_secret(stored, password):
                return None
            if (fresh := rehashed(stored, password)) is not None:
                conn.execute(
                    update(_users).where(_users.c.username == username).values(password_hash=fresh)
                )
                conn.commit()
            return _user(conn, username)

    def end_sessions(self, username: str) -> None:
        """End every session of the user (on every browser): at sign-out."""
        with self.db.begin() as conn:
            conn.execute(
                update(_users)
                .where(_users.c.username == username)
                .values(session_key=new_session_key())
            )

    def remove_user(self, username: str) -> bool:
        """Delete a user and their roles; ``False`` if unknown."""
        with self.db.begin() as conn:
            return bool(conn.execute(delete(_users).where(_users.c.username == username)).rowcount)

    # -- catalogue -------------------------------------------------------------------

    def catalogue(self) -> Catalogue | None:
        """The city's catalogue as published, or ``None`` before it is first set."""
        with self.db.connect() as conn:
            state = conn.execute(select(_catalogue).where(_catalogue.c.id == 1)).first()
            if state is None:
                return None
            rows = conn.execute(select(_services).order_by(_services.c.position)).all()
        services = [
            CatalogueService(code=r.code, prefix=r.prefix, names=r.names, hours=r.hours)
            for r in rows
        ]
        return Catalogue(
            version=state.version,
            published_at=state.published_at or self.clock(),
            services=services,
        )

    def set_catalogue(self, services: Iterable[CatalogueService]) -> Catalogue:
        """Replace the catalogue's services and raise its version; the new catalogue.

        Raises :class:`CityError` for a code or prefix used twice or too many services.
        """
        services = list(services)
        try:
            catalogue = Catalogue(version=1, published_at=self.clock(), services=services)
        except ValueError as exc:
            raise CityError(f"the catalogue cannot be published: {exc}") from None
        for what in ("code", "prefix"):
            values = [getattr(s, what) for s in services]
            if len(set(values)) != len(values):
                raise CityError(f"the catalogue lists a service {what} twice")
        now = catalogue.published_at
        with self.db.begin() as conn:
            version = conn.execute(
                select(_catalogue.c.version).where(_catalogue.c.id == 1).with_for_update()
            ).scalar()
            version = (version or 0) + 1
            conn.execute(
                pg_insert(_catalogue)
                .values(id=1, version=version, published_at=now)
                .on_conflict_do_update(
                    index_elements=[_catalogue.c.id],
                    set_={"version": version, "published_at": now},
                )
            )
            conn.execute(delete(_services))
            if services:
                conn.execute(
                    insert(_services),
                    [
                        {
                            "code": s.code,
                            "prefix": s.prefix,
                            "names": dict(s.names),
                            "hours": s.hours,
                            "position": position,
                        }
                        for position, s in enumerate(services)
                    ],
                )
        return catalogue.model_copy(update={"version": version})


def _check_text(value: str, what: str, most: int, *, required: bool) -> None:
    if (required and not value.strip()) or len(value) > most or "\x00" in value:
        raise CityError(f"{what}: 1-{most} characters")


def check_batch(site: str, batch: HistoryBatch) -> None:
    """Refuse a batch the database could not hold, or one of another site, before any SQL."""
    if batch.site != site:
        raise CityError(f"a batch of site {batch.site!r} came on the topic of site {site!r}")
    if batch.last > MAX_SEQ or batch.first_available > MAX_SEQ:
        raise CityError(f"a batch of site {site!r} has sequences beyond {MAX_SEQ}")
    if batch.first_available > batch.first:
        raise CityError(
            f"a batch of site {site!r} starts at {batch.first}, below its own "
            f"first_available {batch.first_available}"
        )
    for event in batch.events:
        # PostgreSQL's text cannot hold NUL; JSON's \u0000 cannot be read back as text.
        texts = [v for v in event.model_dump(exclude={"detail"}).values() if isinstance(v, str)]
        if any("\x00" in t for t in texts) or "\\u0000" in json.dumps(event.detail):
            raise CityError(f"event {event.seq} of site {site!r} holds a NUL character")


def _locked_progress(conn: Connection, site: str) -> int:
    """The branch's stored sequence, its row locked until the transaction ends.

    Raises :class:`CityError` for an unknown branch.
    """
    known = conn.execute(
        select(_branches.c.site).where(_branches.c.site == site).with_for_update()
    ).first()
    if known is None:
        raise CityError(f"no branch {site!r}")
    held = conn.execute(select(_progress.c.seq).where(_progress.c.site == site)).scalar()
    return held or 0


def _branch(row: Any) -> Branch:
    """A :class:`Branch` from a row of ``branches`` (or the values inserted into it)."""
    values = row if isinstance(row, Mapping) else row._mapping
    return Branch(**{name: values[name] for name in Branch.__slots__})


def _user(conn: Connection, username: str) -> CityUser | None:
    row = conn.execute(select(_users).where(_users.c.username == username)).first()
    if row is None:
        return None
    roles = conn.execute(
        select(_roles.c.site, _roles.c.role).where(_roles.c.username == username)
    ).all()
    return CityUser(
        row.username, row.city_admin, {site: role for site, role in roles}, row.session_key
    )


def _store_in(conn: Connection, site: str, batch: HistoryBatch, now: datetime) -> StoreResult:
    """:meth:`CityStore.store_batch`'s rule for one batch, inside the caller's transaction."""
    held = _locked_progress(conn, site)
    if batch.last <= held:
        return StoreResult(ack=held, stored=0)
    if batch.first > held + 1 and batch.first != batch.first_available:
        return StoreResult(ack=held, stored=0, gap=True)
    rows = [
        {"site": site, "received_at": now, **event.model_dump()}
        for event in batch.events
        if event.seq > held
    ]
    inserted = conn.execute(
        pg_insert(_events).values(rows).on_conflict_do_nothing().returning(_events.c.seq)
    ).all()
    upsert = pg_insert(_progress).values(
        site=site, seq=batch.last, first_seq=rows[0]["seq"], updated_at=now
    )
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[_progress.c.site],
            set_={"seq": batch.last, "updated_at": now},
        )
    )
    return StoreResult(ack=batch.last, stored=len(inserted))
