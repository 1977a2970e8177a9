"""The durable outbox (sync_agent.outbox) and the reconnect backoff."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync_agent.backoff import Backoff
from sync_agent.outbox import Entry, Outbox
from sync_agent.protocol import CounterCommand, IssueRequest, ProtocolError, Topics

TOPICS = Topics("test")


def command(i: int, action: str = "next") -> CounterCommand:
    return CounterCommand.model_validate({"msg_id": f"cmd-{i:03d}", "action": action})


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox(tmp_path / "state" / "outbox.sqlite3") as box:
        yield box


def test_empty_outbox_has_no_head(outbox: Outbox) -> None:
    assert outbox.head() is None
    assert len(outbox) == 0
    assert outbox.entries() == []


def test_put_returns_msg_id_and_keeps_fifo_order(outbox: Outbox) -> None:
    ids = [outbox.put(TOPICS.counter_cmd("c1"), command(i)) for i in range(5)]
    assert ids == [f"cmd-{i:03d}" for i in range(5)]
    assert len(outbox) == 5
    head = outbox.head()
    assert head is not None
    assert head.msg_id == "cmd-000"
    assert head.topic == TOPICS.counter_cmd("c1")
    assert head.payload == command(0).encode()
    assert [e.msg_id for e in outbox.entries()] == ids
    seqs = [e.seq for e in outbox.entries()]
    assert seqs == sorted(seqs)


def test_remove_advances_the_head(outbox: Outbox) -> None:
    for i in range(3):
        outbox.put("t", command(i))
    assert outbox.remove("cmd-000") is True
    assert outbox.remove("cmd-000") is False  # already gone
    head = outbox.head()
    assert head is not None
    assert head.msg_id == "cmd-001"
    # Removing from the middle keeps the order of the rest.
    outbox.remove("cmd-002")
    assert [e.msg_id for e in outbox.entries()] == ["cmd-001"]


def test_entry_gives_back_the_request_model(outbox: Outbox) -> None:
    issue = IssueRequest(msg_id="k-1", service="A", lang="uk")
    outbox.put(TOPICS.kiosk_issue("k1"), issue)
    outbox.put(TOPICS.counter_cmd("c1"), command(1, "recall"))
    first, second = outbox.entries()
    assert first.kind == "IssueRequest"
    assert first.request() == issue
    assert second.request() == command(1, "recall")


def test_entry_of_unknown_kind_refuses_to_decode() -> None:
    entry = Entry(1, "x", "t", "NoSuchModel", b"{}", queued_at=None)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError) as info:
        entry.request()
    assert info.value.code == "unknown_kind"


def test_put_same_message_twice_is_idempotent(outbox: Outbox) -> None:
    outbox.put("t", command(1))
    assert outbox.put("t", command(1)) == "cmd-001"
    assert len(outbox) == 1


def test_put_same_msg_id_with_other_content_is_refused(outbox: Outbox) -> None:
    outbox.put("t", command(1, "next"))
    with pytest.raises(ValueError, match="already in the outbox"):
        outbox.put("t", command(1, "recall"))
    with pytest.raises(ValueError, match="already in the outbox"):
        outbox.put("other/topic", command(1, "next"))


def test_entries_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as box:
        for i in range(4):
            box.put("t", command(i))
        box.remove("cmd-000")
    # Committed on put: another connection sees the rows before any close, too.
    with Outbox(path) as again:
        assert [e.msg_id for e in again.entries()] == ["cmd-001", "cmd-002", "cmd-003"]
        again.put("t", command(9))
        assert [e.msg_id for e in again.entries()][-1] == "cmd-009"


def test_length_counts_the_file_the_puts_and_the_removals(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as box:
        for i in range(3):
            box.put("t", command(i))
        box.put("t", command(2))  # a caller's retry adds nothing
        assert len(box) == 3
    with Outbox(path) as again:
        assert len(again) == 3  # what the file holds
        assert again.remove("cmd-001") is True
        assert again.remove("cmd-001") is False
        assert len(again) == 2 == len(again.entries())


def test_remove_all_deletes_those_named_in_one_write(outbox: Outbox) -> None:
    for i in range(5):
        outbox.put("t", command(i))
    assert outbox.remove_all(["cmd-003", "cmd-000", "cmd-009", "cmd-003"]) == 2
    assert [e.msg_id for e in outbox.entries()] == ["cmd-001", "cmd-002", "cmd-004"]
    assert len(outbox) == 3
    assert outbox.remove_all([]) == 0


def test_put_is_committed_before_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path)
    box.put("t", command(1))
    # A separate, plain sqlite3 reader sees the row while the outbox is still open.
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT msg_id FROM outbox").fetchall() == [("cmd-001",)]
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    box.close()
    box.close()  # harmless


def test_closed_outbox_refuses_work(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    box.close()
    with pytest.raises(RuntimeError, match="closed"):
        box.put("t", command(1))
    with pytest.raises(RuntimeError, match="closed"):
        len(box)


def test_concurrent_puts_lose_nothing(outbox: Outbox) -> None:
    threads = 8
    per_thread = 25
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            msg = CounterCommand.model_validate({"msg_id": f"t{t}-{i:03d}", "action": "next"})
            outbox.put("t", msg)
            if i % 5 == 0:
                outbox.head()
                len(outbox)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    entries = outbox.entries()
    assert len(entries) == threads * per_thread
    assert len({e.msg_id for e in entries}) == threads * per_thread
    # Each thread's own entries keep the order it put them in.
    for t in range(threads):
        mine = [e.msg_id for e in entries if e.msg_id.startswith(f"t{t}-")]
        assert mine == [f"t{t}-{i:03d}" for i in range(per_thread)]


# -- backoff --------------------------------------------------------------------------


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    backoff = Backoff(0.5, 30.0, rng=random.Random(42))
    delays = [backoff.next_delay() for _ in range(40)]
    bounds = [min(30.0, 0.5 * 2**n) for n in range(40)]
    assert [backoff.bound(n) for n in range(40)] == bounds
    assert all(0.0 <= d <= b for d, b in zip(delays, bounds, strict=True))
    assert max(delays) <= 30.0
    # Jittered: not simply the bound each time, and not all alike.
    assert sum(d < 0.99 * b for d, b in zip(delays, bounds, strict=True)) > 30
    assert len(set(delays)) == len(delays)
    assert backoff.attempt == 40


def test_backoff_is_deterministic_with_a_seeded_rng() -> None:
    one = Backoff(0.5, 30.0, rng=random.Random(7))
    two = Backoff(0.5, 30.0, rng=random.Random(7))
    assert [one.next_delay() for _ in range(10)] == [two.next_delay() for _ in range(10)]


def test_backoff_reset_starts_from_the_base_again() -> None:
    backoff = Backoff(0.5, 30.0, rng=random.Random(3))
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay() <= 0.5


def test_backoff_huge_attempt_counts_stay_at_the_cap() -> None:
    backoff = Backoff(0.5, 30.0, rng=random.Random(1))
    assert backoff.bound(10_000) == 30.0


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_backoff_refuses_nonsense(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        Backoff(base, cap)
