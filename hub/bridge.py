"""The hub's side of the MQTT link: commands in, calls and retained state out.

:class:`HubBridge` turns each inbound message into one service-layer operation
and publishes what the queue became. It is written against :class:`Publisher`,
a single ``publish`` method, so the MQTT connection stays in
:mod:`hub.publications` and the bridge's logic can be read without
it.

Replies go only to the sender's own ``device/<sender>/reply``, whatever response
topic a request names (see :meth:`HubBridge.reply_topics`): a device cannot make
the hub publish where the device itself may not.

Exactly once: every command carries a ``msg_id``. The reply to it is written to
the database in the same transaction as the queue change it caused (the
*receipt*), so a command delivered again (a device resending after a timeout, a
broker redelivering after the hub died) gets the stored reply and changes
nothing, even across hub restarts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from common.logthrottle import ThrottledLog
from hub.eservice import EServiceError, EServices
from hub.feedback import Feedback, FeedbackError, Rating
from hub.messages import calls_of, queue_state
from hub.model import Change, Counter, Priority, Ticket
from hub.service import QueueError, QueueService
from sync_agent import protocol as p
from sync_agent.broker_accounts import Account

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where the bridge sends messages: the hub's link to the broker, QoS 1."""

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        correlation: bytes | None = None,
        expiry_s: int | None = None,
        durable: bool = False,
    ) -> object:
        """Send ``payload`` on ``topic``; ``correlation`` marks a reply to a request.

        ``expiry_s`` is the MQTT message expiry; a ``durable`` message is kept until the
        broker has it, and durable messages arrive in order (see
        :class:`~hub.publications.HubLink`).
        """


@dataclass
class DeviceView:
    """What the hub knows of one device from its retained status and health."""

    device_id: str
    status: p.DeviceStatus | None = None
    health: p.DeviceHealth | None = None
    last_seen: datetime | None = None
    """When the hub last heard the device's status or health."""


class HubBridge:
    """Applies devices' commands through the service layer and publishes the queue."""

    def __init__(
        self,
        queue: QueueService,
        topics: p.Topics,
        publisher: Publisher,
        eservices: EServices,
        feedback: Feedback,
    ) -> None:
        self.queue = queue
        self.topics = topics
        self.publisher = publisher
        self.devices: dict[str, DeviceView] = {}
        """Every device heard of, by id (the admin page shows them)."""
        self.eservices = eservices
        """Where ``eservice/update`` messages are stored."""
        self.feedback = feedback
        """Where counters' ``rating`` messages are stored."""
        self._device_listeners: list[Callable[[DeviceView], None]] = []
        self._call_slots: dict[str, int] = {}
        """The retained slot each counter's next call takes (see ``p.CALL_SLOTS``)."""
        self._accounts: list[Account] | None = None
        """The broker accounts, as last read from the store (who may be answered where)."""
        self._refusals = ThrottledLog(log)
        queue.subscribe(self.publish_change)

    def on_device(self, listener: Callable[[DeviceView], None]) -> None:
        """Hear of every device status or health update (after it is recorded)."""
        self._device_listeners.append(listener)

    # -- inbound -------------------------------------------------------------------

    def inbound_filters(self) -> tuple[str, ...]:
        """The topic filters the hub subscribes to: one per kind it handles."""
        return tuple(self.topics.inbound(kind) for kind in HANDLERS)

    def handle(
        self,
        topic: str,
        payload: bytes,
        *,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> None:
        """Process one inbound message; never raises for anything a sender can do.

        A refused message is logged (at most once a minute per topic and reason, with a
        count) and answered with an error, on the sender's own reply topic only.
        """
        try:
            kind, ident = self.topics.parse(topic)
            reply = self._dispatch(kind, ident or "", payload)
        except p.ProtocolError as refused:
            self._refusals.log(
                logging.WARNING,
                (topic, refused.code),
                "refused message on %s: %s (%s)",
                topic,
                refused.message,
                refused.code,
            )
            reply = error_reply(p.msg_id_of(payload), refused.code, refused.message)
        except Exception:
            # A bug or a database failure must not take the link down; say so.
            log.exception("failed to process a message on %s", topic)
            reply = error_reply(p.msg_id_of(payload), "internal", "the hub could not process it")
        if reply is not None and response_topic:
            self._answer(topic, response_topic, reply, correlation)

    def _answer(
        self,
        topic: str,
        response_topic: str,
        reply: bytes,
        correlation: bytes | None,
    ) -> None:
        """Publish ``reply`` on ``response_topic`` if that is the sender's reply topic."""
        try:
            allowed = self.reply_topics(topic)
            if response_topic not in allowed:
                allowed = self.reply_topics(topic, reload=True)
            if response_topic not in allowed:
                self._refusals.log(
                    logging.WARNING,
                    (topic, "response_topic"),
                    "refused to answer a message on %s at %r: replies go only to %s",
                    topic,
                    response_topic[:200],
                    " or ".join(sorted(allowed))
                    or "nowhere: no broker account in the hub's database may send it",
                )
                return
            # A back office does not ask again: its acknowledgement must not be lost.
            durable = topic == self.topics.eservice_update()
            self.publisher.publish(response_topic, reply, correlation=correlation, durable=durable)
        except Exception:
            log.exception("failed to answer a message on %s", topic)

    def reply_topics(self, topic: str, *, reload: bool = False) -> frozenset[str]:
        """Where a request that came on ``topic`` may be answered: its sender's reply topic.

        The sender is an account the broker's ACL lets publish on ``topic``: the kiosk
        of ``kiosk/<device>/…``, the counter panel whose account lists the counter of
        ``counter/<counter>/cmd`` (or ``…/rating``), a back-office account for ``eservice/update``.
        Nothing else is ever answered, so a device cannot make the hub publish where
        it may not itself. ``reload`` reads the accounts from the store again (a
        device paired since).
        """
        try:
            kind, ident = self.topics.parse(topic)
        except p.ProtocolError:
            return frozenset()
        if kind in ("kiosk_issue", "kiosk_blocks", "kiosk_offline", "kiosk_checkin") and ident:
            return frozenset({self.topics.device_reply(ident)})
        if kind in ("counter_cmd", "counter_rating"):
            return frozenset(
                self.topics.device_reply(a.device_id)
                for a in self._broker_accounts(reload)
                if a.role == "counter" and a.device_id and ident in a.counters
            )
        if kind == "eservice_update":
            return frozenset(
                self.topics.device_reply(a.username)
                for a in self._broker_accounts(reload)
                if a.role == "backoffice"
            )
        return frozenset()

    def _broker_accounts(self, reload: bool) -> list[Account]:
        if self._accounts is None or reload:
            self._accounts = self.queue.broker_accounts()
        return self._accounts

    def _dispatch(self, kind: str, ident: str, payload: bytes) -> bytes | None:
        """Check ``payload`` against its kind's schema and hand it to the kind's handler."""
        return HANDLERS[kind](self, p.decode(p.INBOUND[kind].model, payload), ident)

    def _eservice(self, update: p.EServiceUpdate, _ident: str) -> bytes:
        try:
            return self.eservices.apply(update, now=self.queue.clock()).encode()
        except EServiceError as refused:
            raise p.ProtocolError(refused.code, refused.message) from None

    def _rating(self, request: p.CounterRating, counter_id: str) -> bytes:
        """Rate the visit just finished at the counter; a resent rating gets its answer."""
        rated: list[Rating] = []

        def decide(now: datetime) -> Change:
            try:
                rated.append(
                    self.feedback.rate_last(counter_id, request.rating, day=self.queue.day)
                )
            except FeedbackError as refused:
                raise QueueError(refused.code, refused.message) from None
            return Change()

        def answer(_change: Change) -> p.Message:
            return p.RatingReply(
                msg_id=request.msg_id, rated=rated[0].number, rating=rated[0].rating
            )

        return self._once(f"counter:{counter_id}", request, decide, answer)

    def _checkin(self, request: p.CheckInRequest, kiosk: str) -> bytes:
        actor = f"kiosk:{kiosk}"

        def decide(now: datetime) -> Change:
            return self.queue.decide_check_in(request.code, now, lang=request.lang, actor=actor)

        return self._once(actor, request, decide, self._ticket_reply(request.msg_id))

    def _issue(self, request: p.IssueRequest, kiosk: str) -> bytes:
        priority = Priority(request.priority) if request.priority else None
        actor = f"kiosk:{kiosk}"

        def decide(now: datetime) -> Change:
            return self.queue.decide_issue(
                request.service, now, priority=priority, lang=request.lang, actor=actor
            )

        return self._once(actor, request, decide, self._ticket_reply(request.msg_id))

    def _ticket_reply(self, msg_id: str) -> Callable[[Change], p.Message]:
        """The answer to a request that issued (or recorded) the change's ticket."""

        def answer(change: Change) -> p.Message:
            ticket = change.subject
            assert ticket is not None
            estimate = self.queue.estimate(ticket)
            return p.TicketReply(
                msg_id=msg_id,
                ticket_id=ticket.id,
                number=ticket.number,
                service=ticket.service,
                people_ahead=estimate.people_ahead,
                estimated_wait_s=estimate.estimated_wait_s,
                issued_at=ticket.issued_at,
                appointment_at=ticket.slot_at,
                remote=ticket.remote,
            )

        return answer

    def _reserve(self, request: p.BlockRequest, kiosk: str) -> bytes:
        actor = f"kiosk:{kiosk}"
        refused: dict[str, p.ErrorBody] = {}

        def decide(now: datetime) -> Change:
            refused.clear()
            change = Change()
            for service in dict.fromkeys(request.services):
                try:
                    change += self.queue.decide_reserve(
                        kiosk, service, request.size, now, actor=actor
                    )
                except QueueError as exc:
                    refused[service] = p.ErrorBody(code=exc.code, message=exc.message)
            return change

        def answer(change: Change) -> p.Message:
            blocks = [
                p.BlockInfo(
                    service=b.service,
                    prefix=b.prefix,
                    business_day=b.business_day,
                    first_seq=b.first_seq,
                    last_seq=b.last_seq,
                )
                for b in change.blocks
            ]
            return p.BlockReply(msg_id=request.msg_id, blocks=blocks, refused=dict(refused))

        return self._once(actor, request, decide, answer)

    def _offline(self, request: p.OfflineTicket, kiosk: str) -> bytes:
        actor = f"kiosk:{kiosk}"
        priority = Priority(request.priority) if request.priority else None
        ticket = Ticket(
            id=request.ticket_id,
            number_service=request.service,
            business_day=request.business_day,
            seq=request.seq,
            number=request.number,
            service=request.service,
            issued_at=request.issued_at,
            arrived_at=request.issued_at,
            priority=priority,
            lang=request.lang,
            origin=kiosk,
        )

        def decide(now: datetime) -> Change:
            return self.queue.decide_offline(kiosk, ticket, now, actor=actor)

        return self._once(actor, request, decide, self._ticket_reply(request.msg_id))

    def _command(self, command: p.CounterCommand, counter_id: str) -> bytes:
        actor = f"counter:{counter_id}"

        def decide(now: datetime) -> Change:
            today = self.queue.day
            if command.business_day is not None and command.business_day < today:
                raise QueueError(
                    "stale_day",
                    f"the press was made on {command.business_day.isoformat()}, "
                    f"the office's day is now {today.isoformat()}",
                )
            return self.queue.decide_counter_action(
                counter_id,
                command.action,
                now,
                actor=actor,
                service=command.service,
                ticket_id=command.ticket_id,
            )

        def answer(change: Change) -> p.Message:
            counter = _latest_counter(change, counter_id) or self.queue.counter(counter_id)
            assert counter is not None  # the engine decided an action at it
            current = self._ticket_after(change, counter.current)
            affected = change.subject
            if affected is not None and affected.id == counter.current:
                affected = None
            return p.CommandReply(
                msg_id=command.msg_id,
                counter=counter_id,
                state=counter.state.value,
                ticket=ticket_info(current) if current else None,
                affected=ticket_info(affected) if affected else None,
            )

        return self._once(actor, command, decide, answer)

    def _once(
        self,
        sender: str,
        request: p.Request,
        decide: Callable[[datetime], Change],
        answer: Callable[[Change], p.Message],
    ) -> bytes:
        """Run ``decide`` at most once per (sender, msg_id); the reply is kept with it."""

        def reply(outcome: Change | QueueError) -> bytes:
            if isinstance(outcome, QueueError):
                return error_reply(
                    request.msg_id, outcome.code, outcome.message, service=outcome.service
                )
            return answer(outcome).encode()

        payload, duplicate = self.queue.apply_once(sender, request.msg_id, decide, reply)
        if duplicate:
            log.info("%s resent %s; answered from its receipt", sender, request.msg_id)
        return payload

    def _ticket_after(self, change: Change, ticket_id: str | None) -> Ticket | None:
        if ticket_id is None:
            return None
        try:
            return change.ticket(ticket_id)
        except KeyError:
            return self.queue.live_ticket(ticket_id)

    def _status(self, status: p.DeviceStatus, device_id: str) -> None:
        view = self._device(device_id)
        view.status = status
        self._heard(view)

    def _health(self, health: p.DeviceHealth, device_id: str) -> None:
        view = self._device(device_id)
        view.health = health
        self._heard(view)

    def _device(self, device_id: str) -> DeviceView:
        view = self.devices.get(device_id)
        if view is None:
            view = self.devices[device_id] = DeviceView(device_id)
        return view

    def _heard(self, view: DeviceView) -> None:
        view.last_seen = self.queue.clock()
        for listener in self._device_listeners:
            listener(view)

    # -- outbound ------------------------------------------------------------------

    def publish_change(self, change: Change) -> None:
        """Publish the calls a change made and the retained state it touched."""
        engine = self.queue.engine
        if change.day is not None:
            # A new day: yesterday's last calls are no news for a display starting now.
            for counter_id in sorted(engine.counters):
                for slot in range(p.CALL_SLOTS):
                    topic = self.topics.counter_call(counter_id, str(slot))
                    self.publisher.publish(topic, b"", retain=True, durable=True)
            self._call_slots.clear()
        for call in calls_of(change, engine):
            self._publish_call(call)
        # Only what changed: a service whose tickets moved, a counter that changed
        # (its ticket or its state) or whose ticket changed (a recall counts its calls).
        # Waiting counts travel in queue/<service> only.
        services = {t.service for t in change.tickets}
        counters = {c.id for c in change.counters} | {
            t.counter
            for t in change.tickets
            if t.counter in engine.counters and engine.counters[t.counter].current == t.id
        }
        if change.day is not None or (not change.tickets and not change.counters):
            # A new day (every counter state carries it) or a catalog change: everything.
            services, counters = set(engine.services), set(engine.counters)
        for code in sorted(services & set(engine.services)):
            self._publish_queue(code)
        for counter_id in sorted(counters & set(engine.counters)):
            self._publish_counter(engine.counters[counter_id])

    def publish_all(self) -> None:
        """Publish every retained queue and counter state (at start and after reconnect)."""
        for code in self.queue.engine.services:
            self._publish_queue(code)
        for counter in self.queue.engine.counters.values():
            self._publish_counter(counter)

    def _publish_call(self, call: p.Call) -> None:
        """Publish ``call`` on ``calls`` and retained in its counter's next call slot.

        Both go through the durable outbox (in order, after an outage too), with the
        message expiry that tells receivers the call's age (``CALL_LIFETIME_S``).
        """
        age_s = (self.queue.clock() - call.called_at).total_seconds()
        expiry_s = max(1, p.CALL_LIFETIME_S - math.floor(max(0.0, age_s)))
        payload = call.encode()
        self.publisher.publish(self.topics.calls(), payload, expiry_s=expiry_s, durable=True)
        slot = self._call_slots.get(call.counter, 0)
        self._call_slots[call.counter] = (slot + 1) % p.CALL_SLOTS
        self.publisher.publish(
            self.topics.counter_call(call.counter, str(slot)),
            payload,
            retain=True,
            expiry_s=expiry_s,
            durable=True,
        )

    def _publish_queue(self, code: str) -> None:
        state = queue_state(self.queue.engine, code, self.queue.clock())
        self.publisher.publish(self.topics.queue(code), state.encode(), retain=True)

    def _publish_counter(self, counter: Counter) -> None:
        engine = self.queue.engine
        current = engine.tickets.get(counter.current) if counter.current else None
        state = p.CounterState(
            counter=counter.id,
            name=counter.name,
            state=counter.state.value,
            services=list(counter.services),
            ticket=ticket_info(current) if current else None,
            at=self.queue.clock(),
            business_day=engine.day,
        )
        self.publisher.publish(self.topics.counter_state(counter.id), state.encode(), retain=True)


Handler = Callable[[HubBridge, Any, str], bytes | None]
"""What the bridge does with one inbound message: given the checked payload (of the
kind's :data:`~sync_agent.protocol.INBOUND` schema) and the topic's id, the encoded reply
or ``None``."""

HANDLERS: dict[str, Handler] = {
    "kiosk_issue": HubBridge._issue,
    "kiosk_blocks": HubBridge._reserve,
    "kiosk_offline": HubBridge._offline,
    "kiosk_checkin": HubBridge._checkin,
    "counter_cmd": HubBridge._command,
    "counter_rating": HubBridge._rating,
    "device_status": HubBridge._status,
    "device_health": HubBridge._health,
    "eservice_update": HubBridge._eservice,
}
"""The handler of each inbound kind; the topics and schemas are the protocol's
:data:`~sync_agent.protocol.INBOUND`, of which every kind must be here."""


def error_reply(
    msg_id: str | None, code: str, message: str, *, service: str | None = None
) -> bytes:
    """The encoded reply to a refused request (``service``: one the device may offer instead)."""
    error = p.ErrorBody(code=code, message=message, service=service)
    return p.ErrorReply(msg_id=msg_id, error=error).encode()


def ticket_info(ticket: Ticket) -> p.TicketInfo:
    """A ticket as the protocol shows it to counters and displays."""
    return p.TicketInfo(
        ticket_id=ticket.id,
        number=ticket.number,
        service=ticket.service,
        state=ticket.state.value,
        calls=ticket.calls,
        called_at=ticket.called_at,
        issued_at=ticket.issued_at,
        appointment_at=ticket.slot_at,
        remote=ticket.remote,
        priority=ticket.priority is not None,
    )


def _latest_counter(change: Change, counter_id: str) -> Counter | None:
    for counter in reversed(change.counters):
        if counter.id == counter_id:
            return counter
    return None
