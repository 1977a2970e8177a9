"""Property-based tests: the queue's invariants hold under any sequence of operations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import cast
from zoneinfo import ZoneInfo

from appointment_helpers import make_appointment
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hub import demo_office
from hub.engine import Engine, QueueError, QueuePolicy
from hub.model import Action, Appointment, Change, Priority, Service, Ticket, TicketState

TZ = ZoneInfo("Europe/Bratislava")
START = datetime(2026, 3, 2, 7, 0, tzinfo=TZ).astimezone(UTC)
SERVICES = (*demo_office.SERVICES, Service("vip", "V", {"sk": "VIP"}, weight=2.5))
COUNTERS = demo_office.COUNTERS
counter_ids = st.sampled_from([c.id for c in COUNTERS])
service_codes = st.sampled_from([s.code for s in SERVICES])
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
        ids = count(1)
        self.now = START
        self.engine = Engine(
            timezone=TZ,
            policy=POLICY,
            services=SERVICES,
            counters=COUNTERS,
            day=START.astimezone(TZ).date(),
            new_id=lambda: f"t{next(ids)}",
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

    def commit(self, change: Change) -> None:
        for ticket in change.tickets:
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
        self.attempt(lambda s, now: self.engine.issue(s, now, priority=priority), service)

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
                    t.state is TicketState.WAITING and t.service in served for t in before.values()
                ), "next called nobody although someone waited"
            return
        called = before[change.subject.id]
        rivals = [
            t for t in before.values() if t.state is TicketState.WAITING and t.service in served
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


QueueMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestQueueProperties = QueueMachine.TestCase
