"""The DejaVu fonts the kiosk draws with: on its screen and for lines printed as pictures."""

from __future__ import annotations

from pathlib import Path

from common.errors import PoradovnikError

__all__ = ["font_path"]


def font_path(font_dir: Path, *, bold: bool = False) -> Path:
    """The DejaVu Sans font file in ``font_dir``; :class:`PoradovnikError` when it is missing.

    pygame's built-in font has no Cyrillic, and the kiosk must draw Ukrainian.
    """
    path = font_dir / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if not path.is_file():
        raise PoradovnikError(
            f"the DejaVu font {path.name} is not in {font_dir}: install the Debian package "
            "fonts-dejavu-core, or set [kiosk] font_dir to where DejaVuSans.ttf is"
        )
    return path
