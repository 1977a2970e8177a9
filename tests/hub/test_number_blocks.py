"""Number blocks for offline issuing: the engine's rules, the store, and the hub over MQTT."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from office_helpers import RunningHub
from test_engine import TZ, at, issue, make_engine, run

from common.numbering import OFFLINE_SEQ_TOP as TOP
from common.numbering import ONLINE_SEQ_LAST
from hub.engine import Engine, QueueError, QueuePolicy, Snapshot
from hub.model import Action, NumberBlock, Ticket, TicketState
from hub.service import QueueService
from hub.store import Store
from sync_agent import protocol as p
from sync_agent.link import DeviceLink


def reserve(
    engine: Engine, service: str, size: int, minute: float, device: str = "k1"
) -> NumberBlock:
    change = run(engine, engine.reserve(device, service, size, at(minute), actor=f"kiosk:{device}"))
    (block,) = change.blocks
    return block


def offline_ticket(block: NumberBlock, seq: int, minute: float, **changes: object) -> Ticket:
    number = f"{block.prefix}{(seq - 1) % 999 + 1:03d}"
    ticket = Ticket(
        id=uuid.uuid4().hex,
        number_service=block.service,
        business_day=block.business_day,
        seq=seq,
        number=number,
        service=block.service,
        issued_at=at(minute),
        arrived_at=at(minute),
        origin=block.device,
    )
    return ticket.evolve(**changes)


# -- the engine ------------------------------------------------------------------------


def test_blocks_come_from_the_top_and_the_hub_numbers_from_001() -> None:
    engine = make_engine()
    first = reserve(engine, "taxes", 10, 0)
    # The day's first block is the top of its sequences, shown as A990…A999.
    assert (first.first_seq, first.last_seq, first.prefix) == (TOP - 9, TOP, "A")
    assert first.business_day == at(0).astimezone(TZ).date()
    assert [offline_ticket(first, seq, 0).number for seq in (first.first_seq, TOP)] == [
        "A990",
        "A999",
    ]
    assert issue(engine, "taxes", 1) == "A001"
    # The next block lies below the first, whoever asks; the hub goes on in order.
    second = reserve(engine, "taxes", 5, 2, "k2")
    assert (second.first_seq, second.last_seq) == (TOP - 14, TOP - 10)
    assert [issue(engine, "taxes", 3 + n) for n in range(2)] == ["A002", "A003"]
    # A reservation is not an issue.
    assert engine.issued_today("taxes") == 3
    assert engine.waiting_count("taxes") == 3


def test_a_reservation_is_audited_and_refuses_bad_sizes() -> None:
    engine = make_engine()
    change = engine.reserve("k1", "waste", 5, at(0), actor="kiosk:k1")
    (event,) = change.events
    assert event.action is Action.RESERVE
    assert event.detail == {
        "device": "k1",
        "block": change.blocks[0].id,
        "first_seq": TOP - 4,
        "last_seq": TOP,
    }
    for size in (0, 101):
        with pytest.raises(QueueError) as refused:
            engine.reserve("k1", "waste", size, at(0))
        assert refused.value.code == "invalid_size"
    with pytest.raises(QueueError) as unknown:
        engine.reserve("k1", "nope", 5, at(0))
    assert unknown.value.code == "unknown_service"


def test_blocks_of_two_kiosks_do_not_overlap() -> None:
    engine = make_engine()
    first = reserve(engine, "info", 20, 0, "k1")
    second = reserve(engine, "info", 20, 0, "k2")
    assert second.last_seq < first.first_seq
    assert issue(engine, "info", 1) == "D001"


def test_a_block_never_holds_a_live_number_and_the_hub_goes_around_blocks() -> None:
    engine = make_engine()
    engine._last_seq["parking"] = 995  # late in a very busy day
    live = [issue(engine, "parking", 0) for _ in range(3)]  # C996…C998 stay waiting
    assert live == ["C996", "C997", "C998"]
    block = reserve(engine, "parking", 5, 1)
    # C999 would do, but C998…C996 are live: the run starts below them (C991…C995).
    assert (block.first_seq, block.last_seq) == (TOP - 8, TOP - 4)
    assert offline_ticket(block, block.first_seq, 1).number == "C991"
    # The engine's own numbers wrap and go around the block's.
    engine._last_seq["parking"] = 989
    assert [issue(engine, "parking", 2 + n) for n in range(4)] == ["C990", "C999", "C001", "C002"]


def test_the_hub_never_takes_the_offline_sequences() -> None:
    engine = make_engine()
    engine._last_seq["taxes"] = ONLINE_SEQ_LAST - 1
    assert issue(engine, "taxes", 0) == "A999"
    with pytest.raises(QueueError) as refused:
        engine.issue("taxes", at(1))
    assert refused.value.code == "numbers_exhausted"
    # An offline ticket does not move the hub's own numbering.
    fresh = make_engine()
    block = reserve(fresh, "taxes", 3, 0)
    run(fresh, fresh.record_offline(block, offline_ticket(block, TOP, 0), at(1)))
    assert issue(fresh, "taxes", 2) == "A001"


def test_a_block_reserved_among_the_hub_numbers_before_an_upgrade_still_works() -> None:
    before = make_engine()
    old = dataclasses.replace(reserve(before, "taxes", 5, 0), first_seq=1, last_seq=5)
    delivered = offline_ticket(old, 2, 0)
    snapshot = Snapshot(
        day=old.business_day,
        services=list(before.services.values()),
        counters=list(before.counters.values()),
        tickets=[delivered],
        last_seq={"taxes": 2},
        issued={"taxes": 1},
        blocks=[old],
        delivered={("taxes", 2)},
    )
    engine = Engine.from_snapshot(snapshot, timezone=TZ)
    # The hub goes on after the highest sequence of the day and skips the numbers still
    # out (A003…A005).
    assert [issue(engine, "taxes", 1 + n) for n in range(2)] == ["A006", "A007"]
    late = offline_ticket(old, 1, 0.5)
    assert run(engine, engine.record_offline(old, late, at(3))).subject == late.evolve(
        state=TicketState.WAITING
    )
    # New blocks come from the top.
    assert reserve(engine, "taxes", 5, 4).last_seq == TOP


def test_a_number_is_delivered_once() -> None:
    engine = make_engine()
    block = reserve(engine, "taxes", 3, 0)
    ticket = offline_ticket(block, TOP, 0)
    run(engine, engine.record_offline(block, ticket, at(1)))
    run(engine, engine.call_next("2", at(2)))
    run(engine, engine.done("2", at(3)))  # no longer live, but its number came back
    for again in (ticket, offline_ticket(block, TOP, 0)):
        with pytest.raises(QueueError) as refused:
            engine.record_offline(block, again, at(4))
        assert refused.value.code == "duplicate_ticket"


def test_a_kiosk_holds_at_most_max_kiosk_blocks_unused_per_service_and_day() -> None:
    engine = make_engine(QueuePolicy(max_kiosk_blocks=2))
    first = reserve(engine, "taxes", 3, 0)
    reserve(engine, "taxes", 3, 1)
    with pytest.raises(QueueError) as refused:
        engine.reserve("k1", "taxes", 3, at(2))
    assert refused.value.code == "too_many_blocks"
    assert "k1" in refused.value.message
    # Per kiosk and per service.
    reserve(engine, "taxes", 3, 3, "k2")
    reserve(engine, "waste", 3, 3)
    # A block whose numbers have all come back as tickets no longer counts...
    for seq in range(first.first_seq, first.last_seq):
        run(engine, engine.record_offline(first, offline_ticket(first, seq, 4), at(5)))
    with pytest.raises(QueueError):
        engine.reserve("k1", "taxes", 3, at(6))
    last = offline_ticket(first, first.last_seq, 4)
    run(engine, engine.record_offline(first, last, at(6)))
    assert engine.unused_blocks("k1", "taxes") == 1
    reserve(engine, "taxes", 3, 7)
    # ... and a new day starts with none.
    run(engine, engine.roll_over(at(24 * 60 + 1)))
    assert engine.unused_blocks("k1", "taxes") == 0
    reserve(engine, "taxes", 3, 24 * 60 + 2)


def test_the_block_cap_holds_after_a_restart(store: Store) -> None:
    queue = QueueService.open(store, timezone=TZ, clock=lambda: at(0))
    from hub.app import seed_demo

    seed_demo(queue)
    for _ in range(2):
        queue._commit(queue.engine.reserve("k1", "taxes", 5, at(0), actor="kiosk:k1"))
    again = QueueService.open(store, timezone=TZ, clock=lambda: at(0))
    assert again.engine.unused_blocks("k1", "taxes") == 2
    with pytest.raises(QueueError) as refused:
        again.engine.reserve("k1", "taxes", 5, at(1))
    assert refused.value.code == "too_many_blocks"


def test_an_offline_ticket_joins_the_queue_by_its_issue_time() -> None:
    engine = make_engine()
    block = reserve(engine, "taxes", 10, 0)
    hub_ticket = issue(engine, "taxes", 5)
    offline = offline_ticket(block, block.first_seq, 3)
    change = run(engine, engine.record_offline(block, offline, at(20), actor="kiosk:k1"))
    recorded = change.subject
    assert recorded is not None
    assert recorded.state is TicketState.WAITING
    assert recorded.origin == "k1"
    assert recorded.arrived_at == at(3)
    assert change.events[0].detail == {"offline": True, "device": "k1"}
    assert engine.issued_today("taxes") == 2
    # Issued at minute 3, it is called before the hub's ticket of minute 5.
    called = run(engine, engine.call_next("2", at(21))).subject
    assert called is not None
    assert called.number == "A990"
    assert hub_ticket == "A001"


def test_an_offline_ticket_must_come_from_the_kiosks_own_block() -> None:
    engine = make_engine()
    block = reserve(engine, "taxes", 5, 0, "k1")
    cases = [
        (None, offline_ticket(block, TOP, 1), "not_reserved"),
        (block, offline_ticket(block, TOP, 1, origin="k2"), "not_reserved"),
        (block, offline_ticket(block, TOP - 5, 1), "not_reserved"),
        (block, offline_ticket(block, 1, 1), "not_reserved"),
        (block, offline_ticket(block, TOP, 1, number="A007"), "invalid_number"),
    ]
    for given, ticket, code in cases:
        with pytest.raises(QueueError) as refused:
            engine.record_offline(given, ticket, at(2))
        assert refused.value.code == code


def test_an_offline_ticket_is_taken_even_when_the_service_closed_meanwhile() -> None:
    engine = make_engine()
    block = reserve(engine, "waste", 5, 0)
    engine.put_service(dataclasses.replace(engine.services["waste"], open=False))
    change = engine.record_offline(block, offline_ticket(block, TOP, 1), at(2))
    assert change.subject is not None
    assert change.subject.state is TicketState.WAITING


def test_an_offline_ticket_delivered_the_next_day_is_history() -> None:
    engine = make_engine()
    block = reserve(engine, "taxes", 5, 0)
    ticket = offline_ticket(block, TOP, 1)
    tomorrow = at(24 * 60)
    run(engine, engine.roll_over(tomorrow) or pytest.fail("no rollover"))
    change = run(engine, engine.record_offline(block, ticket, tomorrow))
    assert change.subject is not None
    assert change.subject.state is TicketState.EXPIRED
    assert [e.action for e in change.events] == [Action.ISSUE, Action.EXPIRE]
    assert engine.waiting_count("taxes") == 0
    # The new day numbers from 1 again: the old block holds nothing today.
    assert issue(engine, "taxes", 24 * 60 + 1) == "A001"


# -- the store -----------------------------------------------------------------------


def test_blocks_survive_a_restart(store: Store) -> None:
    clock = [at(0)]
    queue = QueueService.open(store, timezone=TZ, clock=lambda: clock[0])
    from hub.app import seed_demo

    seed_demo(queue)
    queue.issue("taxes")
    change = queue.engine.reserve("k1", "taxes", 10, at(0), actor="kiosk:k1")
    queue._commit(change)
    (block,) = change.blocks
    ticket = offline_ticket(block, block.first_seq, 0.5)
    queue._commit(queue.engine.record_offline(block, ticket, at(1)))
    day = at(0).astimezone(TZ).date()
    assert store.number_blocks(day) == [block]
    assert store.number_block("k1", "taxes", day, block.last_seq) == block
    assert store.number_block("k2", "taxes", day, block.last_seq) is None
    assert store.number_block("k1", "taxes", day, block.last_seq + 1) is None
    stored = store.ticket(ticket.id)
    assert stored is not None
    assert stored.origin == "k1"
    # A hub restarted the same day goes on with its own numbers, keeps the block's unused
    # ones, and reserves below it.
    again = QueueService.open(store, timezone=TZ, clock=lambda: clock[0])
    assert again.issue("taxes").ticket.number == "A002"
    assert "A991" in again.engine._reserved
    assert "A990" not in again.engine._reserved
    below = again.engine.reserve("k2", "taxes", 5, at(2))
    assert (below.blocks[0].first_seq, below.blocks[0].last_seq) == (TOP - 14, TOP - 10)


# -- the hub over MQTT ---------------------------------------------------------------


def test_a_kiosk_reserves_issues_offline_and_delivers_exactly_once(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    kiosk = device("kiosk-k1")
    topics = kiosk.topics
    ask = p.BlockRequest(msg_id="blocks-1", services=["taxes", "nope"], size=5)
    reply = kiosk.request(topics.kiosk_blocks("k1"), ask, timeout_s=10)
    assert isinstance(reply, p.BlockReply), reply
    (block,) = reply.blocks
    assert (block.service, block.prefix, block.first_seq, block.last_seq) == (
        "taxes",
        "A",
        TOP - 4,
        TOP,
    )
    assert reply.refused["nope"].code == "unknown_service"
    # Asked again with the same msg_id (a lost reply): the same block, no new one.
    again = kiosk.request(topics.kiosk_blocks("k1"), ask, timeout_s=10)
    assert again == reply
    # The hub's own tickets go around the block.
    issued = kiosk.request(
        topics.kiosk_issue("k1"), p.IssueRequest(msg_id="i1", service="taxes"), 10
    )
    assert isinstance(issued, p.TicketReply)
    assert issued.number == "A001"

    answers: list[tuple[p.Request, object]] = []
    done = threading.Event()

    def on_reply(command: p.Request, answer: object) -> None:
        answers.append((command, answer))
        if len(answers) == 2:
            done.set()

    kiosk.on_reply(on_reply)
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    tickets = [
        p.OfflineTicket(
            msg_id=f"off-{seq}",
            ticket_id=uuid.uuid4().hex,
            service="taxes",
            business_day=block.business_day,
            seq=seq,
            number=f"A{seq - TOP + 999:03d}",
            issued_at=earlier + timedelta(seconds=n),
            lang="uk",
        )
        for n, seq in enumerate((TOP - 4, TOP - 3))
    ]
    for ticket in tickets:
        kiosk.send(topics.kiosk_offline("k1"), ticket)
    assert done.wait(20), answers
    numbers = [a.number for _, a in answers if isinstance(a, p.TicketReply)]
    assert numbers == ["A995", "A996"]
    assert [a.ticket_id for _, a in answers] == [t.ticket_id for t in tickets]  # type: ignore[union-attr]
    # Delivered again (a reply lost on the way): answered from the receipt, recorded once.
    repeated = kiosk.request(topics.kiosk_offline("k1"), tickets[0], timeout_s=10)
    assert repeated == answers[0][1]
    assert hub.queue.store.count_tickets() == 3
    # Placed by issue time: both offline tickets wait ahead of the hub's A001.
    engine = hub.queue.engine
    waiting = sorted(engine._waiting["taxes"].values(), key=lambda t: t.arrived_at)
    assert [t.number for t in waiting] == ["A995", "A996", "A001"]
    assert [t.origin for t in waiting] == ["k1", "k1", "hub"]


def test_another_kiosk_cannot_deliver_into_my_block(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    mine, other = device("kiosk-k1"), device("kiosk-k2")
    reply = mine.request(
        mine.topics.kiosk_blocks("k1"), p.BlockRequest(msg_id="b", services=["info"], size=3), 10
    )
    assert isinstance(reply, p.BlockReply)
    (block,) = reply.blocks
    forged = p.OfflineTicket(
        msg_id="forged",
        ticket_id=uuid.uuid4().hex,
        service="info",
        business_day=block.business_day,
        seq=block.first_seq,
        number=f"D{(block.first_seq - 1) % 999 + 1:03d}",
        issued_at=datetime.now(UTC),
    )
    answer = other.request(other.topics.kiosk_offline("k2"), forged, timeout_s=10)
    assert isinstance(answer, p.ErrorReply)
    assert answer.error.code == "not_reserved"
