"""The display process of ``bench/display_frame.py``: ``poradovnik display`` with a frame hook.

It imports only what a display Pi has (no hub, no benchmark code), so that its memory
is the display's. Each frame whose current ticket changed is reported on stdout as
``frame <ticket> <time.monotonic()>``, and the first frame that hears the hub as
``connected <time>``. The parent sets SDL's dummy video and audio drivers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common.settings import load_settings
from display import app
from lobby.content import Scene


def main(config: Path) -> None:
    shown: list[str | None] = [None]
    connected = [False]

    def report(scene: Scene, _changed: object) -> None:
        now = time.monotonic()
        if scene.connected and not connected[0]:
            connected[0] = True
            print(f"connected {now}", flush=True)
        ticket = scene.current.ticket if scene.current is not None else None
        if ticket != shown[0]:
            shown[0] = ticket
            print(f"frame {ticket} {now}", flush=True)

    app.run(load_settings(config, env={}), on_frame=report)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
