"""E-service applications: status updates from the city's back-office systems, and lookups.

Back-office systems report an application's status over MQTT (``eservice/update``)
or the REST API; both go through :meth:`EServices.apply`. An update is stored once
per (system, message id): a resent one changes nothing. Updates are ordered by
their own timestamp, not by arrival: a late update older than the current status
joins the application's timeline but does not replace its status.

A citizen looks an application up with the reference and PIN printed on their
receipt (:meth:`EServices.lookup`). The PIN is kept as an argon2 hash, and a wrong
reference costs as much time as a wrong PIN, so a refusal never tells which of
the two was wrong. An update whose PIN is shorter than :data:`MIN_PIN_LENGTH` is
refused (``weak_pin``): the web side locks a reference after a few wrong PINs, and
the PIN must be long enough for those few guesses to be hopeless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, get_args

from sqlalchemy import insert, select, update

from common.errors import PoradovnikError
from hub.store import Store, metadata
from hub.users import hasher, verify_secret
from sync_agent.protocol import EServiceAck, EServiceUpdate

STATUSES: Final[tuple[str, ...]] = get_args(EServiceUpdate.model_fields["status"].annotation)
"""An application's statuses in their usual order: received … closed."""

MIN_PIN_LENGTH: Final = 6
"""The shortest PIN an update may set (docs/protocol.md says what back-office systems
should use: at least 8 random letters and digits)."""

_applications: Final = metadata.tables["eservice_applications"]
_updates: Final = metadata.tables["eservice_updates"]


class EServiceError(PoradovnikError):
    """An update that cannot be stored, with a stable ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of an application's timeline, as its owner sees it."""

    status: str
    at: datetime
    department: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Application:
    """An application's current status and its timeline (oldest first)."""

    reference: str
    status: str
    status_at: datetime
    department: str | None
    waiting_position: int | None
    steps: tuple[Step, ...]


def normalize_reference(reference: str) -> str:
    """The form references are stored and looked up in: trimmed, spaces dropped, upper case."""
    return "".join(reference.split()).upper()


class EServices:
    """Stores status updates and answers citizens' lookups."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def apply(self, message: EServiceUpdate, *, now: datetime | None = None) -> EServiceAck:
        """Store one update (at most once) and make it current if it is the newest."""
        reference = normalize_reference(message.reference)
        if not reference:
            raise EServiceError("invalid", "the reference is empty")
        if message.pin is not None and len(message.pin.strip()) < MIN_PIN_LENGTH:
            raise EServiceError(
                "weak_pin",
                f"the PIN of {reference} is shorter than {MIN_PIN_LENGTH} characters; "
                "use at least 8 random letters and digits",
            )
        received = now or datetime.now(UTC)
        # Hashing takes tens of milliseconds: before the transaction, not inside it.
        pin_hash = hasher.hash(message.pin) if message.pin else None
        with self.store.transaction() as conn:
            seen = conn.execute(
                select(_updates.c.reference).where(
                    _updates.c.system == message.system, _updates.c.msg_id == message.msg_id
                )
            ).first()
            query = select(_applications).where(_applications.c.reference == reference)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            current = conn.execute(query).first()
            if seen is not None:
                status = current.status if current is not None else message.status
                return _ack(message, reference, duplicate=True, current=False, status=status)
            if current is not None and current.system != message.system:
                raise EServiceError(
                    "foreign_reference",
                    f"application {reference} belongs to another system than {message.system}",
                )
            conn.execute(
                insert(_updates).values(
                    system=message.system,
                    msg_id=message.msg_id,
                    reference=reference,
                    status=message.status,
                    at=message.at,
                    department=message.department,
                    clerk=message.clerk,
                    waiting_position=message.waiting_position,
                    note=message.note,
                    received_at=received,
                )
            )
            newest = current is None or message.at >= current.status_at
            values: dict[str, object] = {"updated_at": received}
            if pin_hash is not None:
                values["pin_hash"] = pin_hash
            if newest:
                values |= {
                    "status": message.status,
                    "status_at": message.at,
                    "waiting_position": message.waiting_position,
                }
                if message.department is not None:
                    values["department"] = message.department
            if current is None:
                conn.execute(
                    insert(_applications).values(
                        {
                            "department": None,
                            **values,
                            "reference": reference,
                            "system": message.system,
                        }
                    )
                )
            else:
                conn.execute(
                    update(_applications)
                    .where(_applications.c.reference == reference)
                    .values(values)
                )
            status = message.status if newest or current is None else current.status
        return _ack(message, reference, duplicate=False, current=newest, status=status)

    def lookup(self, reference: str, pin: str) -> Application | None:
        """The application with this reference and PIN, or ``None`` if either is wrong."""
        key = normalize_reference(reference)
        with self.store.db.connect() as conn:
            row = conn.execute(
                select(_applications).where(_applications.c.reference == key)
            ).first()
            if not verify_secret(row.pin_hash if row is not None else None, pin.strip()):
                return None
            assert row is not None
            steps = conn.execute(
                select(_updates)
                .where(_updates.c.reference == key)
                .order_by(_updates.c.at, _updates.c.received_at)
            ).all()
        return Application(
            reference=row.reference,
            status=row.status,
            status_at=row.status_at,
            department=row.department,
            waiting_position=row.waiting_position,
            steps=tuple(Step(s.status, s.at, s.department, s.note) for s in steps),
        )


def _ack(
    message: EServiceUpdate, reference: str, *, duplicate: bool, current: bool, status: str
) -> EServiceAck:
    return EServiceAck(
        msg_id=message.msg_id,
        reference=reference,
        duplicate=duplicate,
        current=current,
        status=status,
    )
