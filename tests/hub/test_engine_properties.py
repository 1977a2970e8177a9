"""Property-based tests: the queue's invariants hold under any sequence of operations.

Kiosks take part too: they reserve blocks, issue from them while the hub is away and
deliver those tickets later, in any order, and the hub restarts from what a store keeps.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import cast
from zoneinfo import ZoneInfo

from appointment_helpers import make_appointment
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from common.numbering import ONLINE_SEQ_LAST, display_number
from hub import demo_office
from hub.engine import Engine, QueueError, QueuePolicy, Snapshot, front
from hub.model import (
    HUB_DEVICE_ID,
    Action,
    Appointment,
    Change,
    NumberBlock,
    Priority,
    RemoteRules,
    Service,
    Ticket,
    TicketState,
)

TZ = ZoneInfo("Europe/Bratislava")
START = datetime(2026, 3, 2, 7, 0, tzinfo=TZ).astimezone(UTC)
REMOTE = RemoteRules(enabled=True, daily_quota=1000, stop_before_close_s=0, max_passes=2)
"""Taxes and parking take remote tickets; taxes requires the holder's presence."""
SERVICES = (
    *(
        dataclasses.replace(s, remote=dataclasses.replace(REMOTE, presence=s.code == "taxes"))
        if s.code in ("taxes", "parking")
        else s
        for s in demo_office.SERVICES
    ),
    Service("vip", "V", {"sk": "VIP"}, weight=2.5),
)
RULES = {s.code: s.remote for s in SERVICES}
COUNTERS = demo_office.COUNTERS
counter_ids = st.sampled_from([c.id for c in COUNTERS])
service_codes = st.sampled_from([s.code for s in SERVICES])
kiosk_ids = st.sampled_from(["k1", "k2"])
POLICY = QueuePolicy(
    max_calls=2,
    checkin_early_s=30 * 60,
    checkin_grace_s=10 * 60,
    call_window_s=120,
    walk_in_target_wait_s=10 * 60,
    appointment_share=0.5,
    share_window=4,
)


class QueueMachine(RuleBasedStateMachine):
    """Drives one engine with random clerks and citizens and checks it after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.ids = count(1)
        self.now = START
        self.engine = Engine(
            timezone=TZ,
            policy=POLICY,
            services=SERVICES,
            counters=COUNTERS,
            day=START.astimezone(TZ).date(),
            new_id=self.new_id,
        )
        self.finished: dict[str, TicketState] = {}
        self.seen: set[tuple[str, object, int]] = set()
        self.bookings: list[Appointment] = []
        """Every booking a citizen tried to check in with."""
        self.checked_in: dict[str, str] = {}
        """Ticket id by appointment id: each booking's one ticket."""
        self.calls: list[bool] = []
        """Today's calls from the queue, in order: whether each went to an appointment."""
        self.booked_calls: dict[str, int] = {}
        self.transfers: dict[str, int] = {}
        self.stored: dict[str, Ticket] = {}
        """Every ticket's latest version, as the store keeps it."""
        self.blocks: list[NumberBlock] = []
        """Every block reserved, as the store keeps them."""
        self.taken: dict[str, int] = {}
        """Per block id, how many of its numbers its kiosk has issued offline."""
        self.outbox: list[Ticket] = []
        """Tickets kiosks issued offline and have not delivered yet."""
        self.printed: dict[str, Ticket] = {}
        """Every ticket kiosks issued offline, as printed."""
        self.recorded: Counter[str] = Counter()
        """How often the hub took in each offline ticket."""
        self.codes = count(100000)

    def new_id(self) -> str:
        return f"t{next(self.ids)}"

    def held_back(self, ticket: Ticket) -> bool:
        """A remote ticket whose holder has not checked in, where presence is required."""
        rules = RULES[ticket.service]
        return ticket.remote and ticket.checked_in_at is None and rules.presence

    def commit(self, change: Change) -> None:
        for event in change.events:
            if event.ticket_id is None or event.action not in (Action.PASS, Action.EXPIRE):
                continue
            old = self.stored.get(event.ticket_id)
            if old is None:  # issued in this change (an offline ticket delivered late)
                continue
            if event.action is Action.PASS or event.detail.get("reason") == "not_checked_in":
                assert self.held_back(old), f"{old.number} was passed over while present"
            if event.action is Action.EXPIRE and event.detail.get("reason") == "not_checked_in":
                assert old.passes == RULES[old.service].max_passes, "expired before its passes"
        for ticket in change.tickets:
            if ticket.state is TicketState.CALLED:
                assert not self.held_back(ticket), f"unchecked remote {ticket.number} was called"
            assert ticket.passes <= RULES[ticket.service].max_passes, "held back too often"
            assert ticket.id not in self.finished, f"{ticket.number} changed after it ended"
            if ticket.state.terminal:
                self.finished[ticket.id] = ticket.state
            if ticket.id in change.new_ticket_ids:
                key = (ticket.number_service, ticket.business_day, ticket.seq)
                assert key not in self.seen, f"sequence {key} issued twice"
                self.seen.add(key)
                if ticket.appointment is not None:
                    assert ticket.appointment not in self.checked_in, "a slot checked in twice"
                    self.checked_in[ticket.appointment] = ticket.id
                if ticket.origin == HUB_DEVICE_ID:
                    self.check_next_online_number(ticket)
                else:
                    self.recorded[ticket.id] += 1
            self.stored[ticket.id] = ticket
        self.blocks.extend(change.blocks)
        if change.day is not None and change.day != self.engine.day:
            self.calls.clear()
        for event in change.events:
            ticket = change.ticket(cast(str, event.ticket_id)) if event.ticket_id else None
            if ticket is None:
                continue
            if event.action is Action.CALL:
                self.calls.append(ticket.booked)
                if ticket.booked:
                    self.booked_calls[ticket.id] = self.booked_calls.get(ticket.id, 0) + 1
            elif event.action is Action.TRANSFER:
                self.transfers[ticket.id] = self.transfers.get(ticket.id, 0) + 1
        self.engine.apply(change)

    def check_next_online_number(self, ticket: Ticket) -> None:
        """The hub's own tickets of a day are 001, 002, 003… in order of issue."""
        before = sum(
            1
            for t in self.stored.values()
            if t.origin == HUB_DEVICE_ID
            and t.business_day == ticket.business_day
            and t.number_service == ticket.number_service
        )
        assert ticket.seq == before + 1, f"{ticket.number} is not online number {before + 1}"
        assert ticket.number == display_number(ticket.number[0], before + 1)

    def attempt(self, operation: object, *args: object) -> Change | None:
        try:
            change = operation(*args, self.now)  # type: ignore[operator]
        except QueueError as refused:
            assert refused.code, refused.message
            return None
        self.commit(change)
        return change

    @rule(minutes=st.integers(min_value=0, max_value=240))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        rollover = self.engine.roll_over(self.now)
        if rollover is not None:
            self.commit(rollover)
            assert all(t.business_day == self.engine.day for t in self.engine.tickets.values())

    @rule(
        service=service_codes,
        priority=st.none() | st.sampled_from(Priority),
    )
    def citizen_takes_a_ticket(self, service: str, priority: Priority | None) -> None:
        try:
            change = self.engine.issue(service, self.now, priority=priority)
        except QueueError as refused:
            # A day this short never runs out of numbers, whatever the kiosks reserved.
            assert refused.code != "numbers_exhausted", refused.message
            return
        self.commit(change)

    @rule(service=service_codes)
    def citizen_takes_a_remote_ticket(self, service: str) -> None:
        code = f"{next(self.codes):06d}"
        try:
            change = self.engine.issue_remote(service, self.now, code=code)
        except QueueError as refused:
            if not RULES[service].enabled:
                assert refused.code == "remote_disabled", refused.code
            return
        assert change.subject is not None
        assert change.subject.remote
        assert change.subject.priority is None
        self.commit(change)

    @rule(data=st.data(), known=st.booleans())
    def remote_citizen_checks_in(self, data: st.DataObject, known: bool) -> None:
        live = sorted(t.remote_code for t in self.engine.tickets.values() if t.remote_code)
        code = data.draw(st.sampled_from(live)) if known and live else "999999"
        ticket = self.engine.remote_ticket(code)
        try:
            change = self.engine.check_in_remote(code, self.now)
        except QueueError as refused:
            if ticket is None:
                assert refused.code in ("unknown_booking", "day_changed"), refused.code
            elif ticket.checked_in_at is not None:
                assert refused.code == "checked_in"
            return
        assert ticket is not None
        self.commit(change)

    @rule(
        service=service_codes,
        slot_in=st.integers(min_value=-20, max_value=45),
        again=st.booleans(),
    )
    def citizen_checks_in(self, service: str, slot_in: int, again: bool) -> None:
        if again and self.bookings:
            booking = self.bookings[-1]
        else:
            booking = make_appointment(service, self.now + timedelta(minutes=slot_in))
            self.bookings.append(booking)
        try:
            change = self.engine.check_in(booking, self.now, lang="sk")
        except QueueError as refused:
            slot, now = booking.starts_at, self.now
            if booking.id in self.checked_in and self.engine.is_checked_in(booking.id):
                assert refused.code == "checked_in"
            elif now < slot - timedelta(seconds=POLICY.checkin_early_s):
                assert refused.code == "too_early"
            elif now > slot + timedelta(seconds=POLICY.checkin_grace_s):
                assert refused.code == "too_late"
            else:
                assert refused.code in ("day_changed", "too_early", "too_late"), refused.code
            return
        assert booking.id not in self.checked_in, "a booking was checked in twice"
        self.commit(change)

    @rule(counter=counter_ids)
    def clerk_presses_next(self, counter: str) -> None:
        before = dict(self.engine.tickets)
        weights = {s.code: s.weight for s in SERVICES}
        served = self.engine.counters[counter].services
        at = self.now
        recent = self.calls[-(POLICY.share_window - 1) :]
        change = self.attempt(self.engine.call_next, counter)
        if change is None or change.subject is None:
            if change is not None:
                assert not any(
                    t.state is TicketState.WAITING and t.service in served and not self.held_back(t)
                    for t in before.values()
                ), "next called nobody although someone waited"
            return
        called = before[change.subject.id]
        rivals = [
            t
            for t in before.values()
            if t.state is TicketState.WAITING and t.service in served and not self.held_back(t)
        ]
        assert called in rivals
        window = timedelta(seconds=POLICY.call_window_s)
        due = [t for t in rivals if t.booked and t.slot_at and at >= t.slot_at - window]
        starving = any(
            not t.booked and (at - t.arrived_at).total_seconds() > POLICY.walk_in_target_wait_s
            for t in rivals
        )
        capped = starving and (sum(recent) + 1) / (len(recent) + 1) > POLICY.appointment_share
        walk_ins = [t for t in rivals if not t.booked]
        if due and not (capped and walk_ins):
            assert called in due, "a due appointment was passed over"
            assert called.slot_at == min(t.slot_at for t in due if t.slot_at), "not the first slot"
            return
        if due:
            # Walk-ins past the target wait: the cap keeps appointments to their share.
            assert not called.booked, "an appointment took more than its share of calls"
            rivals = walk_ins
        if any(t.priority for t in rivals):
            assert called.priority is not None, "a priority ticket was passed over"
            rivals = [t for t in rivals if t.priority]

        def weighted(t: Ticket) -> float:
            since = t.slot_at if t.booked and t.slot_at else t.arrived_at
            return (at - since).total_seconds() * weights[t.service]

        assert weighted(called) == max(weighted(t) for t in rivals), "not the longest wait"

    @rule(
        counter=counter_ids,
        action=st.sampled_from(["recall", "done", "no_show", "start", "park", "pause", "resume"]),
    )
    def clerk_acts(self, counter: str, action: str) -> None:
        self.attempt(getattr(self.engine, action), counter)

    @rule(counter=counter_ids, service=service_codes)
    def clerk_transfers(self, counter: str, service: str) -> None:
        self.attempt(lambda c, now: self.engine.transfer(c, service, now), counter)

    @precondition(
        lambda self: any(t.state is TicketState.PARKED for t in self.engine.tickets.values())
    )
    @rule(counter=counter_ids, data=st.data())
    def clerk_returns_a_parked_ticket(self, counter: str, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(self.parked()))
        self.attempt(lambda c, now: self.engine.unpark(c, ticket, now), counter)

    @rule(device=kiosk_ids, service=service_codes, size=st.integers(min_value=1, max_value=30))
    def kiosk_reserves_a_block(self, device: str, service: str, size: int) -> None:
        self.attempt(lambda s, now: self.engine.reserve(device, s, size, now), service)

    def usable_blocks(self) -> list[NumberBlock]:
        return [
            b
            for b in self.blocks
            if b.business_day == self.engine.day
            and self.taken.get(b.id, 0) < b.last_seq - b.first_seq + 1
        ]

    @precondition(lambda self: self.usable_blocks())
    @rule(data=st.data())
    def kiosk_issues_offline(self, data: st.DataObject) -> None:
        """A kiosk whose hub does not answer takes the next number of one of its blocks."""
        block = data.draw(st.sampled_from(self.usable_blocks()))
        seq = block.first_seq + self.taken.get(block.id, 0)
        self.taken[block.id] = self.taken.get(block.id, 0) + 1
        printed = Ticket(
            id=self.new_id(),
            number_service=block.service,
            business_day=block.business_day,
            seq=seq,
            number=display_number(block.prefix, seq),
            service=block.service,
            issued_at=self.now,
            arrived_at=self.now,
            origin=block.device,
        )
        self.printed[printed.id] = printed
        self.outbox.append(printed)

    def block_of(self, ticket: Ticket) -> NumberBlock:
        return next(
            b
            for b in self.blocks
            if b.device == ticket.origin
            and b.service == ticket.number_service
            and b.business_day == ticket.business_day
            and b.holds(ticket.seq)
        )

    @precondition(lambda self: self.outbox)
    @rule(data=st.data())
    def kiosk_delivers(self, data: st.DataObject) -> None:
        """The outbox delivers an offline ticket, in any order; the hub always takes it."""
        ticket = self.outbox.pop(data.draw(st.integers(0, len(self.outbox) - 1)))
        self.commit(self.engine.record_offline(self.block_of(ticket), ticket, self.now))

    @precondition(
        lambda self: any(self.stored[t].business_day == self.engine.day for t in self.recorded)
    )
    @rule(data=st.data())
    def kiosk_delivers_again(self, data: st.DataObject) -> None:
        """A ticket of today delivered again (say, from a restored outbox) is refused."""
        today = sorted(t for t in self.recorded if self.stored[t].business_day == self.engine.day)
        ticket = self.printed[data.draw(st.sampled_from(today))]
        try:
            self.engine.record_offline(self.block_of(ticket), ticket, self.now)
        except QueueError as refused:
            assert refused.code == "duplicate_ticket", refused.message
        else:
            raise AssertionError(f"{ticket.number} was taken in twice")

    @rule()
    def hub_restarts(self) -> None:
        """The hub resumes from what the store kept, as ``Store.snapshot`` reads it."""
        day = self.engine.day
        of_day = [t for t in self.stored.values() if t.business_day == day]
        last_seq: dict[str, int] = {}
        issued: Counter[str] = Counter()
        for t in of_day:
            issued[t.number_service] += 1
            if t.seq <= ONLINE_SEQ_LAST:
                last_seq[t.number_service] = max(last_seq.get(t.number_service, 0), t.seq)
        snapshot = Snapshot(
            day=day,
            services=list(self.engine.services.values()),
            counters=list(self.engine.counters.values()),
            tickets=sorted(
                (t for t in self.stored.values() if t.state.live), key=lambda t: t.issued_at
            ),
            last_seq=last_seq,
            issued=dict(issued),
            blocks=[b for b in self.blocks if b.business_day == day],
            delivered={(t.number_service, t.seq) for t in of_day if t.origin != HUB_DEVICE_ID},
            checked_in={t.appointment for t in of_day if t.appointment is not None},
            remote_issued=dict(Counter(t.number_service for t in of_day if t.remote)),
        )
        self.engine = Engine.from_snapshot(snapshot, timezone=TZ, policy=POLICY, new_id=self.new_id)
        self.calls.clear()  # the appointments' share is counted afresh after a restart

    @invariant()
    def offline_tickets_are_taken_in_exactly_once(self) -> None:
        assert all(n == 1 for n in self.recorded.values())
        assert not set(self.recorded) & {t.id for t in self.outbox}

    def parked(self) -> list[str]:
        return sorted(t.id for t in self.engine.tickets.values() if t.state is TicketState.PARKED)

    @invariant()
    def no_two_live_tickets_share_a_number(self) -> None:
        numbers = [t.number for t in self.engine.tickets.values()]
        assert len(numbers) == len(set(numbers))

    @invariant()
    def counters_and_tickets_agree(self) -> None:
        at_counters = {
            c.current: c.id for c in self.engine.counters.values() if c.current is not None
        }
        for ticket in self.engine.tickets.values():
            assert ticket.state.live
            if ticket.state in (TicketState.CALLED, TicketState.SERVING):
                assert at_counters.get(ticket.id) == ticket.counter
        for ticket_id in at_counters:
            assert self.engine.tickets[ticket_id].state in (TicketState.CALLED, TicketState.SERVING)

    @invariant()
    def waiting_counts_match_the_tickets(self) -> None:
        for service in SERVICES:
            waiting = [
                t
                for t in self.engine.tickets.values()
                if t.state is TicketState.WAITING and t.service == service.code
            ]
            assert self.engine.waiting_count(service.code) == len(waiting), service.code

    @invariant()
    def the_front_of_each_queue_matches_each_estimate(self) -> None:
        waiting = [t for t in self.engine.tickets.values() if t.state is TicketState.WAITING]
        ahead = {t.id: self.engine.estimate(t).people_ahead for t in waiting}
        rivals = self.engine.rivals()
        whole = front(rivals, lambda _service: len(waiting))
        assert {t: n for t, (_ticket, n) in whole.items()} == ahead
        near = front(rivals, lambda service: len(service) % 3)  # 0 to 2 ahead, by service
        assert {t: n for t, (_ticket, n) in near.items()} == {
            t.id: ahead[t.id] for t in waiting if ahead[t.id] <= len(t.service) % 3
        }

    @invariant()
    def each_appointment_is_called_once_per_queue_it_joins(self) -> None:
        for ticket_id, calls in self.booked_calls.items():
            assert calls <= 1 + self.transfers.get(ticket_id, 0), ticket_id

    @invariant()
    def each_checked_in_ticket_is_its_bookings_only_ticket(self) -> None:
        for ticket in self.engine.tickets.values():
            if ticket.appointment is not None:
                assert self.checked_in[ticket.appointment] == ticket.id

    @invariant()
    def recalls_never_exceed_the_limit(self) -> None:
        assert all(t.calls <= 2 for t in self.engine.tickets.values())

    @invariant()
    def unchecked_remote_tickets_are_never_at_a_counter(self) -> None:
        for ticket in self.engine.tickets.values():
            if ticket.state is not TicketState.WAITING:
                assert not self.held_back(ticket), ticket.number


QueueMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestQueueProperties = QueueMachine.TestCase
