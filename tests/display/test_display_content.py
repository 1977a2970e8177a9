"""The call screen's content model: sequencing, highlight, recalls, history, languages."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from lobby.catalog import LABELS, LANGUAGES, catalog, split_ticket
from lobby.content import BLINK_PERIOD_S, Lobby, ShownService
from sync_agent.protocol import Call, QueueState


def call(
    ticket: str, counter: str = "1", *, recall: bool = False, ticket_id: str | None = None
) -> Call:
    return Call(
        ticket=ticket,
        ticket_id=ticket_id or ticket,
        counter=counter,
        counter_name=f"Okienko {counter}",
        service="taxes",
        called_at=datetime.now(UTC),
        recall=recall,
        calls=2 if recall else 1,
    )


def test_calls_together_each_stay_their_minimum_time() -> None:
    lobby = Lobby(min_show_s=6.0, highlight_s=4.0, history=3)
    for ticket in ("A001", "B001", "C001"):
        lobby.call(call(ticket))
    assert [c.ticket for c in lobby.advance(100.0)] == ["A001"]
    assert lobby.scene(100.0).waiting_calls == 2
    assert lobby.advance(105.9) == []
    assert lobby.next_change(105.9) == 106.0
    assert [c.ticket for c in lobby.advance(106.0)] == ["B001"]
    assert [c.ticket for c in lobby.advance(112.0)] == ["C001"]
    scene = lobby.scene(112.0)
    assert scene.current is not None
    assert scene.current.ticket == "C001"
    assert [c.ticket for c in scene.history] == ["B001", "A001"]
    assert lobby.next_change(130.0) is None  # nothing left to change by itself


def test_a_new_call_blinks_for_a_while() -> None:
    lobby = Lobby(highlight_s=2.0, min_show_s=0)
    assert not lobby.scene(0.0).lit
    lobby.call(call("A001"))
    lobby.advance(10.0)
    assert lobby.scene(10.0).lit
    assert not lobby.scene(10.0 + BLINK_PERIOD_S).lit
    assert lobby.scene(10.0 + 2 * BLINK_PERIOD_S).lit
    assert lobby.next_change(10.1) == 10.0 + BLINK_PERIOD_S
    assert not lobby.scene(12.0).lit
    assert lobby.next_change(12.0) is None


def test_a_recall_is_marked_and_replaces_a_waiting_call_of_its_ticket() -> None:
    lobby = Lobby(min_show_s=5.0)
    lobby.call(call("A001"))
    lobby.advance(0.0)
    lobby.call(call("A002", "2"))
    lobby.call(call("A002", "2", recall=True))  # recalled before its turn: not twice
    assert lobby.scene(1.0).waiting_calls == 1
    [turned] = lobby.advance(5.0)
    assert (turned.ticket, turned.recall) == ("A002", True)
    lobby.call(call("A001", recall=True))
    [again] = lobby.advance(10.0)
    assert again.recall
    assert [c.ticket for c in lobby.scene(10.0).history] == ["A002"]  # not A001 twice


def test_languages_take_turns_and_services_come_by_prefix() -> None:
    lobby = Lobby(languages=("sk", "uk"), language_cycle_s=10.0)
    assert [lobby.language(t) for t in (0.0, 9.9, 10.0, 25.0)] == ["sk", "sk", "uk", "sk"]
    assert lobby.next_change(3.0) == 10.0
    for service, prefix in (("waste", "B"), ("taxes", "A")):
        lobby.queue(
            QueueState(
                service=service,
                prefix=prefix,
                names={"sk": service},
                open=True,
                hours="",
                waiting=2,
                estimated_wait_s=61,
                issued_today=2,
                daily_limit=None,
                open_counters=1,
                at=datetime.now(UTC),
            )
        )
    rows = lobby.scene(0.0).services
    assert [r.prefix for r in rows] == ["A", "B"]
    assert rows[0].estimated_minutes == 2
    assert rows[0].name("uk") == "taxes"


def test_every_catalog_has_every_text() -> None:
    for lang in LANGUAGES:
        texts = catalog(lang)
        assert set(texts.labels) == set(LABELS)
        assert texts.label("estimate", minutes=5)
    assert split_ticket("A042") == ("A", "42")
    assert split_ticket("B000") == ("B", "0")
    assert split_ticket("VIP") == ("VIP", "")


def test_the_content_model_needs_neither_pygame_nor_serial() -> None:
    code = (
        "import sys, lobby.content, lobby.catalog; "
        "print(sorted(m for m in ('pygame', 'serial') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


def test_a_display_without_fonts_fails_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "display.toml"
    config.write_text(
        # With a broker account: a device without one is paired with the hub first.
        f'role = "display"\n[mqtt]\nusername = "d"\npassword = "display-password"\n'
        f'[display]\nfonts_dir = "{tmp_path}"\nvideo_driver = "dummy"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "poradovnik.cli", "--config", str(config), "display"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"poradovnik: font not found: {tmp_path}/DejaVuSans.ttf")
    assert "fonts-dejavu-core" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_closed_service_says_when_it_opens_in_each_language() -> None:
    zone = timezone(timedelta(hours=1))
    now = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    lobby = Lobby()

    def shown(opens_at: datetime | None, *, cut_off: bool = False) -> ShownService:
        lobby.queue(
            QueueState(
                service="taxes",
                prefix="A",
                names={"sk": "Dane"},
                open=False,
                hours="Mon 08:00-12:00",
                waiting=0,
                estimated_wait_s=None,
                issued_today=0,
                daily_limit=None,
                open_counters=0,
                at=now,
                opens_at=opens_at,
                cut_off=cut_off,
            )
        )
        return lobby.scene(0.0).services[0]

    later_today = shown(datetime(2026, 12, 7, 18, 30, tzinfo=zone))
    assert later_today.closed_text(catalog("sk")) == "zatvorené · otvára o 18:30"
    tomorrow = shown(datetime(2026, 12, 8, 8, 0, tzinfo=zone), cut_off=True)
    assert tomorrow.closed_text(catalog("en")) == "no more tickets now · opens 8/12 at 08:00"
    assert tomorrow.closed_text(catalog("cs")) == "lístky se už nevydávají · otevírá 8. 12. v 08:00"
    assert tomorrow.closed_text(catalog("uk")).endswith("відчиняється 8.12 о 08:00")
    assert shown(None).closed_text(catalog("sk")) == "zatvorené"
