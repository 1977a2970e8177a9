"""The ticket printer: ESC/POS over a loopback TCP printer and a socat serial pair.

python-escpos's own Network and Serial printers carry the bytes; the tests decode
what arrived and check the number, the text and its code pages, the QR code and the
cut, and the real-time status answers (or their absence).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import serial
from kiosk_helpers import CUT, REPLIES, make_printer, network
from process_helpers import Process

from kiosk.catalog import Catalog
from kiosk.escpos_text import decode
from kiosk.loopback import LoopbackPrinter
from kiosk.printer import (
    NetworkTransport,
    PrintedTicket,
    PrinterFault,
    SerialTransport,
    SimulatedTransport,
    TicketPrinter,
    parse_status,
)

WAIT_S = 10.0


def ticket(lang: str, service: str, number: str = "A042", **changes: object) -> PrintedTicket:
    fields: dict[str, object] = {
        "ticket_id": "0123456789abcdef0123456789abcdef",
        "number": number,
        "service_name": service,
        "issued_at": datetime(2026, 3, 2, 8, 15, tzinfo=ZoneInfo("Europe/Bratislava")),
        "people_ahead": 3,
        "estimated_wait_s": 840,
        "lang": lang,
    }
    fields.update(changes)
    return PrintedTicket(**fields)  # type: ignore[arg-type]


@pytest.fixture
def loopback() -> Iterator[LoopbackPrinter]:
    with LoopbackPrinter(REPLIES["ok"]) as printer:
        yield printer


def print_and_read(loopback: LoopbackPrinter, printer: TicketPrinter, what: PrintedTicket) -> bytes:
    printer.print(what)
    assert loopback.wait_for(CUT, WAIT_S), "the ticket's cut did not arrive"
    return loopback.take()


def test_a_slovak_ticket_over_the_network(loopback: LoopbackPrinter) -> None:
    printer = make_printer(network(loopback))
    data = print_and_read(loopback, printer, ticket("sk", "Všeobecné informácie"))
    printed = decode(data, "TM-T20II")
    number = next(line for line in printed.lines if line.text == "A042")
    assert number.size == 0x77  # 8 × 8: the largest type, fits 576 dots
    assert "Všeobecné informácie" in printed.texts
    assert "Pred vami: 3" in printed.texts
    assert "Odhad čakania: asi 14 min" in printed.texts
    assert "Vydané 02.03.2026 08:15" in printed.texts
    slovak = {line.text: line.codepages for line in printed.lines}
    assert slovak["Ďakujeme za trpezlivosť"] == {"CP852"}
    assert "Ďakujeme za trpezlivosť".encode("cp852") in data
    assert printed.qr_codes == ["https://poradovnik.example/t/0123456789abcdef0123456789abcdef"]
    assert printed.images == []
    assert printed.cuts == 1
    assert data.endswith(CUT)
    assert "?" not in "".join(printed.texts)


@pytest.mark.parametrize(
    ("lang", "service", "page"),
    [("uk", "Місцеві податки", "CP1125"), ("cs", "Místní daně", "CP852")],
)
def test_czech_and_ukrainian_tickets_use_their_code_pages(
    loopback: LoopbackPrinter, lang: str, service: str, page: str
) -> None:
    data = print_and_read(loopback, make_printer(network(loopback)), ticket(lang, service))
    printed = decode(data, "TM-T20II")
    assert service.encode(page) in data
    assert {line.text: line.codepages for line in printed.lines}[service] == {page}
    footer = Catalog.load(lang).text("ticket.footer")
    assert footer in printed.texts


def test_an_offline_ticket_says_so_discreetly(loopback: LoopbackPrinter) -> None:
    data = print_and_read(
        loopback, make_printer(network(loopback)), ticket("en", "Parking", offline=True)
    )
    assert "issued offline" in decode(data, "TM-T20II").texts


def test_a_line_without_a_code_page_is_printed_as_a_picture(loopback: LoopbackPrinter) -> None:
    # The TM-T88III has no CP852: "Ď" and "ť" exist in none of its code pages.
    printer = make_printer(network(loopback, "TM-T88III"), "TM-T88III")
    data = print_and_read(loopback, printer, ticket("sk", "Parkovanie"))
    printed = decode(data, "TM-T88III")
    assert "Ďakujeme za trpezlivosť" not in printed.texts
    assert "Parkovanie" in printed.texts  # what it can print stays text
    assert len(printed.images) >= 1
    assert not any("?" in text for text in printed.texts)


@pytest.mark.parametrize("state", list(REPLIES))
def test_status_is_read_with_dle_eot(state: str) -> None:
    with LoopbackPrinter(REPLIES[state]) as loopback:
        status = make_printer(network(loopback)).check()
    assert status.state == state
    assert decode(loopback.take()).status_queries == [1, 2, 4]


def test_a_silent_printer_is_unknown_not_ok() -> None:
    with LoopbackPrinter(replies=None) as silent:
        printer = make_printer(network(silent))
        status = printer.check()
        assert status.state == "unknown"
        assert not status.can_print or status.state == "unknown"
        # And it still prints.
        data = print_and_read(silent, printer, ticket("sk", "Parkovanie"))
    assert b"A042" in data


def test_garbage_replies_are_unknown() -> None:
    assert parse_status(b"\xff\x00\x12").state == "unknown"
    assert parse_status(b"\x16\x12").state == "unknown"


def test_a_printer_that_is_not_there() -> None:
    with LoopbackPrinter() as gone:
        port = gone.port
    printer = make_printer(
        NetworkTransport(host="127.0.0.1", port=port, profile="TM-T20II", timeout_s=2)
    )
    assert printer.check().state == "offline"
    with pytest.raises(PrinterFault, match=r"127\.0\.0\.1"):
        printer.print(ticket("sk", "Parkovanie"))


def test_the_printer_comes_back_after_a_restart(loopback: LoopbackPrinter) -> None:
    printer = make_printer(network(loopback))
    assert printer.check().state == "ok"
    loopback.hang_up()  # the printer is switched off and on
    assert printer.check().state == "offline"
    assert printer.check().state == "ok"  # reconnects
    assert loopback.connections == 2


def test_the_simulated_printer_writes_text(tmp_path: Path) -> None:
    out = tmp_path / "tickets.txt"
    printer = make_printer(SimulatedTransport(profile="TM-T20II", file=out, state="paper_near_end"))
    printer.print(ticket("uk", "Паркування"))
    text = out.read_text(encoding="utf-8")
    assert "A042" in text
    assert "Паркування" in text
    assert "[QR https://poradovnik.example/t/0123456789abcdef0123456789abcdef]" in text
    assert printer.check().state == "paper_near_end"


# -- serial ---------------------------------------------------------------------------


@pytest.fixture
def serial_pair(tmp_path: Path, processes: Callable[..., Process]) -> Iterator[tuple[Path, Path]]:
    """Two linked pseudo-terminals from socat: the kiosk's end and the printer's."""
    if shutil.which("socat") is None:
        pytest.fail("socat is not installed (scripts/test installs it)")
    kiosk_end, printer_end = tmp_path / "kiosk-tty", tmp_path / "printer-tty"
    ends = [f"pty,raw,echo=0,link={kiosk_end}", f"pty,raw,echo=0,link={printer_end}"]
    socat = processes(["socat", "-d", "-d", *ends])
    # socat says when each end exists, then when it is running
    socat.wait_for_line(lambda line: "starting data transfer loop" in line, 10, what="that it runs")
    yield kiosk_end, printer_end
    socat.stop(timeout=10)


class SerialPrinterEnd:
    """The printer's end of the pair: records bytes and answers DLE EOT as configured."""

    def __init__(self, path: Path, replies: dict[int, int] | None) -> None:
        self.port = serial.Serial(str(path), 38400, timeout=0.05)
        self.replies = replies
        self.data = bytearray()
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            chunk = self.port.read(4096)
            if not chunk:
                continue
            with self.changed:
                self.data += chunk
                self.changed.notify_all()
            if self.replies is not None:
                for n in (1, 2, 4):
                    if bytes([0x10, 0x04, n]) in chunk:
                        self.port.write(bytes([self.replies[n]]))

    def wait_for(self, marker: bytes) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: marker in self.data, WAIT_S)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=WAIT_S)
        self.port.close()


@pytest.mark.parametrize(
    ("replies", "state"), [(REPLIES["paper_near_end"], "paper_near_end"), (None, "unknown")]
)
def test_a_serial_printer(
    serial_pair: tuple[Path, Path], replies: dict[int, int] | None, state: str
) -> None:
    kiosk_end, printer_end = serial_pair
    end = SerialPrinterEnd(printer_end, replies)
    try:
        transport = SerialTransport(
            device=kiosk_end, baudrate=38400, profile="TM-T20II", timeout_s=2
        )
        printer = make_printer(transport)
        assert printer.check().state == state
        printer.print(ticket("cs", "Parkování", number="C007"))
        assert end.wait_for(CUT)
        printer.close()
    finally:
        end.close()
    printed = decode(bytes(end.data), "TM-T20II")
    assert "C007" in printed.texts
    assert "Parkování" in printed.texts
    assert "Parkování".encode("cp852") in end.data
    assert printed.qr_codes
    assert printed.cuts == 1
