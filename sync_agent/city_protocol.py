"""The city link: what a branch's hub and the city say to each other, as schemas.

A city runs many offices (*branches*). Each branch's Mosquitto bridges a few of its own
topics to the city's broker (:data:`BRIDGED_OUT`, :data:`BRIDGED_IN`); the branch's hub
and the city's consumer then talk over them with the messages defined here:

- ``city/history`` (branch → city, QoS 1, never retained): a :class:`HistoryBatch`, a
  run of the branch's audit log (its ``events`` table) with consecutive sequence
  numbers (the rows' ids, which never go back).
- ``city/ack`` (city → branch, QoS 1, retained): a :class:`HistoryAck`, the highest
  sequence the city has stored with nothing missing before it. The branch sends from
  there again whenever it is behind what it sent (a gap, a lost batch, a city
  database that came back older after a failover).
- ``city/catalogue`` (city → branch, QoS 1, retained): the city's :class:`Catalogue`
  of services for branches that take it.
- ``city/catalogue/applied`` (branch → city, QoS 1, retained): a
  :class:`CatalogueApplied`, which version the branch applied and what it kept of its own.

Every topic is below the branch's own site root (``poradovnik/v1/<site>/city/…``), so
one ACL line lets a branch's account write only its own site. ``docs/city.md``
describes the same for people.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Final, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from common.i18n import Language
from sync_agent.protocol import ROOT, Id, M, Message, ProtocolError, decode

HISTORY_BATCH_MAX: Final = 100
"""Most events in one :class:`HistoryBatch`."""

CITY_MAX_PAYLOAD_BYTES: Final = 48 * 1024
"""City-link payloads larger than this are refused unread (a batch of
:data:`HISTORY_BATCH_MAX` events is about 30 KiB; the branch broker's packet limit is
64 KiB)."""

CATALOGUE_MAX_SERVICES: Final = 64
"""Most services in the city's catalogue."""

Text = Annotated[str, Field(max_length=128)]
"""A short free text of an audit row (an actor, a state, a ticket's number)."""


DETAIL_MAX_DEPTH: Final = 4
"""Most levels of objects and arrays inside an audit row's ``detail`` (the hub's nest 1)."""

DETAIL_MAX_ITEMS: Final = 32
"""Most keys of an object, or items of an array, inside an audit row's ``detail``."""

DETAIL_MAX_TEXT: Final = 1024
"""Most characters of a key or a string inside an audit row's ``detail``."""

_INT64: Final = 2**63
"""Integers in a ``detail`` fit PostgreSQL's ``BIGINT`` (``-2**63 … 2**63 - 1``)."""


def _bounded_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """Refuse a ``detail`` nested deeper, longer or with larger values than the bounds above.

    The payload's own bounds (size, :data:`~sync_agent.protocol.MAX_DEPTH`) hold already,
    so the walk is short; these keep what the city stores as small as what a hub writes.
    """
    pending: list[tuple[object, int]] = [(detail, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > DETAIL_MAX_DEPTH:
                raise ValueError(f"nests deeper than {DETAIL_MAX_DEPTH} levels")
            if len(value) > DETAIL_MAX_ITEMS:
                raise ValueError(f"an object or array of more than {DETAIL_MAX_ITEMS} items")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and len(key) > DETAIL_MAX_TEXT:
                    raise ValueError(f"a key longer than {DETAIL_MAX_TEXT} characters")
                pending.append((item, depth + 1))
        elif isinstance(value, str) and len(value) > DETAIL_MAX_TEXT:
            raise ValueError(f"a string longer than {DETAIL_MAX_TEXT} characters")
        elif isinstance(value, int) and not -_INT64 <= value < _INT64:
            raise ValueError("an integer beyond 64 bits")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError("a number beyond a double's range")
    return detail


Detail = Annotated[dict[str, Any], AfterValidator(_bounded_detail)]
"""An audit row's ``detail``: any JSON object within the ``DETAIL_MAX_*`` bounds."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class HistoryEvent(_Strict):
    """One row of a branch's audit log, with what the city needs of its ticket."""

    seq: int = Field(ge=1)
    """The row's place in the branch's log: its ``events.id``, never reused."""
    at: AwareDatetime
    action: Annotated[str, Field(max_length=16)]
    actor: Text
    ticket_id: Annotated[str, Field(max_length=32)] | None = None
    counter_id: Annotated[str, Field(max_length=64)] | None = None
    service: Annotated[str, Field(max_length=64)] | None = None
    from_state: Annotated[str, Field(max_length=16)] | None = None
    to_state: Annotated[str, Field(max_length=16)] | None = None
    detail: Detail = Field(default_factory=dict)
    """The row's detail as the branch keeps it (within the ``DETAIL_MAX_*`` bounds)."""
    number: Annotated[str, Field(max_length=16)] | None = None
    """The ticket's number, e.g. ``A042``."""
    business_day: date | None = None
    """The ticket's business day at the branch."""
    priority: Annotated[str, Field(max_length=16)] | None = None
    """Why the ticket has priority, if it has."""


class HistoryBatch(Message):
    """``city/history``: consecutive rows of a branch's audit log."""

    site: Id
    """The branch; it must be the site of the topic it came on."""
    first_available: int = Field(ge=1)
    """The lowest sequence the branch still holds: anything before it is gone (pruned
    before the branch joined the city), so the city may start from here."""
    events: list[HistoryEvent] = Field(min_length=1, max_length=HISTORY_BATCH_MAX)

    @model_validator(mode="after")
    def _consecutive(self) -> Self:
        first = self.events[0].seq
        if any(event.seq != first + i for i, event in enumerate(self.events)):
            raise ValueError("the events' sequences are not consecutive")
        return self

    @property
    def first(self) -> int:
        """The batch's first sequence."""
        return self.events[0].seq

    @property
    def last(self) -> int:
        """The batch's last sequence."""
        return self.events[-1].seq


class HistoryAck(Message):
    """``city/ack`` (retained): how far the city holds a branch's history."""

    site: Id
    seq: int = Field(ge=0)
    """The highest sequence stored with none missing before it (``0``: none yet)."""
    at: AwareDatetime


class CatalogueService(_Strict):
    """One service as the city defines it."""

    code: Id
    prefix: Annotated[str, Field(min_length=1, max_length=3, pattern=r"^[A-Z]+$")]
    names: dict[Language, Annotated[str, Field(min_length=1, max_length=80)]]
    hours: dict[str, Any] = Field(default_factory=lambda: {"always": True, "days": {}})
    """Opening hours as ``hub.store.rows.hours_to_json`` writes them."""


class Catalogue(Message):
    """``city/catalogue`` (retained): the services a branch takes from the city."""

    version: int = Field(ge=1)
    """Grows with every change the city publishes."""
    published_at: AwareDatetime
    services: list[CatalogueService] = Field(max_length=CATALOGUE_MAX_SERVICES)


class CatalogueApplied(Message):
    """``city/catalogue/applied`` (retained): what a branch did with a catalogue."""

    site: Id
    version: int = Field(ge=0)
    at: AwareDatetime
    kept_local: list[Annotated[str, Field(max_length=160)]] = Field(
        default_factory=list, max_length=256
    )
    """``service.field`` the branch kept as its admin set them (its local overrides)."""
    refused: list[Annotated[str, Field(max_length=400)]] = Field(
        default_factory=list, max_length=CATALOGUE_MAX_SERVICES
    )
    """Why a service could not be applied, one line each."""


# -- topics -------------------------------------------------------------------------

CITY: Final = "city"
"""The topic level below a site's root where the city link's messages go."""

BRIDGED_OUT: Final[tuple[str, ...]] = (
    "queue/+",
    "counter/+/state",
    "counter/+/call/+",
    "calls",
    "device/+/status",
    "device/+/health",
    f"{CITY}/history",
    f"{CITY}/catalogue/applied",
)
"""What a branch's broker forwards to the city, below the site's root: the retained queue,
counter and device state, the calls, and the city link's own messages."""

BRIDGED_IN: Final[tuple[str, ...]] = (f"{CITY}/ack", f"{CITY}/catalogue")
"""What a branch's broker takes from the city, below the site's root."""


class CityTopics:
    """Topic names of the city link for one branch (``site``), or for every branch."""

    def __init__(self, site: str) -> None:
        self.site = site

    @property
    def base(self) -> str:
        """The branch's root topic."""
        return f"{ROOT}/{self.site}"

    @property
    def history(self) -> str:
        """Where the branch sends its audit log."""
        return f"{self.base}/{CITY}/history"

    @property
    def ack(self) -> str:
        """Where the city says how far it holds the branch's log (retained)."""
        return f"{self.base}/{CITY}/ack"

    @property
    def catalogue(self) -> str:
        """Where the city publishes the branch's catalogue (retained)."""
        return f"{self.base}/{CITY}/catalogue"

    @property
    def catalogue_applied(self) -> str:
        """Where the branch says what it applied (retained)."""
        return f"{self.base}/{CITY}/catalogue/applied"


EVERY_BRANCH: Final = CityTopics("+")
"""Topic filters over every branch (``poradovnik/v1/+/city/…``)."""


def site_of(topic: str) -> str:
    """The branch a topic of the city link (or any bridged topic) belongs to.

    Raises :class:`ProtocolError` for a topic outside ``poradovnik/v1/<site>/…``.
    """
    prefix = ROOT + "/"
    if not topic.startswith(prefix):
        raise ProtocolError("unknown_topic", f"topic {topic!r} is not of protocol v1")
    site, _, rest = topic[len(prefix) :].partition("/")
    if not site or not rest or site in ("+", "#"):
        raise ProtocolError("unknown_topic", f"topic {topic!r} names no site")
    return site


def decode_city(model: type[M], payload: bytes) -> M:
    """Check a city-link ``payload`` against ``model`` (bounded by :data:`CITY_MAX_PAYLOAD_BYTES`).

    Raises :class:`ProtocolError` for anything oversized, too deep, not JSON, of another
    version or not matching the schema.
    """
    return decode(model, payload, max_bytes=CITY_MAX_PAYLOAD_BYTES)
