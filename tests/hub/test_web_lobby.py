"""The lobby display page at /display: the TV's content, served and pushed by the hub."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_web_live import WAIT_S, Stream

from common.display_settings import DisplaySettings
from common.settings import Settings
from hub.app import serve_web
from hub.callboard import CallBoard
from hub.service import QueueService
from hub.web.context import hub


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: Flask) -> Iterator[Clock]:
    """The board's clock, under the test's control (its timer is stopped at the end)."""
    board = hub(app).board
    board.clock = Clock()
    assert isinstance(board.clock, Clock)
    yield board.clock
    board.close()


def call(queue: QueueService, counter: str, service: str = "taxes") -> str:
    """Issue a ticket for ``service`` and call the next one at ``counter``; its number."""
    queue.issue(service)
    queue.counter_action(counter, "resume")
    change = queue.counter_action(counter, "next")
    called = [t for t in change.tickets if t.counter == counter]
    return called[-1].number


def text(client: FlaskClient, url: str) -> str:
    answer = client.get(url)
    assert answer.status_code == 200, answer.status_code
    return answer.get_data(as_text=True)


def part(html: str, css_class: str) -> str:
    """The text of the first element with ``css_class``, tags removed."""
    match = re.search(rf'class="{css_class}[^"]*"[^>]*>(.*?)</', html, re.S)
    assert match, f"no {css_class} in the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def test_the_page_works_without_javascript_and_without_sign_in(client: FlaskClient) -> None:
    page = text(client, "/display?lang=en")
    assert "Please wait for your number" in page
    assert '<meta http-equiv="refresh" content="10">' in page  # inside <noscript>
    assert 'data-live="/live/queue"' in page
    assert 'data-fragment="/display/fragment?lang=en"' in page
    assert "Local taxes" in page
    assert ">Turn on the sound<" in page
    # Nothing inline: the CSP allows only the site's own scripts and styles.
    assert "style=" not in page
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    csp = client.get("/display").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp


@pytest.mark.parametrize(
    ("lang", "title", "ticket", "counter", "button"),
    [
        ("sk", "Vyvolávame", "Lístok", "Okienko", "Zapnúť zvuk"),
        ("cs", "Vyvoláváme", "Lístek", "Přepážka", "Zapnout zvuk"),
        ("uk", "Запрошуємо", "Квиток", "Віконце", "Увімкнути звук"),
        ("en", "Now calling", "Ticket", "Counter", "Turn on the sound"),
    ],
)
def test_a_call_shows_in_the_displays_words(
    client: FlaskClient,
    web_queue: QueueService,
    lang: str,
    title: str,
    ticket: str,
    counter: str,
    button: str,
) -> None:
    number = call(web_queue, "3", "waste")
    page = text(client, f"/display?lang={lang}")
    assert part(page, "lobby-title") == title
    assert part(page, "lobby-ticket") == number
    assert part(page, "lobby-counter") == "3"
    assert ticket in page
    assert counter in page
    assert button in page


def test_calls_made_together_take_turns(
    client: FlaskClient, web_queue: QueueService, clock: Clock, web_settings: Settings
) -> None:
    first = call(web_queue, "1")
    second = call(web_queue, "2")
    fragment = text(client, "/display/fragment?lang=en")
    assert part(fragment, "lobby-ticket") == first
    assert 'class="lobby-call fresh"' in fragment  # it blinks
    assert part(fragment, "lobby-more") == "+1"  # one call waits its turn
    board = hub(client.application).board
    assert board.turn() is False  # not yet: each stays for min_show_s
    clock.now += web_settings.display.min_show_s
    assert board.turn() is True
    fragment = text(client, "/display/fragment?lang=en")
    assert part(fragment, "lobby-ticket") == second
    assert part(fragment, "lobby-counter") == "2"
    assert part(fragment, "lobby-more") == ""
    assert part(fragment, "lobby-old") == first  # the last calls, newest first
    clock.now += web_settings.display.highlight_s
    assert 'class="lobby-call"' in text(client, "/display/fragment?lang=en")  # no longer new


def test_a_recall_is_marked(client: FlaskClient, web_queue: QueueService, clock: Clock) -> None:
    number = call(web_queue, "1")
    before = text(client, "/display/fragment?lang=en")
    clock.now += 60
    web_queue.counter_action("1", "recall")
    after = text(client, "/display/fragment?lang=en")
    assert part(after, "lobby-title") == "Called again"
    assert part(after, "lobby-ticket") == number
    assert 'class="lobby-call fresh recall"' in after
    key = re.compile(r'data-key="([^"]+)"')
    assert key.findall(before)[0] != key.findall(after)[0]  # a new call for the page's chime


def test_a_page_for_some_counters_shows_only_theirs(
    client: FlaskClient, web_queue: QueueService
) -> None:
    mine = call(web_queue, "3", "parking")
    call(web_queue, "1", "taxes")
    page = text(client, "/display?lang=en&counters=3,4")
    assert part(page, "lobby-ticket") == mine
    assert "Parking" in page
    assert "General information" in page
    assert "Local taxes" not in page  # no counter of the page serves it
    assert 'data-fragment="/display/fragment?lang=en&amp;counters=3,4"' in page
    assert client.get("/display?counters=3,99").status_code == 404
    assert client.get("/display/fragment?counters=,").status_code == 404


def test_a_view_made_later_starts_from_the_recent_calls(web_queue: QueueService) -> None:
    board = CallBoard(web_queue, history=2, max_views=1)
    web_queue.subscribe(board.changed)
    numbers = [call(web_queue, counter) for counter in ("1", "2", "5")]
    try:
        for counters in ("5", "1"):  # only one filtered view is kept: "5" is dropped
            board.scene(frozenset({counters}))
        scene = board.scene(frozenset({"1", "5"}))
        assert scene.current is not None
        assert scene.current.ticket == numbers[2]
        assert [old.ticket for old in scene.history] == [numbers[0]]
        assert not board.is_new(scene)  # replayed calls do not blink again
        everything = board.scene()
        assert everything.current is not None
        assert everything.current.ticket == numbers[0]
        assert everything.waiting_calls == 2  # the others still wait their turn there
    finally:
        board.close()


def test_the_event_stream_brings_a_call_and_each_turn(
    web_settings: Settings, web_queue: QueueService
) -> None:
    display = DisplaySettings(min_show_s=0.3, highlight_s=0.3)
    server = serve_web(web_settings.model_copy(update={"display": display}), web_queue, port=0)
    stream = Stream(server.port)

    def fragment() -> str:
        url = f"http://127.0.0.1:{server.port}/display/fragment?lang=en"
        with urllib.request.urlopen(url, timeout=WAIT_S) as answer:
            return str(answer.read().decode())

    try:
        assert stream.status == 200
        first_version = stream.version()
        assert "Please wait" in fragment()
        first = call(web_queue, "1")
        second = call(web_queue, "2")
        assert stream.version() > first_version
        assert part(fragment(), "lobby-ticket") == first
        # The second call's turn comes by itself: the board wakes the stream.
        seen = first
        while seen != second:
            stream.version()
            seen = part(fragment(), "lobby-ticket")
        assert part(fragment(), "lobby-old") == first
    finally:
        stream.close()
        server.stop()
