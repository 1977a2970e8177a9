"""Programs a test starts (a hub, the demo, a device): their output is kept, never lost.

:class:`Process` starts a program with its standard output and error merged and read
by a thread of its own, so a chatty program never blocks on a full pipe and nothing
it says is lost. :meth:`Process.describe` gives its command, exit status and last
lines for an assertion message; the ``processes`` fixture (``conftest.py``) stops
every program a test started and adds each one's output to the report of a failed
test, so a server that could not start (a port taken, a bad setting) says why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["Process", "poradovnik_args"]

TAIL_LINES = 60
"""How many of the last lines :meth:`Process.describe` shows."""


def poradovnik_args(*args: str) -> list[str]:
    """The command line of ``poradovnik ARGS`` run by this Python."""
    return [sys.executable, "-m", "poradovnik.cli", *args]


class Process:
    """A program started by a test, its output collected line by line.

    ``env`` is added to the test's environment. ``name`` names it in messages.
    """

    def __init__(
        self,
        args: Sequence[str | Path],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.args = [str(arg) for arg in args]
        self.name = name or Path(self.args[0]).name
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self.popen = subprocess.Popen(
            self.args,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, name=f"output-{self.name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream = self.popen.stdout
        assert stream is not None
        for line in stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        """The program's process id."""
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """Its exit status, or ``None`` while it runs."""
        return self.popen.poll()

    def output(self) -> str:
        """Everything it has written so far (standard output and error)."""
        with self._changed:
            return "".join(self._lines)

    def describe(self) -> str:
        """Its command, whether it still runs, and its last lines: for assertion messages."""
        code = self.popen.poll()
        state = "still running" if code is None else f"exit status {code}"
        with self._changed:
            tail = self._lines[-TAIL_LINES:]
            skipped = len(self._lines) - len(tail)
        more = f"[{skipped} earlier lines]\n" if skipped else ""
        return (
            f"{self.name} ({' '.join(self.args)}; {state}), its output:\n"
            f"{more}{''.join(tail) or '(nothing)'}"
        )

    def wait_for_line(
        self, wanted: Callable[[str], bool], timeout: float, *, what: str = "the line awaited"
    ) -> str:
        """The first line (old or new) that ``wanted`` accepts, waiting up to ``timeout``.

        Fails the test with the program's output when it ends or the time is up first.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    if wanted(line):
                        return line
                seen = len(self._lines)
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._changed.wait(left)
        why = f"ended before {what}" if self._eof else f"did not say {what} within {timeout:g} s"
        raise AssertionError(f"{self.name} {why}: {self.describe()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` (if it runs), wait for the end and its last output; the exit status.

        Kills it and fails the test when it does not end within ``timeout``.
        """
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            self._reader.join(timeout=5.0)
            raise AssertionError(
                f"{self.name} did not end within {timeout:g} s of "
                f"{signal.Signals(sig).name}: {self.describe()}"
            ) from None
        self._reader.join(timeout=5.0)
        return code

    def kill(self) -> None:
        """End it at once (SIGKILL) if it still runs, and wait for it."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        self._reader.join(timeout=5.0)

    def __enter__(self) -> Process:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
