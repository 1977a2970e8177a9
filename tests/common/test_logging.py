"""Logging setup: one plain line per record on stderr, set up once however often called."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from common.logging import LineFormatter, RepeatFilter, setup_logging, stderr_is_journal
from common.logthrottle import ThrottledLog


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_one_plain_line_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info")
    log = logging.getLogger("hub.bridge")
    log.debug("not shown")
    log.info("connected to %s", "127.0.0.1:41883")
    log.warning("two\nlines")
    err = capsys.readouterr().err
    assert err == (
        "INFO hub.bridge: connected to 127.0.0.1:41883\nWARNING hub.bridge: two | lines\n"
    )


def test_traceback_stays_on_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("ERROR")
    try:
        raise RuntimeError("printer on fire")
    except RuntimeError:
        logging.getLogger("kiosk").exception("cannot print")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ERROR kiosk: cannot print | Traceback")
    assert lines[0].endswith("RuntimeError: printer on fire")


def test_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("DEBUG")
    setup_logging("DEBUG")
    setup_logging("WARNING")
    logging.getLogger("x").info("quiet")
    logging.getLogger("x").warning("once")
    assert capsys.readouterr().err == "WARNING x: once\n"


def test_unknown_level() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD")


def test_journal_priority_prefix() -> None:
    formatter = LineFormatter(journal=True)

    def line(level: int) -> str:
        record = logging.LogRecord("p", level, __file__, 1, "m", None, None)
        return formatter.format(record)

    assert line(logging.DEBUG) == "<7>DEBUG p: m"
    assert line(logging.INFO) == "<6>INFO p: m"
    assert line(logging.WARNING) == "<4>WARNING p: m"
    assert line(logging.ERROR) == "<3>ERROR p: m"
    assert line(logging.CRITICAL) == "<2>CRITICAL p: m"


def test_stderr_is_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not stderr_is_journal({})
    assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"})
    with open(os.devnull, "w") as devnull:
        stat = os.fstat(devnull.fileno())
        monkeypatch.setattr("sys.stderr", devnull)
        assert stderr_is_journal({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"})
        assert not stderr_is_journal({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino + 1}"})


def test_a_repeated_event_is_logged_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    throttled = ThrottledLog(
        logging.getLogger("test.throttle"), interval_s=60, clock=lambda: now[0]
    )
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        for _ in range(1000):
            throttled.log(logging.WARNING, "refused", "refused %s", "x")
        throttled.log(logging.WARNING, "other", "another kind")
        now[0] = 61.0
        throttled.log(logging.WARNING, "refused", "refused %s", "y")
    assert [r.getMessage() for r in caplog.records] == [
        "refused x",
        "another kind",
        "refused y (and 999 more like it since the last such line)",
    ]


def test_throttled_keys_are_bounded() -> None:
    throttled = ThrottledLog(logging.getLogger("test.throttle"), max_keys=3, clock=lambda: 0.0)
    for key in range(10):
        assert throttled.log(logging.DEBUG, key, "event")
    # The oldest keys were forgotten: an event of one of them is logged again.
    assert throttled.log(logging.DEBUG, 0, "event")
    assert not throttled.log(logging.DEBUG, 9, "event")


def test_a_repeated_warning_is_shown_once_per_interval_with_a_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = [0.0]
    setup_logging("info")
    (handler,) = [h for h in logging.getLogger().handlers if h.filters]
    handler.filters[:] = [RepeatFilter(10.0, clock=lambda: now[0])]
    log = logging.getLogger("asyncio")
    for _ in range(1000):
        log.error("socket.accept() out of system resource")
    log.warning("another warning")
    log.info("connected")
    log.info("connected")
    now[0] = 12.0
    log.error("socket.accept() out of system resource")
    assert capsys.readouterr().err.splitlines() == [
        "ERROR asyncio: socket.accept() out of system resource",
        "WARNING asyncio: another warning",
        "INFO asyncio: connected",
        "INFO asyncio: connected",
        "ERROR asyncio: socket.accept() out of system resource (and 999 more like it in the"
        " last 12 s)",
    ]
