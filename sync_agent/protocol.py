"""Protocol v1: the MQTT topic tree and every payload, as schemas.

Everything the hub and the devices say to each other is defined here, once:
:class:`Topics` builds and parses topic names, and each payload is a pydantic
model. ``docs/protocol.md`` describes the same protocol for people.

Every payload is a JSON object with ``"v": 1``. Inbound payloads are checked
with :func:`decode`, which refuses (with :class:`ProtocolError`, never another
exception) anything oversized, nested too deep, not JSON, of another version, or
not matching the schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from common.i18n import Language
from common.identity import HUB_DEVICE_ID
from common.jsonbounds import too_deep

VERSION = 1
"""The protocol version in every topic (``poradovnik/v1/…``) and payload (``"v": 1``)."""

ROOT = f"poradovnik/v{VERSION}"
"""Where every topic of protocol v1 starts; a site's topics follow as ``ROOT/<site>/…``."""

MAX_PAYLOAD_BYTES = 16 * 1024
"""Inbound payloads larger than this are refused unread."""

CALL_SLOTS = 4
"""How many of each counter's latest calls stay retained, each on a slot of its own
(``counter/<id>/call/<slot>``, the slots taken in turn): a display that was away, or
that starts, learns every one of them, not only the last (two calls of one counter
while a display reconnects after a broker restart are not rare)."""

CALL_LIFETIME_S = 12 * 3600
"""How long a call message lives on the broker, counted from the call.

The hub publishes every ``Call`` (on ``calls`` and retained on ``counter/<id>/call``)
with the MQTT v5 message expiry set to this minus the call's age on the hub's clock.
The broker counts the expiry down while it holds the message, so a receiver learns a
call's age from the expiry left, ``CALL_LIFETIME_S - expiry``, without trusting its
own clock (a Pi has no real-time clock). A call older than this is gone."""

MAX_DEPTH = 16
"""Inbound payloads whose objects and arrays nest deeper than this are refused unparsed.

The deepest payload of protocol v1 nests 3 levels (a health's parts); without a bound,
a few kilobytes of brackets make the JSON parser recurse until it fails."""

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
"""Identifiers that travel in topics or as message ids: no ``/``, ``+``, ``#`` or spaces."""

Lang = Language
"""A citizen's language (:data:`common.i18n.LANGUAGES`)."""

CounterAction = Literal[
    "next", "recall", "start", "done", "no_show", "transfer", "park", "pause", "resume"
]
"""What a clerk can do at a counter."""

COUNTER_ACTIONS: tuple[str, ...] = get_args(CounterAction)

PriorityReason = Literal["disability", "pregnancy", "age", "with_child", "other"]
"""Why a ticket goes first (``hub.model.Priority``); a kiosk offers all but ``other``."""

PRIORITY_REASONS: tuple[str, ...] = get_args(PriorityReason)

PartState = Literal[
    "ok", "paper_near_end", "paper_out", "cover_open", "offline", "unknown", "error"
]


class ProtocolError(ValueError):
    """An inbound payload that cannot be used, with a stable ``code`` and a reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Message(BaseModel):
    """Base of every payload: strict, immutable, versioned."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    v: Literal[1] = 1
    """Protocol version."""

    def encode(self) -> bytes:
        """The payload as compact UTF-8 JSON."""
        return self.model_dump_json(exclude_none=False).encode()


class Request(Message):
    """A command from a device: carries the id the hub de-duplicates it by."""

    msg_id: Id
    """Unique per sender; a resent command keeps its id and is applied only once."""
    sent_at: AwareDatetime | None = None
    """When the device first tried to send it (informative)."""


# -- device → hub -------------------------------------------------------------------


class IssueRequest(Request):
    """``kiosk/<device>/issue``: a citizen asks for a ticket."""

    service: Id
    priority: PriorityReason | None = None
    lang: Lang = "sk"


BOOKING_CODE_PATTERN = r"^[0-9]{8}$"
"""A booking code: eight digits, so a kiosk's keypad can take it."""

BOOKING_QR_PREFIX = "poradovnik:appointment:"
"""What a booking's QR code holds before its code; a kiosk's scanner reads it."""


def booking_qr(code: str) -> str:
    """The text of the QR code of booking ``code``."""
    return f"{BOOKING_QR_PREFIX}{code}"


REMOTE_CODE_PATTERN = r"^[0-9]{6}$"
"""A remote ticket's check-in code: six digits, so a kiosk's keypad tells it from a booking's
eight."""

REMOTE_QR_PREFIX = "poradovnik:ticket:"
"""What a remote ticket's QR code (on the citizen's phone) holds before its check-in code."""

CHECKIN_CODE_PATTERN = r"^(?:[0-9]{6}|[0-9]{8})$"
"""What a kiosk checks in: a remote ticket's code or a booking's."""

CHECKIN_CODE_LENGTHS = (6, 8)
"""The lengths of :data:`CHECKIN_CODE_PATTERN`'s codes, for a kiosk's keypad."""


def remote_qr(code: str) -> str:
    """The text of the QR code of the remote ticket with check-in ``code``."""
    return f"{REMOTE_QR_PREFIX}{code}"


def is_remote_code(code: str) -> bool:
    """Whether ``code`` is a remote ticket's check-in code (rather than a booking's)."""
    return re.fullmatch(REMOTE_CODE_PATTERN, code) is not None


def parse_checkin_qr(text: str) -> str | None:
    """The check-in code in a scanned QR text, or ``None`` if it holds none.

    The text is a booking's QR, a remote ticket's, or a bare code of either.
    """
    code = text.strip()
    for prefix, pattern in (
        (REMOTE_QR_PREFIX, REMOTE_CODE_PATTERN),
        (BOOKING_QR_PREFIX, BOOKING_CODE_PATTERN),
        ("", CHECKIN_CODE_PATTERN),
    ):
        if code.startswith(prefix):
            code = code.removeprefix(prefix)
            return code if re.fullmatch(pattern, code) else None
    return None


class CheckInRequest(Request):
    """``kiosk/<device>/checkin``: a citizen with a booking or a remote ticket arrives.

    The code comes from its QR code or the kiosk's keypad.
    An eight-digit code checks in a booking: answered with a :class:`TicketReply` of the
    new ticket (its ``appointment_at`` set). A six-digit code checks in a remote ticket
    (an addition to v1): answered with a :class:`TicketReply` of that ticket (``remote``
    set), which the call order takes from then on. Refusals are an :class:`ErrorReply`:
    ``unknown_booking`` (no such booking, or no live remote ticket with the code),
    ``too_early``, ``too_late``, ``checked_in`` (already), ``cancelled``.
    """

    code: Annotated[str, Field(pattern=CHECKIN_CODE_PATTERN)]
    lang: Lang = "sk"


class BlockRequest(Request):
    """``kiosk/<device>/blocks``: a kiosk asks for numbers to issue while the hub is away."""

    services: list[Id] = Field(min_length=1, max_length=32)
    """The services to reserve a block of each for."""
    size: int = Field(ge=1, le=100)
    """How many numbers each block holds."""


class OfflineTicket(Request):
    """``kiosk/<device>/offline``: a ticket the kiosk issued from one of its blocks.

    Sent through the kiosk's durable outbox, in the order the tickets were issued;
    the hub records each once and queues it by ``issued_at``.
    """

    ticket_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    """The ticket's id, made by the kiosk (a UUID in hex): the QR code links to it."""
    service: Id
    business_day: date
    """The day of the block the number came from."""
    seq: int = Field(ge=1)
    """The number's day sequence, one of the block's."""
    number: str = Field(min_length=2, max_length=16)
    """The number as printed, e.g. ``A042``."""
    issued_at: AwareDatetime
    priority: PriorityReason | None = None
    lang: Lang = "sk"


class CounterCommand(Request):
    """``counter/<counter>/cmd``: a clerk acts at a counter."""

    action: CounterAction
    service: Id | None = None
    """The target service of a ``transfer``."""
    ticket_id: Id | None = None
    """With ``next``: bring back this parked ticket instead of the next one."""
    business_day: date | None = None
    """The hub's business day in the last ``counter/<id>/state`` the device saw when the
    clerk pressed (an addition to v1: devices that omit it get their commands applied as
    before). The hub refuses a command of an earlier day with ``stale_day``: a press
    queued offline yesterday must not act on today's queue."""


class CounterRating(Request):
    """``counter/<counter>/rating``: the citizen rates the visit just finished at the counter.

    An addition to v1, from a counter's rating buttons. The hub rates the counter's
    newest ticket of the day that ended with Done, once; answered with a
    :class:`RatingReply`, or an :class:`ErrorReply`: ``no_ticket`` (nothing finished
    there today), ``already_rated``, ``too_late``.
    """

    rating: Annotated[int, Field(ge=1, le=5, strict=True)]
    """1 (bad) … 5 (very good); a panel's three buttons send 1, 3 and 5."""


class DeviceStatus(Message):
    """``device/<device>/status`` (retained, and the device's last will)."""

    state: Literal["online", "offline"]
    role: Literal["hub", "kiosk", "display", "counter"] | None = None
    version: str | None = Field(default=None, max_length=40)
    at: AwareDatetime | None = None


class PartHealth(BaseModel):
    """One hardware part's condition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: PartState
    detail: str | None = Field(default=None, max_length=200)


class DeviceHealth(Message):
    """``device/<device>/health`` (retained): the device's hardware, part by part."""

    parts: dict[Id, PartHealth] = Field(max_length=64)
    at: AwareDatetime


class EServiceUpdate(Request):
    """``eservice/update``: a back-office system reports an application's status."""

    system: Id
    """Which back-office system sent it."""
    reference: str = Field(min_length=1, max_length=64)
    """The application's reference, as printed on the citizen's receipt."""
    status: Literal[
        "received",
        "in_progress",
        "waiting_for_documents",
        "decided",
        "ready_for_pickup",
        "closed",
    ]
    at: AwareDatetime
    """When the status changed in the back office: older updates never win."""
    department: str | None = Field(default=None, max_length=120)
    clerk: str | None = Field(default=None, max_length=120)
    waiting_position: int | None = Field(default=None, ge=0)
    note: str | None = Field(default=None, max_length=500)
    pin: str | None = Field(default=None, min_length=4, max_length=32, pattern=r"^[A-Za-z0-9]+$")
    """The PIN printed on the citizen's receipt, with which they look the application up;
    sent with the first update (or to change it). The hub keeps only its hash."""


class EServiceAck(Message):
    """The reply to an :class:`EServiceUpdate`: stored, and the application's status now."""

    msg_id: str
    reference: str
    duplicate: bool
    """The update had been received before (same system and ``msg_id``): nothing changed."""
    current: bool
    """The update is the application's newest: its status is the current one."""
    status: str
    """The application's current status (a newer one wins over a late, older update)."""


PAIRING_CODE_DIGITS = 6
"""How many digits a pairing code has: what a person reads off a screen and types."""

PASSWORD_HASH_PATTERN = r"^\$7\$[1-9][0-9]{0,8}\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$"
"""A Mosquitto ``$7$`` password hash (PBKDF2-SHA512, 12-byte salt, 64-byte hash)."""


class PairingRequest(Request):
    """``provision/<token>/request``: a device that has no account asks to be paired.

    It repeats the request every few seconds until answered, with the same ``msg_id``.
    ``token`` is random, chosen by the device for this pairing; ``code`` is what its
    screen (or log) shows and what the office's admin types in on the hub. The device
    chose its broker password itself and sends only the password's hash.
    """

    code: Annotated[str, Field(pattern=rf"^[0-9]{{{PAIRING_CODE_DIGITS}}}$")]
    role: Literal["kiosk", "display", "counter"]
    """What the device was set up to be (its boot file)."""
    device_id: Id
    """The device id it proposes (its boot file or host name); the admin may choose another."""
    password_hash: Annotated[str, Field(pattern=PASSWORD_HASH_PATTERN)]
    """The hash of the broker password the device chose; the password never travels."""
    version: str | None = Field(default=None, max_length=40)
    """The device's Poradovník version."""


# -- hub → devices ------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Why a request was refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str
    service: str | None = None
    """The booked service, with a check-in's ``too_late`` or ``too_early``: a kiosk offers a
    walk-in ticket of it to a late citizen (an addition to v1)."""


class ErrorReply(Message):
    """The reply to any refused request."""

    msg_id: str | None = None
    error: ErrorBody


class TicketReply(Message):
    """The reply to an :class:`IssueRequest`."""

    msg_id: str
    ticket_id: str
    number: str
    service: str
    people_ahead: int
    estimated_wait_s: int | None
    issued_at: AwareDatetime
    appointment_at: AwareDatetime | None = None
    """The booked slot's start, for a ticket issued by a check-in (an addition to v1)."""
    remote: bool = False
    """Whether the ticket was taken remotely: the answer to its check-in (an addition to
    v1)."""


class BlockInfo(BaseModel):
    """One reserved block of numbers, as the kiosk keeps it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    prefix: str
    """The letter the block's numbers are printed with."""
    business_day: date
    """The only day the numbers may be issued on."""
    first_seq: int
    last_seq: int
    """The block's day sequences, ``first_seq``…``last_seq`` (number = prefix + seq, wrapped
    at 999 as the hub's numbers are)."""


class BlockReply(Message):
    """The reply to a :class:`BlockRequest`: a block per service, or why not."""

    msg_id: str
    blocks: list[BlockInfo]
    refused: dict[str, ErrorBody] = Field(default_factory=dict)
    """Per service that got no block, the reason (``unknown_service``…)."""


class TicketInfo(BaseModel):
    """A ticket as counters and displays see it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ticket_id: str
    number: str
    service: str
    state: str
    calls: int
    called_at: AwareDatetime | None
    issued_at: AwareDatetime
    appointment_at: AwareDatetime | None = None
    """The booked slot's start when the citizen checked in with a booking, so the
    clerk's panel marks the appointment (an addition to v1)."""
    remote: bool = False
    """Whether the ticket was taken remotely (on the portal), marked on the clerk's panel
    (an addition to v1)."""
    priority: bool = False
    """Whether the ticket has priority (taken at the kiosk or given by a clerk), marked
    on the clerk's panel; never why (an addition to v1: a hub that omits it shows no
    mark)."""


class CommandReply(Message):
    """The reply to a :class:`CounterCommand`: what the counter has now."""

    msg_id: str
    counter: str
    state: Literal["open", "paused"]
    ticket: TicketInfo | None
    """The counter's current ticket after the action (``None`` when free)."""
    affected: TicketInfo | None = None
    """The ticket the action was about, when it left the counter (done, transfer…)."""


class RatingReply(Message):
    """The reply to a :class:`CounterRating`: which ticket got the rating."""

    msg_id: str
    rated: str
    """The rated ticket's number."""
    rating: int


class PairingReply(Message):
    """``provision/<token>/reply``: the hub paired the device; its account is ready.

    Nothing here is secret: the password stays the one whose hash the device sent.
    """

    msg_id: str
    code: str
    role: Literal["kiosk", "display", "counter"]
    site: Id
    device_id: Id
    """The device's id in topics from now on (a replacement takes its predecessor's)."""
    username: Id
    """The broker user name to log in with, with the device's own password."""
    counters: list[Id] = Field(default_factory=list, max_length=64)
    """The counters a counter panel acts for."""


class CounterState(Message):
    """``counter/<counter>/state`` (retained)."""

    counter: str
    name: str
    state: Literal["open", "paused"]
    services: list[str]
    ticket: TicketInfo | None
    at: AwareDatetime
    business_day: date | None = None
    """The hub's business day when it published the state (an addition to v1): a
    counter panel stamps its commands with it."""


class Call(Message):
    """``calls``: one message per call or recall, for displays and LED boards."""

    ticket: str
    ticket_id: str
    counter: str
    counter_name: str
    service: str
    called_at: AwareDatetime
    recall: bool
    calls: int
    appointment: bool = False
    """Whether the ticket is a booked appointment, marked on screens (an addition to v1)."""
    priority: bool = False
    """Whether the ticket has priority, marked discreetly on screens; never why (an
    addition to v1)."""
    remote: bool = False
    """Whether the ticket was taken remotely, marked on screens (an addition to v1)."""


class QueueState(Message):
    """``queue/<service>`` (retained): a service's live state for kiosks and displays."""

    service: str
    prefix: str
    names: dict[str, str]
    open: bool
    """Whether a ticket can be issued now (switch, hours, holidays, closures, cut-off)."""
    hours: str
    waiting: int
    estimated_wait_s: int | None
    issued_today: int
    daily_limit: int | None
    open_counters: int
    at: AwareDatetime
    opens_at: AwareDatetime | None = None
    """When it is not open: the next time it opens, in the site's zone (``None``: not
    known, e.g. the admin switched it off)."""
    cut_off: bool = False
    """It is open but takes no more tickets in this opening: those waiting fill the time
    until it closes."""
    priority_allowed: bool = False
    """Whether a kiosk may issue priority tickets of the service (the admin's switch; an
    addition to v1: a hub that does not send it gets no priority tickets from kiosks)."""


# -- topics -------------------------------------------------------------------------

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

ANY = "+"
"""The wildcard for one topic level: ``Topics.queue(ANY)`` is every service's queue."""

_ID = "{id}"
"""Where a sender's device or counter id goes in an :data:`INBOUND` topic."""


@dataclass(frozen=True, slots=True)
class InboundKind:
    """A kind of message the hub receives: the topic it comes on and what it carries."""

    path: str
    """The topic below the site's root, with ``{id}`` for the device or counter it is of."""
    model: type[Message]
    """The payload's schema."""


INBOUND: dict[str, InboundKind] = {
    "kiosk_issue": InboundKind(f"kiosk/{_ID}/issue", IssueRequest),
    "kiosk_blocks": InboundKind(f"kiosk/{_ID}/blocks", BlockRequest),
    "kiosk_offline": InboundKind(f"kiosk/{_ID}/offline", OfflineTicket),
    "kiosk_checkin": InboundKind(f"kiosk/{_ID}/checkin", CheckInRequest),
    "counter_cmd": InboundKind(f"counter/{_ID}/cmd", CounterCommand),
    "counter_rating": InboundKind(f"counter/{_ID}/rating", CounterRating),
    "device_status": InboundKind(f"device/{_ID}/status", DeviceStatus),
    "device_health": InboundKind(f"device/{_ID}/health", DeviceHealth),
    "eservice_update": InboundKind("eservice/update", EServiceUpdate),
}
"""Every message the hub receives, by kind: the one list that :meth:`Topics.parse`, the
topic builders of these kinds and the hub's dispatch (``hub.bridge.HANDLERS``, which
subscribes to each kind's topic and checks its payload by this schema) all follow."""


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic names of one site (``poradovnik/v1/<site>/…``): the only place they are made.

    Methods that take an id give a filter for all of them with :data:`ANY` (``+``).
    """

    site: str

    @property
    def base(self) -> str:
        """The site's root topic."""
        return f"{ROOT}/{self.site}"

    def all(self) -> str:
        """Filter for everything of the site."""
        return f"{self.base}/#"

    def inbound(self, kind: str, ident: str = ANY) -> str:
        """The topic of an :data:`INBOUND` ``kind`` of device (or counter) ``ident``."""
        return f"{self.base}/{INBOUND[kind].path.replace(_ID, ident)}"

    def device_status(self, device: str) -> str:
        """Retained online/offline of a device (its last will)."""
        return self.inbound("device_status", device)

    def hub_status(self) -> str:
        """Retained online/offline of the hub, which every device watches."""
        return self.device_status(HUB_DEVICE_ID)

    def device_health(self, device: str) -> str:
        """Retained hardware health of a device."""
        return self.inbound("device_health", device)

    def device_reply(self, device: str) -> str:
        """Where the hub answers a device's requests (the MQTT v5 response topic)."""
        return f"{self.base}/device/{device}/reply"

    def kiosk_issue(self, device: str) -> str:
        """A kiosk's ticket requests."""
        return self.inbound("kiosk_issue", device)

    def kiosk_blocks(self, device: str) -> str:
        """A kiosk's requests for offline number blocks."""
        return self.inbound("kiosk_blocks", device)

    def kiosk_offline(self, device: str) -> str:
        """Tickets a kiosk issued offline, delivered through its outbox."""
        return self.inbound("kiosk_offline", device)

    def kiosk_checkin(self, device: str) -> str:
        """A kiosk's check-ins of citizens with a booking."""
        return self.inbound("kiosk_checkin", device)

    def counter_cmd(self, counter: str) -> str:
        """A counter's commands."""
        return self.inbound("counter_cmd", counter)

    def counter_rating(self, counter: str) -> str:
        """The citizens' ratings from a counter's rating buttons."""
        return self.inbound("counter_rating", counter)

    def counter_state(self, counter: str) -> str:
        """Retained state of a counter."""
        return f"{self.base}/counter/{counter}/state"

    def calls(self) -> str:
        """Calls and recalls, not retained."""
        return f"{self.base}/calls"

    def counter_call(self, counter: str, slot: str) -> str:
        """Retained: one of a counter's latest calls, ``slot`` ``0``… (``+``: every slot)."""
        return f"{self.base}/counter/{counter}/call/{slot}"

    def queue(self, service: str) -> str:
        """Retained state of a service's queue (``#`` in an ACL: every queue topic)."""
        return f"{self.base}/queue/{service}"

    def eservice_update(self) -> str:
        """Status updates of e-service applications from back-office systems."""
        return self.inbound("eservice_update")

    def provision_request(self, token: str) -> str:
        """Where a device waiting to be paired asks for it."""
        return f"{self.base}/provision/{token}/request"

    def provision_reply(self, token: str) -> str:
        """Where the hub answers a pairing request."""
        return f"{self.base}/provision/{token}/reply"

    def parse(self, topic: str) -> tuple[str, str | None]:
        """Split an inbound topic into its :data:`INBOUND` kind and its id.

        The id is ``None`` for a kind without one (``eservice_update``). Raises
        :class:`ProtocolError` for anything else.
        """
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            raise ProtocolError("unknown_topic", f"topic {topic!r} is not of site {self.site}")
        levels = topic[len(prefix) :].split("/")
        for kind, inbound in INBOUND.items():
            pattern = inbound.path.split("/")
            if len(levels) != len(pattern):
                continue
            pairs = list(zip(levels, pattern, strict=True))
            ids = [level for level, expected in pairs if expected == _ID]
            fixed = all(level == expected for level, expected in pairs if expected != _ID)
            if fixed and all(_SEGMENT.match(ident) for ident in ids):
                return kind, ids[0] if ids else None
        raise ProtocolError("unknown_topic", f"no inbound topic {topic!r} in protocol v1")


M = TypeVar("M", bound=Message)


def load_object(payload: bytes, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Read an inbound payload as a JSON object; raise :class:`ProtocolError` if it is not.

    Every inbound payload passes here, so its bounds hold everywhere: at most
    ``max_bytes`` long (``too_large``; :data:`MAX_PAYLOAD_BYTES` unless a link with
    larger messages, the city link, says otherwise) and :data:`MAX_DEPTH` deep
    (``invalid``), checked before the JSON parser runs.
    """
    if len(payload) > max_bytes:
        raise ProtocolError("too_large", f"payload of {len(payload)} bytes exceeds {max_bytes}")
    if too_deep(payload, MAX_DEPTH):
        raise ProtocolError("invalid", f"payload nests deeper than {MAX_DEPTH} levels")
    try:
        data: Any = json.loads(payload, parse_constant=_not_json_constant)
    except ValueError as exc:
        # Not UTF-8, not JSON, NaN or Infinity (not JSON either), or an integer of
        # more digits than Python converts (int_max_str_digits): each a ValueError.
        raise ProtocolError("malformed", f"payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("malformed", "payload is not a JSON object")
    return data


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def decode(model: type[M], payload: bytes, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> M:
    """Check an inbound ``payload`` against ``model``; raise :class:`ProtocolError` if bad.

    ``max_bytes`` bounds the payload's size (see :func:`load_object`).
    """
    data = load_object(payload, max_bytes=max_bytes)
    version = data.get("v")
    if version != VERSION:
        raise ProtocolError(
            "unsupported_version", f"protocol version {version!r} is not supported (v1 is)"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise ProtocolError("invalid", problems) from None


def msg_id_of(payload: bytes) -> str | None:
    """The ``msg_id`` of a payload, if it has a usable one, for error replies.

    Never raises: it reads the payload within the same bounds as :func:`load_object`.
    """
    try:
        value = load_object(payload).get("msg_id")
    except ProtocolError:
        return None
    return value if isinstance(value, str) and len(value) <= 64 else None
