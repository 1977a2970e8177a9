"""The kiosk's accessible mode (EN 301 549, docs/kiosk.md): the accessibility button on
every screen, high contrast and large text checked on the rendered screenshots (WCAG
relative luminance), every control within the reach zone, spoken guidance in the four
languages through a real espeak-ng, and touch-then-confirm with synthetic pygame events,
on the real broker and hub with a loopback printer."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pygame
import pytest
from kiosk_helpers import REPLIES, WAIT_S, Office, open_kiosk
from office_helpers import RunningHub
from pydantic import ValidationError

from common.kiosk_settings import KioskSettings
from common.speech import Speaker
from kiosk.app import ACCESSIBLE_IDLE_S, KEYPAD_IDLE_S, KioskApp
from kiosk.catalog import LANGUAGES, Catalog, spoken_number
from kiosk.dispenser import Outcome
from kiosk.loopback import LoopbackPrinter
from kiosk.pictograms import REASONS
from kiosk.ui import ACCESSIBLE, STANDARD, Screen, Theme
from lobby.content import PRIORITY_MARK
from sync_agent.link import DeviceLink
from sync_agent.protocol import CHECKIN_CODE_LENGTHS

pytestmark = pytest.mark.usefixtures("headless_pygame")

Color = tuple[int, int, int]

CAP_MM = 2 * 500 * math.tan(math.radians(0.35))
"""A capital letter's least height in the accessible mode: 0.7° at 500 mm (EN 301 549
5.1.4), 6.11 mm."""

SCREENS = {
    "7in": ((800, 480), None, 85.92),
    "portrait-21.5in": ((1080, 1920), 476.64, 476.64),
    "landscape-24in": ((1920, 1080), 298.89, 298.89),
}
"""Screens by name: pixels, the setting screen_height_mm (None: the 7" Touch Display's
pixels, the default) and the picture's real height (mm) the capitals are checked against."""


def luminance(color: Color) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = color
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast(a: Color, b: Color) -> float:
    """WCAG 2 contrast ratio of two colours."""
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def pixels(shot: pygame.Surface, rect: pygame.Rect) -> tuple[list[list[Color]], Counter[Color]]:
    """The screenshot's pixels in ``rect`` (clipped to it), by row, and how often each is."""
    rect = rect.clip(shot.get_rect())
    data = pygame.image.tobytes(shot.subsurface(rect), "RGB")
    colours = [(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 3)]
    rows = [colours[n : n + rect.width] for n in range(0, len(colours), rect.width)]
    return rows, Counter(colours)


def text_contrast(shot: pygame.Surface, rect: pygame.Rect) -> float:
    """The contrast of a drawn text with its ground, from the screenshot: the ground is the
    commonest colour of its place, the text the commonest of the others (its glyphs'
    solid cores; the rest is anti-aliasing)."""
    _, counts = pixels(shot, rect)
    (ground, _), *others = counts.most_common()
    assert others, f"nothing drawn at {rect}"
    return contrast(ground, others[0][0])


def ink(shot: pygame.Surface, rect: pygame.Rect) -> pygame.Rect:
    """Where a drawn text's glyphs are: the rows and columns of ``rect`` holding a colour
    that stands out of its ground (contrast at least 3)."""
    rect = rect.clip(shot.get_rect())
    rows, counts = pixels(shot, rect)
    ground = counts.most_common(1)[0][0]
    inks = {c for c in counts if contrast(c, ground) >= 3}
    inked = [n for n, row in enumerate(rows) if any(c in inks for c in row)]
    columns = [n for n in range(rect.width) if any(row[n] in inks for row in rows)]
    if not inked:
        return pygame.Rect(rect.topleft, (0, 0))
    return pygame.Rect(
        rect.left + columns[0],
        rect.top + inked[0],
        columns[-1] - columns[0] + 1,
        inked[-1] - inked[0] + 1,
    )


def ink_height(shot: pygame.Surface, rect: pygame.Rect) -> int:
    """How tall a drawn text's glyphs are."""
    return ink(shot, rect).height


def theme_pairs(theme: Theme) -> list[tuple[Color, Color]]:
    """Every text colour with each ground it is drawn on (kiosk.ui)."""
    return [
        (theme.text, theme.background),
        (theme.dim_text, theme.background),
        (theme.number, theme.background),
        (theme.text, theme.button),
        (theme.dim_text, theme.disabled),
        (theme.text, theme.disabled),
        (theme.background, theme.selected),
        (theme.text, theme.fault),
        (theme.text, theme.ok),
        (theme.text, theme.priority),
    ]


@pytest.mark.parametrize("theme", [STANDARD, ACCESSIBLE], ids=["standard", "accessible"])
def test_every_text_colour_pair_of_a_theme_contrasts(theme: Theme) -> None:
    for text, ground in theme_pairs(theme):
        assert contrast(text, ground) >= 4.5, (text, ground)
    assert contrast(theme.focus, theme.background) >= 3  # the explored button's ring


def screens(office: Office) -> Iterator[tuple[str, Callable[[], None]]]:
    """Each of the kiosk's screens in turn (the start screen first): its name and how to
    draw it."""
    app = office.app
    texts = app.catalogs[app.lang]
    screen = app.screen
    yield "start", app.draw
    yield "keypad", lambda: screen.keypad(texts, "1234", CHECKIN_CODE_LENGTHS)
    yield "busy", lambda: screen.busy(texts)
    refused = Outcome("taxes", refused="service_closed")
    yield "refused", lambda: screen.outcome(refused, texts, "Miestne dane")
    outcome = office.kiosk.issue("taxes", app.lang)
    assert outcome.ticket is not None
    yield "confirmation", lambda: screen.outcome(outcome, texts, "Miestne dane")
    app._show("priority")
    yield "priority reasons", app.draw
    app._show("priority_service")
    yield "priority services", app.draw
    priority = office.kiosk.issue("taxes", app.lang, "pregnancy")
    assert priority.ticket is not None
    assert priority.ticket.priority
    yield "priority confirmation", lambda: screen.outcome(priority, texts, "Miestne dane")
    app._show("start")


def pages(screen: Screen, draw: Callable[[], None]) -> Iterator[int]:
    """Draw each page of a screen in turn (one, unless the accessible mode pages it)."""
    draw()
    for page in range(screen.pages):
        screen.page = page
        draw()
        assert screen.page == page
        yield page
    screen.page = 0


EXPECTED = {
    "start": lambda kinds, values: "priority" in kinds and "appointment" in kinds,
    "priority reasons": lambda kinds, values: (
        [v for k, v in values if k == "reason"] == list(REASONS)
    ),
    "priority services": lambda kinds, values: "service" in kinds,
}
"""What a screen has, over all its pages."""


@pytest.mark.parametrize("name", list(SCREENS))
def test_screenshots_of_both_modes(
    hub: RunningHub, device: Callable[..., DeviceLink], tmp_path: Path, name: str
) -> None:
    size, setting, height_mm = SCREENS[name]
    cap_px = CAP_MM / (height_mm / size[1])  # the capital's least height on this screen
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        office = open_kiosk(
            device("kiosk-k1", start=False), loopback, tmp_path, size, screen_height_mm=setting
        )
        try:
            screen = office.app.screen
            assert screen.cap_px >= cap_px
            titles: dict[bool, int] = {}
            for accessible in (False, True):
                screen.accessible = accessible
                zone = screen.reach_zone()
                for shown, draw in screens(office):
                    seen: list[tuple[str, str]] = []
                    for page in pages(screen, draw):
                        seen += [(b.kind, b.value) for b in screen.buttons]
                        path = tmp_path / f"{shown}-{accessible}-{page}.png"
                        shot = check_page(screen, path, shown)
                        if accessible:
                            check_accessible_page(screen, shot, zone, shown, cap_px)
                    if shown in EXPECTED:
                        assert EXPECTED[shown]({k for k, _ in seen}, seen), shown
                # The start screen's title, standard and accessible.
                office.app.draw()
                title = next(r for t, r in screen.drawn if t == "Vyberte si službu")
                path = tmp_path / f"title-{accessible}.png"
                screen.save(path)
                titles[accessible] = ink_height(pygame.image.load(str(path)), title)
            assert titles[True] >= 1.15 * titles[False]  # larger text in the accessible mode
        finally:
            office.kiosk.stop()


def check_page(screen: Screen, path: Path, name: str) -> pygame.Surface:
    """What every page of every screen has, in both modes: the accessibility button within
    reach, every text contrasting with its ground at least 4.5:1, no text over another.

    Saves the page to ``path`` and returns it as read back.
    """
    size = screen.surface.get_size()
    screen.save(path)
    shot = pygame.image.load(str(path))
    kinds = [b.kind for b in screen.buttons]
    assert kinds.count("access") == 1, name  # the button on every screen
    access = next(b for b in screen.buttons if b.kind == "access")
    assert access.rect.top >= screen.reach_zone().top  # reachable to switch the mode on
    assert access.rect.height >= 70 * min(size) / 480 * 0.8
    if size[1] > size[0]:  # named beside its mark where it is wide
        assert "Prístupnosť" in [t for t, _ in screen.drawn]
    for text, rect in screen.drawn:
        ratio = text_contrast(shot, rect)
        assert ratio >= 4.5, (name, screen.accessible, text, ratio)
    # No text over another.
    glyphs = [(t, g) for (t, _), g in zip(screen.drawn, screen.glyphs, strict=True)]
    for n, (text, where) in enumerate(glyphs):
        for other, there in glyphs[n + 1 :]:
            assert not where.colliderect(there), (name, text, other)
    return shot


def check_accessible_page(
    screen: Screen, shot: pygame.Surface, zone: pygame.Rect, name: str, cap_px: float
) -> None:
    """What every page of the accessible mode has: every control within reach and said, the
    screen (and its page) said, the high-contrast theme, and large text: every text with a
    capital or a digit at least as tall as a capital must be (0.7° at 500 mm)."""
    for button in screen.buttons:  # every control within reach, and said
        assert zone.contains(button.rect), (name, button)
        assert screen.label(button), (name, button)
    assert screen.announcement(), name
    assert PRIORITY_MARK not in screen.announcement(), name
    if screen.pages > 1:
        assert f"{screen.page + 1} / {screen.pages}" in [t for t, _ in screen.drawn]
    corner = shot.get_at((zone.left + 2, zone.top + 2))
    assert tuple(corner)[:3] == ACCESSIBLE.background
    for text, rect in screen.drawn:
        if any(c.isupper() or c.isdigit() for c in text):
            assert ink_height(shot, rect) >= cap_px, (name, text, ink_height(shot, rect))


@pytest.fixture
def guided(hub: RunningHub, device: Callable[..., DeviceLink], tmp_path: Path) -> Iterator[Office]:
    """A kiosk whose app speaks its guidance through a real espeak-ng and aplay, to ALSA's
    null device (no sound card needed)."""
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        office = open_kiosk(device("kiosk-k1", start=False), loopback, tmp_path)
        speakers = {lang: Speaker(lang, device="null") for lang in LANGUAGES}
        office.app = KioskApp(
            office.kiosk,
            office.app.screen,
            office.app.catalogs,
            languages=LANGUAGES,
            confirm_timeout_s=30,
            clock=lambda: office.now[0],
            speakers=speakers,
        )
        office.app.step()
        yield office
        office.kiosk.stop()


def turn_to(office: Office, kind: str, value: str = "") -> None:
    """Page the accessible mode's list with touches on "Next" until the button
    ``kind``/``value`` is on the screen (the first touch explores "Next", each further one
    turns a page)."""
    app = office.app
    for _ in range(app.screen.pages + 1):
        if any((b.kind, b.value) == (kind, value) for b in app.screen.buttons):
            return
        office.tap("page", "next")
        app.step()
    raise AssertionError(f"no {kind} {value} on any page")


def press(office: Office, kind: str, value: str = "", *, touch: bool = False) -> None:
    """A tap on the button ``kind``/``value``, on whichever page it is."""
    turn_to(office, kind, value)
    office.tap(kind, value, touch=touch)


def slide(office: Office, kind: str, value: str) -> None:
    """A finger sliding onto a button (an SDL finger motion event)."""
    turn_to(office, kind, value)
    button = next(b for b in office.app.screen.buttons if (b.kind, b.value) == (kind, value))
    width, height = office.app.screen.surface.get_size()
    x, y = button.rect.center
    event = pygame.event.Event(
        pygame.FINGERMOTION, x=x / width, y=y / height, dx=0.0, dy=0.0, finger_id=0
    )
    pygame.event.post(event)


def test_touch_to_hear_then_tap_again_to_choose(guided: Office, hub: RunningHub) -> None:
    app = guided.app
    sk = app.catalogs["sk"]
    assert not app.accessible
    press(guided, "access")  # one tap: the mode is on (nothing is spoken before it)
    app.step()
    assert app.accessible
    assert app.said[-1].startswith(sk.text("access.on"))
    assert "Vyberte si službu." in app.said[-1]  # the screen, spoken as it appears
    said = len(app.said)
    app.step()
    assert len(app.said) == said  # drawn again, not spoken again
    # A touch says what the button is and rings it; nothing is issued.
    press(guided, "service", "taxes", touch=True)
    app.step()
    assert app.issued == 0
    assert app.focused == ("service", "taxes")
    assert app.said[-1].startswith("Miestne dane.")
    ring = next(b for b in app.screen.buttons if b.value == "taxes").rect
    spot = (ring.centerx, ring.top - round(4 * app.screen.unit))
    assert tuple(app.screen.surface.get_at(spot))[:3] == ACCESSIBLE.focus
    # Another button, then a finger sliding back: each is said in turn.
    press(guided, "service", "parking")
    app.step()
    assert app.focused == ("service", "parking")
    assert app.said[-1].startswith("Parkovanie")
    slide(guided, "service", "taxes")
    app.step()
    assert app.focused == ("service", "taxes")
    assert app.said[-1].startswith("Miestne dane.")
    # The second tap on the explored button chooses it: one ticket, spoken.
    press(guided, "service", "taxes", touch=True)
    guided.settle()
    assert app.issued == 1
    assert app.state == "outcome"
    assert app.outcome is not None
    assert app.outcome.ticket is not None
    assert f"{spoken_number(app.outcome.ticket.number)}." in app.said[-1]
    assert app.accessible  # still, until the citizen goes
    guided.later(1)
    press(guided, "back")
    app.step()
    assert app.state == "outcome"  # "Done" explored only
    press(guided, "back")
    app.step()
    assert app.state == "start"
    assert not app.accessible  # the ticket taken: the next citizen gets the usual screen


def test_the_mode_ends_when_nobody_touches_it_and_speaks_the_language(guided: Office) -> None:
    app = guided.app
    press(guided, "access")
    app.step()
    guided.later(1)
    for lang in ("cs", "en", "uk"):  # each language: heard, then chosen, then spoken in
        for _ in range(2):
            press(guided, "lang", lang)
            app.step()
        assert app.lang == lang
        assert f"{app.catalogs[lang].text('start.title')}." in app.said[-1]
    uk = app.catalogs["uk"]
    # The keypad: a digit is said, then chosen and the typed digits said.
    for _ in range(2):
        press(guided, "appointment")
        app.step()
    assert app.state == "keypad"
    guided.later(1)
    for _ in range(2):
        press(guided, "key", "7")
        app.step()
    assert app.code == "7"
    assert app.said[-1] == uk.text("access.typed", code="7")
    guided.later(ACCESSIBLE_IDLE_S + 1)
    app.step()
    assert app.state == "start"
    assert not app.accessible
    # A refusal keeps the mode: the citizen has not got a ticket yet.
    guided.later(1)
    press(guided, "access")
    app.step()
    assert app.accessible
    app._show("outcome", Outcome("taxes", refused="service_closed"))
    app.draw()
    guided.later(1)
    for _ in range(2):
        press(guided, "back")
        app.step()
    assert app.state == "start"
    assert app.accessible
    # The button switches it off too (heard, then chosen).
    guided.later(1)
    for _ in range(2):
        press(guided, "access")
        app.step()
    assert not app.accessible


def test_the_priority_screens_are_spoken_and_left_when_nobody_touches_them(
    guided: Office,
) -> None:
    app = guided.app
    sk = app.catalogs["sk"]
    press(guided, "access")
    app.step()
    guided.later(1)
    # The entry and each reason's pictogram button say their words under the finger.
    press(guided, "priority", touch=True)
    app.step()
    assert app.state == "start"
    assert app.said[-1] == sk.text("priority.entry")
    press(guided, "priority", touch=True)
    app.step()
    assert app.state == "priority"
    assert f"{sk.text('priority.title')}" in app.said[-1]  # the screen, as it appears
    guided.later(1)
    press(guided, "reason", "pregnancy")
    app.step()
    assert app.state == "priority"
    assert app.said[-1] == sk.text("priority.pregnancy")
    press(guided, "reason", "pregnancy")
    app.step()
    assert app.state == "priority_service"
    assert app.reason == "pregnancy"
    assert f"{sk.text('priority.services')}." in app.said[-1]
    assert PRIORITY_MARK not in app.said[-1]  # the mark is seen, not said
    guided.later(1)
    for _ in range(2):
        press(guided, "service", "taxes")
        guided.settle()
    assert app.state == "outcome"
    assert app.outcome is not None
    assert app.outcome.ticket is not None
    assert app.outcome.ticket.priority
    assert f"{sk.text('confirm.priority')}." in app.said[-1]
    assert PRIORITY_MARK not in app.said[-1]
    guided.later(1)
    for _ in range(2):
        press(guided, "back")
        app.step()
    assert app.state == "start"
    assert not app.accessible  # the ticket taken


@pytest.mark.parametrize("idle_state", ["priority", "priority_service"])
def test_a_priority_screen_left_alone_ends_the_accessible_mode(
    guided: Office, idle_state: str
) -> None:
    app = guided.app
    press(guided, "access")
    app.step()
    guided.later(1)
    for _ in range(2):
        press(guided, "priority")
        app.step()
    if idle_state == "priority_service":
        guided.later(1)
        for _ in range(2):
            press(guided, "reason", "age")
            app.step()
    assert app.state == idle_state
    assert app.accessible
    guided.later(KEYPAD_IDLE_S + 1)  # the citizen walked away, before the mode's own timeout
    app.step()
    assert app.state == "start"
    assert not app.accessible


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_guidance_is_in_every_language_and_espeak_speaks_it(tmp_path: Path, lang: str) -> None:
    texts = Catalog.load(lang)
    english = Catalog.load("en")
    keys = ("access.on", "access.explain", "access.leave", "access.button")
    for key in (*keys, "access.previous", "access.next", "access.page"):
        assert texts.has(key)
        if lang != "en":
            assert texts.text(key) != english.text(key)
    assert texts.text("access.typed", code="1 2") != "access.typed"
    page = texts.text("access.page", page=2, pages=3)  # "Strana 2 z 3"
    assert "2" in page
    assert "3" in page
    speaker = Speaker(lang)
    sentences = [texts.text(key) for key in keys] + [page]
    for n, sentence in enumerate(sentences):
        wav = tmp_path / f"{lang}-{n}.wav"
        process = speaker.speak(sentence, wav=wav)
        assert process is not None
        assert process.wait(timeout=WAIT_S) == 0
        data = wav.read_bytes()
        assert data[:4] == b"RIFF"
        assert len(data) > 20_000  # a sentence of speech, not an empty file


@pytest.mark.parametrize("name", list(SCREENS))
def test_a_capital_subtends_the_angle_at_the_viewing_distance(tmp_path: Path, name: str) -> None:
    size, setting, height_mm = SCREENS[name]
    fonts = Path("/usr/share/fonts/truetype/dejavu")
    screen = Screen(
        pygame.display.set_mode(size), font_dir=fonts, office="x", screen_height_mm=setting
    )
    pixel_mm = height_mm / size[1]
    assert screen.cap_mm == pytest.approx(6.109, abs=0.001)
    screen.accessible = True
    for bold in (False, True):  # the smallest text the accessible mode draws
        screen.busy(Catalog.load("en"))
        box = pygame.Rect(0, 0, size[0] // 2, size[1] // 2)
        screen.surface.fill(ACCESSIBLE.background, box)
        where = screen.text("H", 1, box, bold=bold)
        path = tmp_path / f"H-{bold}.png"
        screen.save(path)
        height = ink_height(pygame.image.load(str(path)), where)
        assert height >= screen.cap_px
        assert height * pixel_mm >= CAP_MM  # on the screen, in millimetres
        degrees = math.degrees(2 * math.atan(height * pixel_mm / 2 / 500))
        assert degrees >= 0.7, degrees


def test_pages_turn_with_touches_and_are_said(guided: Office) -> None:
    app = guided.app
    screen = app.screen
    sk = app.catalogs["sk"]
    guided.tap("access")
    app.step()
    pages = screen.pages
    assert pages > 1  # the 7" screen: the large text does not fit on one page
    assert sk.text("access.page", page=1, pages=pages) in app.said[-1]
    first = {(b.kind, b.value) for b in screen.buttons}
    guided.later(1)
    guided.tap("page", "next", touch=True)  # heard first
    app.step()
    assert screen.page == 0
    assert app.said[-1] == sk.text("access.next")
    guided.tap("page", "next", touch=True)  # then chosen: the next page, said
    app.step()
    assert screen.page == 1
    assert "Vyberte si službu." in app.said[-1]
    assert sk.text("access.page", page=2, pages=pages) in app.said[-1]
    assert {(b.kind, b.value) for b in screen.buttons} != first
    zone = screen.reach_zone()
    for page in range(2, pages + 1):  # each further touch turns again, the last to the first
        assert all(zone.contains(b.rect) for b in screen.buttons), page
        guided.tap("page", "next", touch=True)
        app.step()
        assert screen.page == page % pages
    assert screen.page == 0
    for _ in range(2):  # "Previous" from the first page: the last one
        guided.tap("page", "previous", touch=True)
        app.step()
    assert screen.page == pages - 1
    assert sk.text("access.page", page=pages, pages=pages) in app.said[-1]
    # A language chosen keeps the page, said in the language.
    for _ in range(2):
        press(guided, "lang", "en", touch=True)
        app.step()
    assert app.lang == "en"
    page = screen.page
    assert app.catalogs["en"].text("access.page", page=page + 1, pages=pages) in app.said[-1]
    # A new screen starts on its first page.
    for _ in range(2):
        press(guided, "appointment", touch=True)
        app.step()
    assert app.state == "keypad"
    assert screen.page == 0


def test_speech_through_an_alsa_device(tmp_path: Path) -> None:
    speaker = Speaker("sk", device="null")  # ALSA's null device: played, not heard
    process = speaker.speak(Catalog.load("sk").text("access.on"))
    assert process is not None
    assert process.args[0].endswith("aplay")  # type: ignore[index,union-attr]
    assert process.wait(timeout=WAIT_S) == 0
    with pytest.raises(ValidationError):
        KioskSettings(speech_device="hw:0; reboot")
    assert KioskSettings(speech_device="plughw:CARD=Headphones,DEV=0").speech_device


def test_without_the_button_no_screen_has_it(tmp_path: Path) -> None:
    fonts = Path("/usr/share/fonts/truetype/dejavu")
    screen = Screen(pygame.display.set_mode((800, 480)), font_dir=fonts, office="x", access=False)
    screen.busy(Catalog.load("en"))
    assert [b for b in screen.buttons if b.kind == "access"] == []
