"""Citizens' notices: "your turn is near" and "go to counter X", by push, e-mail or SMS.

On the my-ticket page a citizen leaves a contact per channel (a browser's push
subscription, an e-mail address, a phone number): :meth:`Notices.subscribe`. The
:class:`Notices` listens to the queue; its listener only notes which services
changed and wakes the notifier's thread, so the queue's writer never waits for it.
That thread decides which notices are due (people ahead at most ``[notify] ahead``,
or the call), puts them in ``notifications`` (one row per ticket, kind and channel:
a notice is never made twice, across restarts too), and hands what is due to the
sending process (:mod:`hub.notify_send`: the channels' CPU is not the hub's), then
records what came of each. It looks at the queue at most every :data:`ROUND_S`, at the
changes made meanwhile together: it seldom takes the queue's lock, which presses
wait for, and holds the database's one writer for a statement at a time.

A notice is marked ``sending`` (committed) before it goes out; one found so marked
after a restart was perhaps delivered, so it is recorded ``failed`` rather than sent
again. Should the sending process die mid-batch, what it had begun is recorded so
too, and what it had not begun goes back to ``pending`` as if never claimed. A round
that fails (a write refused) leaves what came of its batch to the next round's write,
and what it had claimed but not yet handed over goes back to ``pending``. A
failure that may pass (a 5xx, a refused SMTP connection) is tried again after
``[notify] backoff_s``; a notice whose cause has passed (the "few ahead"
notice of a ticket already called, a call already answered, anything older than
``stale_min``) is ``dropped``. Every notice ends ``sent``, ``failed`` or ``dropped``.

Contacts are erased ``[notify] grace_min`` after their ticket ends (and a day after
they were given, whatever happens).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02
from sqlalchemy import Dialect, and_, bindparam, delete, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from common.i18n import LANGUAGES, Language
from common.mail_settings import NotifySettings
from hub.engine import Engine, Rivals, front
from hub.mail import Mailer
from hub.model import Change, Counter, Ticket, TicketState
from hub.notify_send import Notice, Sender, Setup
from hub.notify_texts import EMAIL_FOOTER, TEXTS
from hub.service import QueueService
from hub.store import Prepared, metadata

__all__ = [
    "CHANNELS",
    "VAPID_FILE",
    "Notices",
    "application_server_key",
    "load_vapid",
]

log = logging.getLogger(__name__)

Channel = Literal["push", "email", "sms"]
CHANNELS: Final[tuple[Channel, ...]] = ("push", "email", "sms")
"""Every way a notice goes."""

STATES: Final = ("pending", "sending", "sent", "failed", "dropped")
"""Where a notice is; the last three are final."""

VAPID_FILE: Final = "vapid-private.pem"
"""The hub's VAPID key in ``[data] dir``: made once, readable by the hub's user only."""

CONTACT_MAX_AGE: Final = timedelta(days=1)
"""A contact is erased this long after it was given, whether its ticket ended or not."""

SWEEP_S: Final = 60.0
"""How often expired contacts are erased."""

POLL_S: Final = 0.5
"""How often the thread looks for notices due again (retries) without being woken."""

ROUND_S: Final = 0.1
"""The shortest time between two looks at the queue: the changes of a busy moment are
looked at together, so the thread takes the queue's lock (which every press waits
for) a few times a second, not at every change."""

BATCH: Final = 64
"""Notices claimed and handed to the sending process at once, at most: the hub's part
of a batch (the claim, the contacts, the record) is shared by many notices."""

MAX_CONTACT: Final = 2048
"""The longest contact kept (a push subscription's JSON)."""

_EMAIL_RE: Final = re.compile(r"[^@\s<>,;:\"()\[\]\\]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_PHONE_RE: Final = re.compile(r"\+?[0-9]{6,15}")
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]+={0,2}")

_subscriptions: Final = metadata.tables["notify_subscriptions"]
_notifications: Final = metadata.tables["notifications"]

_KEY: Final = ("ticket", "kind", "channel")
"""A notice's key columns."""

_INSERT: Final = tuple(column.name for column in _notifications.columns)
"""The columns of a new notice, in the order :class:`Statements` takes them."""


class Claim(NamedTuple):
    """A notice claimed for sending: what it is sent with, and its attempts before."""

    ticket: str
    kind: str
    channel: str
    ahead: int | None
    counter: str | None
    event_at: datetime
    attempts: int


_CLAIM: Final = tuple(_notifications.c[name] for name in Claim._fields)
"""The columns of a due notice that its :class:`Claim` holds."""

Outcome = tuple[tuple[str, str, str], str, str | None, int]
"""What became of one notice: its key (ticket, kind, channel), its state, the reason,
and its attempts."""


class Statements:
    """The notices' writes, compiled once for ``dialect``.

    Each batch's transaction runs them straight on the driver
    (:meth:`hub.store.Store.prepared_transaction`), so it holds the database's writer,
    which every press waits for, as briefly as the queue's own writes do.
    """

    def __init__(self, dialect: Dialect) -> None:
        n, s = _notifications, _subscriptions
        key = [n.c[name] == bindparam(f"k_{name}") for name in _KEY]
        recorded = {"v_state": "state", "v_reason": "reason", "v_attempts": "attempts"}
        self.retry = _update_by_key(n, key, {**recorded, "v_at": "next_at"}, dialect)
        """A notice back to ``pending``, due at ``v_at``."""
        self.done = _update_by_key(n, key, {**recorded, "v_at": "done_at"}, dialect)
        """A notice ended (``sent``, ``failed`` or ``dropped``) at ``v_at``."""
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        self.insert = Prepared(
            insert(n).values({name: bindparam(name) for name in _INSERT}).on_conflict_do_nothing(),
            _INSERT,
            dialect,
        )
        """A new notice, unless it was made before."""
        self.claim = Prepared(
            update(n)
            .where(*key, n.c.state == literal_column("'pending'"))
            .values(state=literal_column("'sending'"), attempts=n.c.attempts + literal_column("1")),
            [f"k_{name}" for name in _KEY],
            dialect,
        )
        """A pending notice marked ``sending`` (one row: it changes 1 row, or 0)."""
        self.end = Prepared(
            update(s)
            .where(s.c.ticket == bindparam("k_ticket"), s.c.ended_at.is_(None))
            .values(ended_at=bindparam("v_at")),
            ["v_at", "k_ticket"],
            dialect,
        )
        """The start of an ended ticket's contacts' grace."""


def _update_by_key(
    table: Any, key: list[Any], columns: dict[str, str], dialect: Dialect
) -> Prepared:
    """``UPDATE table`` of the row at ``key``: each of ``columns`` set to its parameter.

    ``columns`` maps each parameter's name to its column; the parameters come in its
    order, then the key's.
    """
    values: list[tuple[Any, Any]] = [
        (table.c[column], bindparam(name)) for name, column in columns.items()
    ]
    statement = update(table).where(*key).ordered_values(*values)
    return Prepared(statement, [*columns, *(f"k_{name}" for name in _KEY)], dialect)


# -- VAPID ----------------------------------------------------------------------


def load_vapid(data_dir: Path) -> Vapid02:
    """The hub's VAPID key from ``data_dir``, made (owner-only, mode 0600) on first use."""
    path = data_dir / VAPID_FILE
    if not path.exists():
        key = Vapid02()
        key.generate_keys()
        data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(key.private_pem())
            log.info("made the hub's VAPID key for web push in %s", path)
    return Vapid02.from_file(str(path))


def application_server_key(vapid: Vapid02) -> str:
    """The VAPID public key as browsers take it (``applicationServerKey``, base64url)."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- contacts -------------------------------------------------------------------


def check_contact(channel: str, contact: str, settings: NotifySettings) -> str:
    """``contact`` for ``channel``, normalised; a ValueError says what is wrong with it."""
    if channel == "email":
        address = contact.strip()
        if len(address) > 254 or not _EMAIL_RE.fullmatch(address):
            raise ValueError("not an e-mail address")
        return address
    if channel == "sms":
        phone = re.sub(r"[\s./()-]", "", contact)
        if not _PHONE_RE.fullmatch(phone):
            raise ValueError("not a phone number")
        return phone
    if channel == "push":
        return _check_push(contact, settings)
    raise ValueError("no such channel")


def _check_push(contact: str, settings: NotifySettings) -> str:
    if len(contact) > MAX_CONTACT:
        raise ValueError("the push subscription is too long")
    try:
        info = json.loads(contact)
        endpoint, keys = info["endpoint"], info["keys"]
        p256dh, auth = keys["p256dh"], keys["auth"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("not a push subscription") from None
    if not all(isinstance(v, str) for v in (endpoint, p256dh, auth)):
        raise ValueError("not a push subscription")
    if not (_B64URL_RE.fullmatch(p256dh) and _B64URL_RE.fullmatch(auth)):
        raise ValueError("the push subscription's keys are not base64url")
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    allowed = parts.scheme == "https" or (parts.scheme == "http" and settings.push_allow_http)
    known = any(host == h or host.endswith("." + h) for h in settings.push_hosts)
    if not (allowed and known) or parts.username or parts.password:
        raise ValueError("the push service is not one the hub posts to")
    return json.dumps({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}})


class Notices:
    """Sends citizens' notices from the durable queue in ``notifications``.

    ``mailer`` sends e-mail (``None`` or off: no e-mail channel), ``vapid`` signs web
    pushes (``None``: no push channel); SMS goes while ``[notify] sms_url`` is set.
    ``public_url`` makes the my-ticket link in e-mails; ``office_name`` names the office.
    Call :meth:`start`, and :meth:`stop` at the end.
    """

    def __init__(
        self,
        queue: QueueService,
        settings: NotifySettings,
        *,
        mailer: Mailer | None = None,
        vapid: Vapid02 | None = None,
        public_url: str | None = None,
        office_name: Callable[[], str] = lambda: "",
    ) -> None:
        self.queue = queue
        self.store = queue.store
        self.settings = settings
        self.mailer = mailer if mailer is not None and mailer.enabled else None
        self.vapid = vapid
        self.public_url = public_url.rstrip("/") if public_url else None
        self.office_name = office_name
        self._mutex = threading.Lock()
        self._touched: dict[str, datetime] = {}
        """Services changed since the thread last looked, with the first change's time."""
        self._fresh: dict[str, datetime] = {}
        """Tickets with a new contact (and when it came), to look at whatever changed."""
        self._open: dict[str, frozenset[str]] = {}
        """Ticket → channels with a contact, of tickets not yet ended."""
        self._calls: dict[str, tuple[datetime, str | None]] = {}
        """Watched tickets called since the thread last looked: when, and at which counter
        (noted as they happen: a visit may end before the thread looks)."""
        self._ends: set[str] = set()
        """Watched tickets that ended since the thread last looked."""
        self._made: dict[str, set[tuple[str, str]]] = {}
        """Ticket → (kind, channel) of the notices made already, of open tickets."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poradovnik-notify", daemon=True)
        setup = Setup(
            settings,
            self.mailer.settings if self.mailer is not None else None,
            vapid.private_pem() if vapid is not None else None,
        )
        self.sender = Sender(setup, self._stop)
        """The sending process, which the notices' thread hands each batch."""
        self._next_sweep = 0.0
        self._sql: Statements | None = None
        self._unrecorded: list[Outcome] = []
        """What came of the notices the last batch claimed, until it is written: a round
        that fails leaves it to the next. Until the hand-over to the sending process it
        says "untried" (back to ``pending``); a round that fails during the hand-over
        leaves those notices ``sending`` (perhaps delivered)."""

    @property
    def channels(self) -> tuple[Channel, ...]:
        """The channels this hub can send through."""
        on = {"push": self.vapid is not None, "email": self.mailer is not None}
        on["sms"] = self.settings.sms_url is not None
        return tuple(channel for channel in CHANNELS if on[channel])

    # -- life -------------------------------------------------------------------------

    def start(self) -> Notices:
        """Recover from the last run, listen to the queue and start sending."""
        now = self.queue.clock()
        with self.store.transaction() as conn:
            interrupted = conn.execute(
                update(_notifications)
                .where(_notifications.c.state == "sending")
                .values(state="failed", done_at=now, reason="interrupted: perhaps delivered")
            ).rowcount
        if interrupted:
            log.warning(
                "%d notice(s) were being sent when the hub stopped: not sent again", interrupted
            )
        with self.store.db.connect() as conn:
            for ticket, channel in conn.execute(
                select(_subscriptions.c.ticket, _subscriptions.c.channel).where(
                    _subscriptions.c.ended_at.is_(None)
                )
            ):
                self._open[ticket] = self._open.get(ticket, frozenset()) | {channel}
            n = _notifications
            tickets = sorted(self._open)
            for at in range(0, len(tickets), BATCH):
                chunk = tickets[at : at + BATCH]
                keys = select(n.c.ticket, n.c.kind, n.c.channel).where(n.c.ticket.in_(chunk))
                for t, kind, channel in conn.execute(keys):
                    self._made.setdefault(t, set()).add((kind, channel))
        self._fresh = dict.fromkeys(self._open, now)
        self.queue.subscribe(self.changed)
        self._thread.start()
        self._wake.set()
        return self

    def stop(self) -> None:
        """Stop after the round under way (what waits stays in the queue for next time)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.sender.silence_s)
        self.sender.close()

    # -- the queue's listener (under the queue's lock: cheap) -------------------------

    def changed(self, change: Change) -> None:
        """Note the services ``change`` touched and the calls, and wake the thread."""
        if not self._open:
            return
        now = self.queue.clock()
        with self._mutex:
            for ticket in change.tickets:
                self._touched.setdefault(ticket.service, now)
                if ticket.id not in self._open:
                    continue
                if ticket.state is TicketState.CALLED:
                    self._calls.setdefault(ticket.id, (now, ticket.counter))
                elif ticket.state.terminal:
                    self._ends.add(ticket.id)
            if change.day is not None or not change.tickets:
                self._touched.setdefault("*", now)
        self._wake.set()

    # -- contacts ----------------------------------------------------------------------

    def subscribe(self, ticket_id: str, channel: str, contact: str, lang: str) -> None:
        """Keep ``contact`` to tell ticket ``ticket_id``'s holder through ``channel``.

        Raises ValueError for a contact that is not one, a channel this hub lacks, or a
        ticket that is no longer live. A second contact on a channel replaces the first.
        """
        if channel not in self.channels:
            raise ValueError("this channel is off")
        contact = check_contact(channel, contact, self.settings)
        ticket = self.queue.live_ticket(ticket_id)
        if ticket is None:
            raise ValueError("the ticket is no longer live")
        language = lang if lang in LANGUAGES else ticket.lang
        now = self.queue.clock()
        with self.store.transaction() as conn:
            key = and_(_subscriptions.c.ticket == ticket_id, _subscriptions.c.channel == channel)
            conn.execute(delete(_subscriptions).where(key))
            conn.execute(
                _subscriptions.insert().values(
                    ticket=ticket_id,
                    channel=channel,
                    contact=contact,
                    lang=language,
                    created_at=now,
                )
            )
        with self._mutex:
            self._open[ticket_id] = self._open.get(ticket_id, frozenset()) | {channel}
            self._fresh.setdefault(ticket_id, now)
        self._wake.set()

    def subscribed(self, ticket_id: str) -> set[str]:
        """The channels ticket ``ticket_id``'s holder left a contact for."""
        with self.store.db.connect() as conn:
            return set(
                conn.execute(
                    select(_subscriptions.c.channel).where(_subscriptions.c.ticket == ticket_id)
                ).scalars()
            )

    def forget(self, ticket_id: str) -> int:
        """Erase every contact of ticket ``ticket_id`` now (its holder withdrew); how many."""
        with self.store.transaction() as conn:
            erased = conn.execute(
                delete(_subscriptions).where(_subscriptions.c.ticket == ticket_id)
            ).rowcount
        with self._mutex:
            self._open.pop(ticket_id, None)
        return int(erased)

    def sweep(self) -> int:
        """Erase the contacts whose ticket ended ``grace_min`` ago (or given a day ago)."""
        now = self.queue.clock()
        grace = timedelta(minutes=self.settings.grace_min)
        with self.store.transaction() as conn:
            erased = conn.execute(
                delete(_subscriptions).where(
                    or_(
                        _subscriptions.c.ended_at < now - grace,
                        _subscriptions.c.created_at < now - CONTACT_MAX_AGE,
                    )
                )
            ).rowcount
        if erased:
            log.info("erased %d contact(s) of tickets that ended", erased)
        return int(erased)

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL_S)
            self._wake.clear()
            if self._stop.is_set():
                break
            started = time.monotonic()
            try:
                self._round()
            except Exception:
                log.exception("notices: a round failed; tried again shortly")
                # What it had taken of the queue's changes is gone with it: the next
                # round looks at every watched ticket (what was written is not made again).
                with self._mutex:
                    self._touched.setdefault("*", self.queue.clock())
                self._stop.wait(POLL_S)
            self._stop.wait(ROUND_S - (time.monotonic() - started))

    def _round(self) -> None:
        """Make the notices now due, then send what waits until none is due.

        Each batch's writes are one transaction on the database's one writer, which the
        queue's writes wait for: the outcomes of the batch before, the notices made
        since and the contacts of tickets that ended, and the claim of the next batch.
        What a failed round could not record waits in :attr:`_unrecorded` for the next.
        """
        made, ended = self._make_due()
        looked = time.monotonic()
        while True:
            claim = not self._stop.is_set()
            claimed = self._write(made, ended, self._unrecorded, claim=claim)
            # Should the round fail before the sending process has them, they go back.
            self._unrecorded = [
                ((c.ticket, c.kind, c.channel), "untried", "not tried: a round failed", c.attempts)
                for c in claimed
            ]
            if not claimed:
                break
            self._unrecorded, gone = self._outcomes(claimed, self.queue.clock())
            for ticket_id, channel in gone:
                self._drop_contact(ticket_id, channel)
            made, ended = [], []
            if time.monotonic() - looked >= ROUND_S:
                made, ended = self._make_due()
                looked = time.monotonic()
        if self.queue.clock().timestamp() >= self._next_sweep:
            self._next_sweep = self.queue.clock().timestamp() + SWEEP_S
            self.sweep()

    def _make_due(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The ``notifications`` rows the queue's changes made due, and the tickets ended."""
        with self._mutex:
            touched, self._touched = self._touched, {}
            fresh, self._fresh = self._fresh, {}
            calls, self._calls = self._calls, {}
            ends, self._ends = self._ends, set()
            watched = dict(self._open)
        if not (touched or fresh or calls or ends) or not watched:
            return [], []
        every = "*" in touched
        earliest = min(touched.values(), default=self.queue.clock())
        # The tickets a change concerns: called, ended, newly watched, and (below) those
        # waiting in the services touched; all of them after a new day or a reload.
        named = watched.keys() if every else calls.keys() | fresh.keys() | ends

        def look(engine: Engine) -> tuple[dict[str, Ticket], dict[str, Counter], Rivals]:
            # Copies only, under the queue's lock (its tickets and counters are immutable):
            # the counting below runs outside it, while presses go on.
            tickets = {t: engine.tickets[t] for t in named if t in engine.tickets}
            services = {*touched, *(tickets[t].service for t in fresh if t in tickets)}
            return tickets, dict(engine.counters), engine.rivals(None if every else services)

        tickets, counters, rivals = self.queue.read(look)
        # The first few of each queue: the tickets whose turn is near.
        near = front(rivals, self.settings.ahead_for)
        tickets.update((t, near[t][0]) for t in near.keys() & watched.keys())
        rows: list[dict[str, Any]] = []
        ended: list[str] = []
        for ticket_id in named | tickets.keys():
            channels = watched.get(ticket_id)
            if channels is None:
                continue
            ticket = tickets.get(ticket_id)
            relevant = ticket is not None and (
                every or ticket_id in fresh or ticket.service in touched
            )
            causes = [touched.get(ticket.service), fresh.get(ticket_id)] if ticket else []
            at = min((t for t in causes if t is not None), default=earliest)
            call = calls.get(ticket_id)
            if call is None and relevant and ticket and ticket.state is TicketState.CALLED:
                call = (at, ticket.counter)  # called before its holder subscribed
            if call is not None:
                rows += self._call_rows(counters, ticket_id, channels, *call)
            if ticket is None or ticket.state.terminal:
                ended.append(ticket_id)
                continue
            if relevant and ticket_id in near:
                made = self._made.get(ticket_id, set())
                due = [c for c in channels if ("ahead", c) not in made]
                rows += _rows(ticket_id, "ahead", due, at, ahead=near[ticket_id][1])
        return rows, ended

    def _call_rows(
        self,
        counters: dict[str, Counter],
        ticket_id: str,
        channels: Iterable[str],
        at: datetime,
        counter_id: str | None,
    ) -> list[dict[str, Any]]:
        """The "called" notices of a call at ``at`` (and a "few ahead" one, dropped: late)."""
        made = self._made.get(ticket_id, set())
        late = [c for c in channels if ("ahead", c) not in made]
        due = [c for c in channels if ("called", c) not in made]
        counter = counters.get(counter_id) if counter_id else None
        name = counter.name if counter else counter_id
        return [
            *_rows(ticket_id, "ahead", late, at, state="dropped"),
            *_rows(ticket_id, "called", due, at, counter=name),
        ]

    def _write(
        self,
        made: list[dict[str, Any]],
        ended: Sequence[str],
        outcomes: Sequence[Outcome],
        *,
        claim: bool,
    ) -> list[Claim]:
        """Write a batch's changes in one transaction; the notices claimed (``claim``).

        The ``outcomes`` of the batch before, the ``made`` notices, the start of the
        ``ended`` tickets' grace, and the claim of up to :data:`BATCH` due notices. Only
        this thread claims and records notices, so the due ones are read before the
        transaction, whose statements run straight on the driver (:class:`Statements`).
        """
        now = self.queue.clock()
        n = _notifications
        due: list[Claim] = []
        if claim:
            with self.store.db.connect() as conn:
                due = [
                    Claim(*row)
                    for row in conn.execute(
                        select(*_CLAIM)
                        .where(n.c.state == "pending", n.c.next_at <= now)
                        .order_by(n.c.next_at)
                        .limit(BATCH)
                    )
                ]
            # The notices just made are due at once: claimed with those read, in the batch.
            fresh = (row for row in made if row["state"] == "pending")
            due += [Claim(*(row[name] for name in Claim._fields)) for row in fresh]
            del due[BATCH:]
        retried, done = _recorded(outcomes, now, self.settings.backoff_s)
        if not (made or ended or retried or done or due):
            return []
        sql = self._statements()
        with self.store.prepared_transaction() as cursor:
            sql.retry.run(cursor, retried)
            sql.done.run(cursor, done)
            sql.insert.run(cursor, [tuple(row[name] for name in _INSERT) for row in made])
            sql.end.run(cursor, [(now, ticket_id) for ticket_id in ended])
            claimed = [c for c in due if sql.claim.run(cursor, [(c.ticket, c.kind, c.channel)])]
        for row in made:
            self._made.setdefault(row["ticket"], set()).add((row["kind"], row["channel"]))
        if ended:
            with self._mutex:
                for ticket_id in ended:
                    self._open.pop(ticket_id, None)
            for ticket_id in ended:
                self._made.pop(ticket_id, None)
        return claimed

    def _statements(self) -> Statements:
        """The notices' writes, compiled for the store's database at the first batch."""
        if self._sql is None:
            self._sql = Statements(self.store.db.dialect)
        return self._sql

    def _outcomes(
        self, claimed: Sequence[Claim], now: datetime
    ) -> tuple[list[Outcome], list[tuple[str, str]]]:
        """Send the ``claimed`` notices (those still of use); what came of each, and more.

        Each outcome is (key, state, reason, attempts); the second list holds the contacts
        that are no more (ticket, channel). A notice the sending process never began goes
        back to ``pending`` as it was (its attempt not counted), due at once. From the
        hand-over on, a failure of the round leaves the notices handed over ``sending``
        (perhaps delivered: not sent again).
        """
        s = _subscriptions
        tickets = sorted({row.ticket for row in claimed})
        with self.store.db.connect() as conn:
            contacts = {
                (row.ticket, row.channel): (row.contact, row.lang)
                for row in conn.execute(
                    select(s.c.ticket, s.c.channel, s.c.contact, s.c.lang).where(
                        s.c.ticket.in_(tickets)
                    )
                )
            }
        stale_at = now - timedelta(minutes=self.settings.stale_min)
        states = self.queue.read(
            lambda engine: {
                t: (engine.tickets[t].state, engine.tickets[t].service, engine.tickets[t].number)
                for t in tickets
                if t in engine.tickets
            }
        )
        results: list[Outcome] = []
        sending: list[Notice] = []
        for row in claimed:
            key = (row.ticket, row.kind, row.channel)
            attempts = row.attempts + 1
            state = states.get(row.ticket)
            contact = contacts.get((row.ticket, row.channel))
            wanted = TicketState.WAITING if row.kind == "ahead" else TicketState.CALLED
            if state is None or state[0] is not wanted:
                results.append((key, "dropped", "its cause has passed", attempts))
            elif row.event_at < stale_at:
                results.append((key, "dropped", "too late", attempts))
            elif contact is None:
                results.append((key, "dropped", "the contact was erased", attempts))
            else:
                sending.append(self._notice(row, contact, state[1], state[2], attempts))
        if not sending:
            return results, []
        self._unrecorded = list(results)
        outcomes = self.sender.send(sending)
        gone: list[tuple[str, str]] = []
        for notice in sending:
            key, attempts, outcome = notice.key, notice.attempts, outcomes[notice.key]
            if outcome.sent:
                results.append((key, "sent", None, attempts))
            elif not outcome.begun:
                results.append((key, "untried", outcome.reason, attempts - 1))
            else:
                if outcome.trace:
                    log.error("notice %s/%s by %s could not be sent:\n%s", *key, outcome.trace)
                retry = outcome.retry and attempts <= len(self.settings.backoff_s)
                results.append((key, "pending" if retry else "failed", outcome.reason, attempts))
                if outcome.gone:
                    gone.append((key[0], key[2]))
        return results, gone

    def _drop_contact(self, ticket_id: str, channel: str) -> None:
        """Erase a contact that is no more (the push service says the browser dropped it)."""
        s = _subscriptions
        with self.store.transaction() as conn:
            conn.execute(delete(s).where(s.c.ticket == ticket_id, s.c.channel == channel))
        with self._mutex:
            channels = self._open.get(ticket_id)
            if channels is not None:
                self._open[ticket_id] = channels - {channel}

    def _notice(
        self, row: Any, contact: tuple[str, str], service: str, number: str, attempts: int
    ) -> Notice:
        """What ``row``'s notice says, in its holder's language."""
        address, lang_code = contact
        lang: Language = next((code for code in LANGUAGES if code == lang_code), "en")
        known = self.queue.service(service)
        values = {
            "number": number,
            "ahead": row.ahead if row.ahead is not None else "",
            "counter": row.counter or "",
            "service": known.name(lang) if known else service,
            "office": self.office_name(),
        }
        subject, body = (text.format(**values) for text in TEXTS[lang][row.kind])
        url = f"{self.public_url}/t/{row.ticket}" if self.public_url else None
        if row.channel == "email":
            footer = EMAIL_FOOTER[lang].format(
                url=url or number, office=values["office"], grace_min=self.settings.grace_min
            )
            body = f"{body}\n\n{footer}"
        return Notice(
            row.ticket, number, row.kind, row.channel, attempts, address, subject, body, url
        )


def _recorded(
    outcomes: Iterable[Outcome], now: datetime, backoff_s: Sequence[float]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What became of each notice: :attr:`Statements.retry`'s and ``done``'s parameters.

    ``untried``: back to ``pending``, due now (the sending process never began it); a
    notice to try again is due after its backoff.
    """
    retried: list[tuple[Any, ...]] = []
    done: list[tuple[Any, ...]] = []
    for key, state, reason, attempts in outcomes:
        if state == "untried":
            retried.append(_record("pending", reason, attempts, now, key))
        elif state == "pending":
            pause = backoff_s[attempts - 1]
            at = now + timedelta(seconds=pause)
            retried.append(_record(state, reason, attempts, at, key))
            log.warning("notice %s/%s by %s not sent, tried again in %g s: %s", *key, pause, reason)
        else:
            done.append(_record(state, reason, attempts, now, key))
            if state == "failed":
                log.error("notice %s/%s by %s given up: %s", *key, reason)
    return retried, done


def _record(
    state: str, reason: str | None, attempts: int, at: datetime, key: tuple[str, str, str]
) -> tuple[Any, ...]:
    """One notice's record: its state, reason, attempts and time, then its key."""
    return (state, reason, attempts, at, *key)


def _rows(
    ticket: str,
    kind: str,
    channels: Iterable[str],
    at: datetime,
    *,
    ahead: int | None = None,
    counter: str | None = None,
    state: str = "pending",
) -> list[dict[str, Any]]:
    """The ``notifications`` rows of one notice, one per channel (``dropped``: made late)."""
    return [
        {
            "ticket": ticket,
            "kind": kind,
            "channel": channel,
            "state": state,
            "ahead": ahead,
            "counter": counter,
            "event_at": at,
            "next_at": at,
            "attempts": 0,
            "done_at": None if state == "pending" else at,
            "reason": None if state == "pending" else "its cause passed before it was made",
        }
        for channel in sorted(channels)
    ]
