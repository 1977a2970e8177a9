"""The office's languages on an HD44780 character LCD: ROM letters, drawn ones, romanised.

An HD44780 shows the letters of its character ROM (``A00``: ASCII and Japanese kana;
``A02``: ASCII, Western European letters and the Cyrillic capitals that differ from
Latin ones) and 8 letters of its own drawing (CGRAM). :func:`compose` turns the lines
of one screen into what to write:

- a letter the ROM has is written as it is;
- a letter it lacks that :data:`GLYPHS` draws (the Slovak and Czech accented letters;
  with ``A02`` also the Ukrainian capitals missing from it; with ``A00`` the priority
  mark ») takes one of the 8 custom characters; a letter still on the screen keeps its
  slot, so rows that do not change need not be written again; past 8 distinct ones,
  the rest fall back to the letter without its accent (the mark to ``>``);
- Ukrainian on an ``A00`` LCD is romanised by the Ukrainian national system of 2010
  (:func:`romanize_uk`); on ``A02`` it is shown in capitals, from the ROM, as Latin
  capitals where they look the same, and drawn where the ROM has none;
- anything else is shown without accents, or as ``?``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

__all__ = ["GLYPHS", "SLOTS", "Glyph", "compose", "romanize_uk"]

Glyph = tuple[int, int, int, int, int, int, int, int]
"""A 5×8 custom character: eight rows, the low 5 bits of each the dots, left one highest."""

SLOTS = 8
"""The HD44780's custom characters."""

_ACCENTS = {
    "acute": ("...#.", "..#.."),
    "caron": (".#.#.", "..#.."),
    "diaeresis": (".#.#.", "....."),
    "circumflex": ("..#..", ".#.#."),
    "ring": (".###.", ".#.#."),
}
"""Marks on the two top rows, over a letter five rows high."""

_SMALL = {
    "a": (".###.", "....#", ".####", "#...#", ".####"),
    "c": (".###.", "#....", "#....", "#...#", ".###."),
    "e": (".###.", "#...#", "#####", "#....", ".###."),
    "i": (".##..", "..#..", "..#..", "..#..", ".###."),
    "l": (".#...", ".#...", ".#...", ".#...", "..##."),
    "n": ("#.##.", "##..#", "#...#", "#...#", "#...#"),
    "o": (".....", ".###.", "#...#", "#...#", ".###."),
    "r": ("#.##.", "##..#", "#....", "#....", "#...."),
    "s": (".###.", "#....", ".###.", "....#", "####."),
    "u": ("#...#", "#...#", "#...#", "#..##", ".##.#"),
    "y": ("#...#", "#...#", "#...#", ".####", "....#", ".###."),
    "z": (".....", "#####", "..#..", ".#...", "#####"),
    # Capitals are drawn five rows high too, to leave room for the mark.
    "A": (".###.", "#...#", "#####", "#...#", "#...#"),
    "C": (".####", "#....", "#....", "#....", ".####"),
    "D": ("####.", "#...#", "#...#", "#...#", "####."),
    "E": ("#####", "#....", "####.", "#....", "#####"),
    "I": (".###.", "..#..", "..#..", "..#..", ".###."),
    "L": ("#....", "#....", "#....", "#....", "#####"),
    "N": ("#...#", "##..#", "#.#.#", "#..##", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", ".###."),
    "R": ("####.", "#...#", "####.", "#..#.", "#...#"),
    "S": (".####", "#....", ".###.", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", ".###."),
    "Y": ("#...#", ".#.#.", "..#..", "..#..", "..#.."),
    "Z": ("#####", "...#.", "..#..", ".#...", "#####"),
}
"""Letters five rows high (``y`` six, with its tail), to go under a mark; ``o`` and ``z``
four, to differ from their capitals."""

_MARKED = {
    "acute": "áéíóúýÁÉÍÓÚÝĺĹŕŔ",
    "caron": "čěňřšžČĎĚĽŇŘŠŤŽ",
    "diaeresis": "äÄ",
    "circumflex": "ôÔ",
    "ring": "ůŮ",
}
"""The accented letters drawn as a mark over a letter of :data:`_SMALL`."""

_WHOLE = {
    # d, l and t reach the top row: their caron is a stroke at their right.
    "ď": ("...##", "...##", ".###.", "#..#.", "#..#.", "#..#.", ".###.", "....."),
    "ľ": (".##.#", "..#.#", "..#..", "..#..", "..#..", "..#..", ".###.", "....."),
    "ť": (".#..#", ".#..#", "####.", ".#...", ".#...", ".#..#", "..##.", "....."),
    # The Ukrainian capitals an A02 ROM lacks, as high as its own capitals.
    "Г": ("#####", "#....", "#....", "#....", "#....", "#....", "#....", "....."),
    "Ґ": ("....#", "#####", "#....", "#....", "#....", "#....", "#....", "....."),
    "Є": (".###.", "#...#", "#....", "####.", "#....", "#...#", ".###.", "....."),
    "Ї": (".#.#.", ".....", ".###.", "..#..", "..#..", "..#..", ".###.", "....."),
    "Ф": ("..#..", ".###.", "#.#.#", "#.#.#", "#.#.#", ".###.", "..#..", "....."),
    "Ь": ("#....", "#....", "#....", "####.", "#...#", "#...#", "####.", "....."),
    # The priority mark (as on the lobby's screens), which an A00 ROM lacks.
    "»": (".....", "#.#..", ".#.#.", "..#.#", ".#.#.", "#.#..", ".....", "....."),
}
"""Letters (and the priority mark) drawn whole."""

_SYMBOLS = {"»": ">"}
"""What a drawn sign that gets no slot is shown as."""


def _bits(rows: Sequence[str]) -> Glyph:
    padded = [*rows, *["....."] * (8 - len(rows))]
    values = [int(row.replace("#", "1").replace(".", "0"), 2) for row in padded]
    return (
        values[0],
        values[1],
        values[2],
        values[3],
        values[4],
        values[5],
        values[6],
        values[7],
    )


def _glyphs() -> dict[str, Glyph]:
    glyphs = {letter: _bits(rows) for letter, rows in _WHOLE.items()}
    for accent, letters in _MARKED.items():
        for letter in letters:
            base = unicodedata.normalize("NFD", letter)[0]
            glyphs[letter] = _bits((*_ACCENTS[accent], *_SMALL[base]))
    return glyphs


GLYPHS: dict[str, Glyph] = _glyphs()
"""The letters drawn as custom characters when the ROM lacks them."""

_UK: dict[str, str | tuple[str, str]] = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e",
    "є": ("ye", "ie"), "ж": "zh", "з": "z", "и": "y", "і": "i", "ї": ("yi", "i"),
    "й": ("y", "i"), "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
    "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch",
    "ш": "sh", "щ": "shch", "ь": "", "ю": ("yu", "iu"), "я": ("ya", "ia"),
}  # fmt: skip
"""The Ukrainian national romanisation (Cabinet of Ministers resolution 55, 2010):
a pair is (at the start of a word, elsewhere)."""

_APOSTROPHES = "’ʼ'"
"""Written in Ukrainian words, left out in their romanisation."""

_LOOKALIKES = dict(zip("АВЕІКМНОРСТХ", "ABEIKMHOPCTX", strict=True))
"""Cyrillic capitals shown as the Latin capitals that look the same."""


def romanize_uk(text: str) -> str:
    """``text`` with its Ukrainian letters romanised (the national system of 2010).

    Є, Ї, Й, Ю, Я are Ye, Yi, Y, Yu, Ya at the start of a word and ie, i, i, iu, ia
    elsewhere; зг is zgh; the soft sign and the apostrophe are left out. A capital
    gives a capital (all capitals in a word in capitals).
    """
    out: list[str] = []
    for index, char in enumerate(text):
        lower = char.lower()
        before = text[index - 1] if index else ""
        if char in _APOSTROPHES and before.lower() in _UK:
            continue
        rule = _UK.get(lower)
        if rule is None:
            out.append(char)
            continue
        if isinstance(rule, tuple):
            starts = not before or (not before.isalpha() and before not in _APOSTROPHES)
            rule = rule[0] if starts else rule[1]
        if lower == "г" and before.lower() == "з":
            rule = "gh"
        if char != lower:
            after = text[index + 1] if index + 1 < len(text) else ""
            shouting = (before.isalpha() and before.isupper()) or (
                after.isalpha() and after.isupper()
            )
            rule = rule.upper() if shouting else rule.capitalize()
        out.append(rule)
    return "".join(out)


def _plain(char: str, rom: Mapping[str, int]) -> str:
    """``char`` without its accents, or ``?`` when the ROM has no such letter."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return "".join(c if c in rom and c >= " " else "?" for c in folded) or "?"


def _cells(line: str, rom: Mapping[str, int], *, cyrillic_rom: bool) -> list[str]:
    """``line`` as characters the ROM has, or that :data:`GLYPHS` draws."""
    if not cyrillic_rom:
        line = romanize_uk(line)
    cells: list[str] = []
    for written in line:
        char = written
        if cyrillic_rom and written.lower() in _UK:
            char = _LOOKALIKES.get(written.upper(), written.upper())
        if (char in rom and char >= " ") or char in GLYPHS:
            cells.append(char)
        elif cyrillic_rom and char.lower() in _UK:
            cells.extend(romanize_uk(char).upper())
        elif cyrillic_rom and char in _APOSTROPHES:
            cells.append("'")
        else:
            cells.extend(_plain(char, rom))
    return cells


def _fallback(letter: str, rom: Mapping[str, int]) -> str:
    """A drawn letter without a slot: without its accent, or romanised."""
    if letter.lower() in _UK:
        return romanize_uk(letter).upper()
    return _SYMBOLS.get(letter) or _plain(letter, rom)


def compose(
    lines: Sequence[str],
    *,
    cols: int,
    rows: int,
    rom: Mapping[str, int],
    cyrillic_rom: bool = False,
    slots: Mapping[str, int] | None = None,
) -> tuple[tuple[str, ...], dict[str, int]]:
    """One screen: ``rows`` lines of ``cols`` characters to write, and the custom characters.

    ``rom`` is the LCD's character table (RPLCD's ``encoding_table``; characters 0 to 7
    write the custom characters); ``cyrillic_rom`` says it has the A02 ROM's
    Cyrillic capitals; ``slots`` are the drawn letters the LCD holds now, by letter.
    Returns the lines (a drawn letter as the character of its slot) and the slots the
    screen needs, those already held kept where they are.
    """
    held = dict(slots or {})
    cells = [_cells(line, rom, cyrillic_rom=cyrillic_rom)[:cols] for line in lines[:rows]]
    cells += [[] for _ in range(rows - len(cells))]
    needed = list(dict.fromkeys(c for row in cells for c in row if c not in rom))
    chosen = {letter: slot for letter, slot in held.items() if letter in needed}
    free = [slot for slot in range(SLOTS) if slot not in chosen.values()]
    for letter in needed:
        if letter not in chosen and free:
            chosen[letter] = free.pop(0)
    shown = tuple(
        "".join(
            chr(chosen[c]) if c in chosen else c if c in rom else _fallback(c, rom) for c in row
        )[:cols].ljust(cols)
        for row in cells
    )
    return shown, chosen
