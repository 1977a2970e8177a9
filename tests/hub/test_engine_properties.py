"""Property-based tests: the queue's invariants hold under any sequence of operations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hub import demo_office
from hub.engine import Engine, QueueError, QueuePolicy
from hub.model import Change, Priority, Service, Ticket, TicketState

TZ = ZoneInfo("Europe/Bratislava")
START = datetime(2026, 3, 2, 7, 0, tzinfo=TZ).astimezone(UTC)
SERVICES = (*demo_office.SERVICES, Service("vip", "V", {"sk": "VIP"}, weight=2.5))
COUNTERS = demo_office.COUNTERS
counter_ids = st.sampled_from([c.id for c in COUNTERS])
service_codes = st.sampled_from([s.code for s in SERVICES])


class QueueMachine(RuleBasedStateMachine):
    """Drives one engine with random clerks and citizens and checks it after every step."""

    def __init__(self) -> None:
        super().__init__()
        ids = count(1)
        self.now = START
        self.engine = Engine(
            timezone=TZ,
            policy=QueuePolicy(max_calls=2),
            services=SERVICES,
            counters=COUNTERS,
            day=START.astimezone(TZ).date(),
            new_id=lambda: f"t{next(ids)}",
        )
        self.finished: dict[str, TicketState] = {}
        self.seen: set[tuple[str, object, int]] = set()

    def commit(self, change: Change) -> None:
        for ticket in change.tickets:
            assert ticket.id not in self.finished, f"{ticket.number} changed after it ended"
            if ticket.state.terminal:
                self.finished[ticket.id] = ticket.state
            if ticket.id in change.new_ticket_ids:
                key = (ticket.number_service, ticket.business_day, ticket.seq)
                assert key not in self.seen, f"sequence {key} issued twice"
                self.seen.add(key)
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

    @rule(counter=counter_ids)
    def clerk_presses_next(self, counter: str) -> None:
        before = dict(self.engine.tickets)
        weights = {s.code: s.weight for s in SERVICES}
        served = self.engine.counters[counter].services
        at = self.now
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
        if any(t.priority for t in rivals):
            assert called.priority is not None, "a priority ticket was passed over"
            rivals = [t for t in rivals if t.priority]

        def weighted(t: Ticket) -> float:
            return (at - t.arrived_at).total_seconds() * weights[t.service]

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
    def recalls_never_exceed_the_limit(self) -> None:
        assert all(t.calls <= 2 for t in self.engine.tickets.values())


QueueMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestQueueProperties = QueueMachine.TestCase
