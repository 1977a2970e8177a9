"""The counter LCD at the byte level: RPLCD's own character LCD logic (its codec, cursor and
``create_char``) driving a recorded HD44780, whose display and custom character memory
are rebuilt from the instructions and data bytes it is sent."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from RPLCD import common as hd44780
from RPLCD.lcd import BaseCharLCD

from common.counter_settings import CounterSettings
from counter_terminal.charset import GLYPHS, romanize_uk
from counter_terminal.lcd import LcdDisplay

COLS = 16


class RecordedHd44780(BaseCharLCD):  # type: ignore[misc]
    """RPLCD's ``BaseCharLCD`` on a bus that keeps what an HD44780 would hold.

    ``ddram`` is its display memory (row 0 at 0x00, row 1 at 0x40), ``cgram`` its
    custom characters (8 × 8 rows); ``instructions`` every instruction byte sent.
    ``failing`` makes every data byte fail as a loose cable does.
    """

    def __init__(self, *, cols: int, rows: int, charmap: str, **_i2c: Any) -> None:
        self.data_bus_mode = hd44780.LCD_4BITMODE
        self.ddram = bytearray(b" " * 0x80)
        self.cgram = bytearray(64)
        self.instructions: list[int] = []
        self.failing = False
        self._address = 0
        self._in_cgram = False
        super().__init__(cols=cols, rows=rows, charmap=charmap, auto_linebreaks=False)

    def _init_connection(self) -> None:
        pass

    def _close_connection(self) -> None:
        pass

    def _send_instruction(self, value: int) -> None:
        self.instructions.append(value)
        if value & hd44780.LCD_SETDDRAMADDR:
            self._in_cgram, self._address = False, value & 0x7F
        elif value & hd44780.LCD_SETCGRAMADDR:
            self._in_cgram, self._address = True, value & 0x3F
        elif value == hd44780.LCD_CLEARDISPLAY:
            self.ddram[:] = b" " * 0x80
            self._in_cgram, self._address = False, 0

    def _send_data(self, value: int) -> None:
        if self.failing:
            raise OSError(121, "Remote I/O error")
        if self._in_cgram:
            self.cgram[self._address] = value
            self._address = (self._address + 1) % 64
        else:
            self.ddram[self._address] = value
            self._address = (self._address + 1) % 0x80

    def row(self, number: int) -> bytes:
        """The bytes row ``number`` shows."""
        start = (0x00, 0x40)[number]
        return bytes(self.ddram[start : start + COLS])

    def glyph(self, slot: int) -> tuple[int, ...]:
        """Custom character ``slot``'s eight rows of dots."""
        return tuple(self.cgram[slot * 8 : slot * 8 + 8])

    def cgram_writes(self) -> list[int]:
        """The custom characters written since :attr:`instructions` was last cleared."""
        return [
            (i & 0x3F) >> 3
            for i in self.instructions
            if i & hd44780.LCD_SETCGRAMADDR and not i & hd44780.LCD_SETDDRAMADDR
        ]

    def read(self, number: int) -> str:
        """Row ``number`` as text: ROM bytes by RPLCD's table, custom ones by their drawing."""
        rom = {code: char for char, code in self.codec.codec.encoding_table.items() if code >= 8}
        drawn = {glyph: letter for letter, glyph in GLYPHS.items()}
        return "".join(
            drawn.get(self.glyph(b), f"<{b}>")
            if b < 8
            else chr(b)
            if 0x20 <= b < 0x7E
            else rom.get(b, f"<{b}>")
            for b in self.row(number)
        ).rstrip()


def lcd_display(charmap: str = "A00") -> tuple[LcdDisplay, RecordedHd44780]:
    made: list[RecordedHd44780] = []

    def factory(**arguments: Any) -> RecordedHd44780:
        made.append(RecordedHd44780(**arguments))
        return made[0]

    display = LcdDisplay(address=0x27, cols=COLS, rows=2, charmap=charmap, lcd=factory)  # type: ignore[arg-type]
    return display, made[0]


def test_a_drawn_letter_is_as_the_glyph_table_says() -> None:
    # č: a caron over a c five rows high, drawn by hand here.
    assert GLYPHS["č"] == (0b01010, 0b00100, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110, 0)
    # Ľ: a caron over an L five rows high.
    assert GLYPHS["Ľ"] == (0b01010, 0b00100, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111, 0)
    assert all(len(g) == 8 and all(0 <= row < 32 for row in g) for g in GLYPHS.values())
    assert len(set(GLYPHS.values())) == len(GLYPHS)  # no two letters look the same


def test_slovak_and_czech_accents_are_drawn_as_custom_characters() -> None:
    display, lcd = lcd_display()
    display.show(["Čaká: 3", "Voľno, ďakujeme"])
    # Row 0: custom character 0 (Č), "a", 1 (á), then ASCII; row 1: 2 is ľ, 3 is ď.
    assert lcd.row(0) == b"\x00ak\x01: 3".ljust(COLS)
    assert lcd.row(1) == b"Vo\x02no, \x03akujeme".ljust(COLS)
    assert [lcd.glyph(slot) for slot in range(4)] == [GLYPHS[c] for c in "Čáľď"]
    assert [lcd.read(0), lcd.read(1)] == ["Čaká: 3", "Voľno, ďakujeme"]
    # "ä" is in the A00 ROM (0xE1): no custom character for it.
    display.show(["Čaká: 3", "Päť"])
    assert lcd.row(1)[:3] == b"P\xe1\x02"  # ť takes slot 2, which ľ left
    assert lcd.read(1) == "Päť"


def test_past_eight_letters_the_rest_lose_their_accent() -> None:
    display, lcd = lcd_display()
    display.show(["čďěňřšťůžľ", "Čaká"])
    assert lcd.read(0) == "čďěňřšťůzl"
    assert lcd.read(1) == "Caka"
    assert lcd.row(0)[:8] == bytes(range(8))


def test_letters_on_the_screen_keep_their_slot_and_rows_are_not_rewritten() -> None:
    display, lcd = lcd_display()
    display.show(["Čaká", "Voľno"])
    lcd.instructions.clear()
    display.show(["Čaká", "Ťava"])  # ľ goes, Ť comes: it takes ľ's slot, 2
    assert lcd.cgram_writes() == [2]
    assert hd44780.LCD_SETDDRAMADDR | 0x00 not in lcd.instructions  # row 0 stays
    assert [lcd.read(0), lcd.read(1)] == ["Čaká", "Ťava"]
    lcd.instructions.clear()
    display.show(["Čaká", "Ťava"])
    assert lcd.instructions == []  # nothing changed, nothing sent


def test_the_priority_mark_is_drawn_on_an_a00_lcd_and_from_the_rom_on_an_a02() -> None:
    display, lcd = lcd_display("A00")
    display.show(["»A042 (2x)", "Čaká: 3"])
    assert lcd.row(0)[:5] == b"\x00A042"
    assert lcd.glyph(0) == GLYPHS["»"]
    assert lcd.read(0) == "»A042 (2x)"
    display, lcd = lcd_display("A02")
    display.show(["»A042", "Čaká: 3"])
    assert lcd.row(0)[:5] == b"\xbbA042"  # the A02 ROM's own »
    assert lcd.cgram_writes() == [0]  # only Č is drawn


def test_the_priority_mark_without_a_free_slot_is_a_plain_sign() -> None:
    display, lcd = lcd_display()
    display.show(["čďěňřšťů", "»A042"])
    assert lcd.read(1) == ">A042"


def test_ukrainian_is_romanised_on_an_a00_lcd() -> None:
    display, lcd = lcd_display("A00")
    display.show(["Черга: 3", "Вільно"])
    assert [lcd.read(0), lcd.read(1)] == ["Cherha: 3", "Vilno"]
    assert lcd.cgram_writes() == []


def test_ukrainian_in_capitals_from_the_a02_rom_and_drawn_where_it_has_none() -> None:
    display, lcd = lcd_display("A02")
    display.show(["Черга: 3", "Їжак, Ґанок"])
    rom = lcd.codec.codec.encoding_table
    # Ч and Ж are in the A02 ROM; Е, Р, А, К, Н, О look like Latin capitals.
    assert lcd.row(0)[:5] == bytes([rom["Ч"], 0x45, 0x50, 0x00, 0x41])  # Ч E P (Г drawn) A
    assert lcd.glyph(0) == GLYPHS["Г"]
    assert lcd.read(0) == "ЧEPГA: 3"
    assert lcd.read(1) == "ЇЖAK, ҐAHOK"
    # Slovak on A02: á is in its ROM, č is drawn.
    display.show(["Čaká", ""])
    assert lcd.read(0) == "Čaká"
    assert lcd.row(0)[3] == rom["á"]


def test_control_characters_never_reach_the_lcd_as_custom_characters() -> None:
    display, lcd = lcd_display()
    display.show(["A\x01B\x07", "\x1b[2J"])
    assert lcd.row(0) == b"A?B?".ljust(COLS)
    assert lcd.row(1) == b"?[2J".ljust(COLS)


def test_a_failed_write_sends_the_custom_characters_again(caplog: pytest.LogCaptureFixture) -> None:
    display, lcd = lcd_display()
    lcd.failing = True
    with caplog.at_level(logging.ERROR):
        display.show(["Čaká", ""])
    assert "the LCD does not answer" in caplog.text
    lcd.failing = False
    lcd.cgram[:] = bytes(64)  # it lost power
    display.show(["Čaká", ""])
    assert lcd.read(0) == "Čaká"


@pytest.mark.parametrize(
    ("ukrainian", "latin"),
    [  # the examples of the Cabinet of Ministers' resolution 55 of 2010
        ("Алушта", "Alushta"),
        ("Борщагівка", "Borshchahivka"),
        ("Вишгород", "Vyshhorod"),
        ("Гадяч", "Hadiach"),
        ("Згорани", "Zghorany"),
        ("Ґалаґан", "Galagan"),
        ("Рівне", "Rivne"),
        ("Єнакієве", "Yenakiieve"),
        ("Житомир", "Zhytomyr"),
        ("Закарпаття", "Zakarpattia"),
        ("Іршава", "Irshava"),
        ("Їжакевич", "Yizhakevych"),
        ("Кадиївка", "Kadyivka"),
        ("Йосипівка", "Yosypivka"),
        ("Стрий", "Stryi"),
        ("Олексій", "Oleksii"),
        ("Київ", "Kyiv"),
        ("Миколаїв", "Mykolaiv"),
        ("Ужгород", "Uzhhorod"),
        ("Харків", "Kharkiv"),
        ("Біла Церква", "Bila Tserkva"),
        ("Чернівці", "Chernivtsi"),
        ("Гоща", "Hoshcha"),
        ("Русь", "Rus"),
        ("Юрій", "Yurii"),
        ("Крюківка", "Kriukivka"),
        ("Яготин", "Yahotyn"),
        ("Ічня", "Ichnia"),
        ("Знам’янка", "Znamianka"),
        ("ЧЕРГА", "CHERHA"),
    ],
)
def test_the_national_romanisation(ukrainian: str, latin: str) -> None:
    assert romanize_uk(ukrainian) == latin


def test_the_charmap_is_a_setting() -> None:
    assert CounterSettings().lcd_charmap == "A00"
    assert CounterSettings(lcd_charmap="A02").lcd_charmap == "A02"
    with pytest.raises(ValueError, match="lcd_charmap"):
        CounterSettings(lcd_charmap="B52")  # type: ignore[arg-type]
