"""Benchmark: a Next button's pin pressed → the counter's retained state and the ``calls`` message.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/counter.py [--presses 50] [--think-ms 200] [--lcd]

It starts its own Mosquitto and ``poradovnik hub`` as ``bench/sync.py`` does (and with
its helpers): four services, 20 counters, enough waiting tickets that every press
calls someone. Then 20 counter terminals, one per counter as on 20 Pis, each the real
:class:`~counter_terminal.app.CounterTerminal` on gpiozero's
``MockFactory`` with its own account, link and outbox, five to a process in four
processes (real terminals are machines of their own), and in the benchmark's own
process an observer (the lobby display's account) subscribed to ``calls`` and
``counter/+/state``. Each panel has a Next button and a light; with ``--lcd`` also a
(simulated) LCD, which makes it hear every service's queue state: every call changes
one, and the 20 terminals then handle 20 times as many messages on the benchmark's two
cores, where real ones have a Pi each.

One thread per counter plays its clerk: it drives the Next pin low (the press), holds
it until the panel has taken it, lets go, waits until the hub has answered, then
pauses a random time (exponential, ``--think-ms`` on average, as in ``bench/sync.py``)
before the next press. A press's latency runs from just before the pin goes low to the
moment the observer has both the counter's retained state naming the new ticket and
the ``calls`` message for it; both are reported on their own too. A press counts at
the contact's first edge (``[counter] debounce_ms`` only ignores the bounces after
it), so no debounce wait is in it. Each counter's first presses warm up and are not
counted.

Two floors, measured in the same run through the same broker and hub before the
terminals start: the raw MQTT round trip of ``bench/sync.py`` (published, echoed,
received), and ``bench/sync.py``'s own press → call phase (each counter's panel a bare
:class:`~sync_agent.link.DeviceLink` pressing ``next`` at the same pace, the latency
from just before ``send`` to the display's ``calls``): what the buttons add is the
difference. It prints the p50 and p99 of each, the ratios of the p99s, whether the
targets are met, and one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import multiprocessing
import queue
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory
from harness import BenchError, ms, percentiles, run_in_tempdir
from sync import (
    COUNTERS,
    MAX_PRESSES,
    PANEL_PROCESSES,
    SITE,
    START_S,
    THINK_MS,
    WAIT_S,
    WARMUP_PRESSES,
    Display,
    Pace,
    PanelRun,
    call_round_trips,
    counter_ids,
    lobby,
    office_broker,
    panel_groups,
    panel_name,
    panel_process,
    phase_result,
    running_hub,
)

from common.counter_settings import CounterSettings, PanelSettings
from common.settings import (
    DataSettings,
    DeviceSettings,
    MqttSettings,
    Settings,
    SiteSettings,
)
from counter_terminal.app import CounterTerminal
from counter_terminal.desk import CounterDesk
from counter_terminal.simulated import SimulatedClerks
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

TARGET_P99_MS = 15.0
"""Press → state and call p99 on a 2-core machine with 20 counters …"""

TARGET_SYNC_RATIO = 2.0
"""… and at most this many times ``bench/sync.py``'s press → call p99 in the same run."""

MAX_COUNTER_PRESSES = (MAX_PRESSES + WARMUP_PRESSES) // 2 - WARMUP_PRESSES
"""The sync phase and the buttons' phase each take their tickets from the same 4 × 999."""

DEBOUNCE_MS = CounterSettings().debounce_ms


@dataclass
class Counter:
    """One counter's presses and what the observer saw of them, matched in order."""

    pressed: list[float] = field(default_factory=list)
    states: list[float] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    called: list[str] = field(default_factory=list)
    """The ticket id of each call."""
    shown: list[str] = field(default_factory=list)
    """The ticket id of each new state."""
    last_ticket: str | None = None


class Observer:
    """The lobby's view: calls and retained counter states, timed as they arrive.

    While ``sync`` is set (the sync phase), what it hears goes to that display instead.
    """

    def __init__(self, sync: Display) -> None:
        self.counters = {c: Counter() for c in counter_ids()}
        self.sync: Display | None = sync
        self._seen = threading.Condition()

    def measure(self, runs: list[PanelRun]) -> None:
        """The sync phase (``runs``) is over: observe the buttons' presses from now on.

        A counter's state naming the sync phase's last ticket may still come: ignored.
        """
        with self._seen:
            self.sync = None
            for run in runs:
                for counter, presses in run.presses.items():
                    if presses:
                        self.counters[counter].last_ticket = presses[-1].ticket_id

    def on_call(self, topic: str, payload: bytes) -> None:
        heard = time.perf_counter()
        call = p.decode(p.Call, payload)
        with self._seen:
            if self.sync is not None:
                self.sync.on_call(topic, payload)
                return
            counter = self.counters[call.counter]
            counter.calls.append(heard)
            counter.called.append(call.ticket_id)
            self._seen.notify_all()

    def on_state(self, topic: str, payload: bytes) -> None:
        heard = time.perf_counter()
        state = p.decode(p.CounterState, payload)
        ticket = state.ticket.ticket_id if state.ticket is not None else None
        with self._seen:
            if self.sync is not None:
                self.sync.on_counter_state(topic, payload)
                return
            counter = self.counters[state.counter]
            if ticket is None or ticket == counter.last_ticket:
                return
            counter.last_ticket = ticket
            counter.states.append(heard)
            counter.shown.append(ticket)
            self._seen.notify_all()

    def wait_for(self, counter: str, presses: int) -> bool:
        """Wait until ``counter``'s first ``presses`` presses have their call and state."""
        seen = self.counters[counter]
        with self._seen:
            return self._seen.wait_for(
                lambda: len(seen.calls) >= presses and len(seen.states) >= presses, WAIT_S
            )


def terminal(mqtt: MqttSettings, counter: str, directory: Path, lcd: bool) -> CounterTerminal:
    """The counter terminal of ``counter`` on mock pins, with a Next button and a light.

    With ``lcd`` it has a (simulated) LCD too, so it hears every queue's state.
    """
    name = panel_name(counter)
    settings = Settings(
        role="counter",
        site=SiteSettings(id=SITE),
        mqtt=mqtt,
        data=DataSettings(dir=directory / name),
        device=DeviceSettings(id=name),
        counter=CounterSettings(
            pin_factory="mock",
            next_guard_s=0.0,
            display="simulated" if lcd else "none",
            panels=(PanelSettings(counter=counter, next=17, serving_led=13),),
        ),
    )
    link = DeviceLink(
        mqtt=mqtt,
        site=SITE,
        device_id=name,
        role="counter",
        outbox_path=directory / name / "outbox.sqlite3",
    )
    return CounterTerminal(settings, pin_factory=MockFactory(), link=link)


def clerk(counter: str, running: CounterTerminal, presses: int, pace: Pace) -> list[float]:
    """Press Next ``presses`` times at ``pace``, each once the previous one is answered.

    Returns when each press began (``time.perf_counter``, the system-wide monotonic
    clock on Linux, so the observer's process can compare).
    """
    clerks = SimulatedClerks(running.desks, timeout_s=WAIT_S)
    desk = running.desks[counter]
    pressed: list[float] = []
    for index in range(presses):
        if index and pace.stop.wait(pace.pause()):
            break
        pressed.append(time.perf_counter())
        clerks.press(counter, "next")
        with desk.changed:
            if not desk.changed.wait_for(lambda: desk.pending == 0, WAIT_S):
                raise BenchError(f"counter {counter}: press {index} not answered")
    return pressed


def ready(desk: CounterDesk) -> bool:
    """Wait until ``desk`` knows its counter's state and the hub is online."""
    with desk.changed:
        return desk.changed.wait_for(lambda: desk.state is not None and desk.office.online, WAIT_S)


def terminals_process(
    accounts: dict[str, MqttSettings],
    counters: list[str],
    directory: Path,
    presses: int,
    think_s: float,
    lcd: bool,
    start: Any,
    results: Any,
) -> None:
    """A process of counter terminals: start them, press at their pins, report.

    Puts ``{counter: [press times]}`` on ``results``, or the error's text.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    pace = Pace(think_s, threading.Event())
    outcome: dict[str, list[float]] = {}
    errors: list[str] = []
    try:
        with ExitStack() as stack:
            terminals: dict[str, CounterTerminal] = {}
            for counter in counters:
                running = terminal(accounts[panel_name(counter)], counter, directory, lcd)
                stack.callback(running.stop)
                running.start()
                terminals[counter] = running
            for counter, running in terminals.items():
                if not ready(running.desks[counter]):
                    raise BenchError(f"counter {counter}'s panel did not get its state")
            gc.freeze()  # as the counter role does once started

            def run(counter: str) -> None:
                try:
                    outcome[counter] = clerk(counter, terminals[counter], presses, pace)
                except Exception as exc:
                    errors.append(f"counter {counter}: {exc!r}")
                    pace.stop.set()

            threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in counters]
            start.wait(START_S)  # all processes' terminals are up: press
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    except Exception as exc:  # reported to the main process, which stops the run
        errors.append(str(exc))
    results.put(errors[0] if errors else outcome)


@dataclass(frozen=True)
class Figures:
    """What one run measured, in seconds."""

    both: list[float]
    states: list[float]
    calls: list[float]
    floor: list[float]
    sync: list[float]
    """``bench/sync.py``'s press → call, each measured press of the sync phase."""
    elapsed: float
    presses: int


def measure(directory: Path, presses: int, think_s: float, lcd: bool) -> Figures:
    """Run the office, the floor and the clerks at their pins; stop everything after."""
    context = multiprocessing.get_context("spawn")
    all_presses = WARMUP_PRESSES + presses
    with ExitStack() as stack:
        broker = stack.enter_context(office_broker(directory / "broker"))
        accounts = broker.accounts
        tickets = COUNTERS * (2 * all_presses + 1)
        stack.enter_context(running_hub(directory / "hub", broker, tickets))
        display = Display()
        observer = Observer(display)
        lobby(accounts, stack, observer.on_call, observer.on_state)
        if not display.counter_states.wait(WAIT_S):
            raise BenchError("the hub published no counter state")
        gc.freeze()  # as bench/sync.py's display: no collection's pause in a call
        floor = call_round_trips(accounts, COUNTERS * presses)
        sync = sync_phase(context, accounts, directory / "sync", all_presses, think_s, display)
        observer.measure(sync.runs)
        start = context.Barrier(PANEL_PROCESSES + 1)
        results = context.Queue()
        groups = panel_groups()
        for group in groups:
            worker = context.Process(
                target=terminals_process,
                args=(
                    accounts,
                    group,
                    directory / "panels",
                    all_presses,
                    think_s,
                    lcd,
                    start,
                    results,
                ),
                daemon=True,
            )
            worker.start()
            stack.callback(worker.join, WAIT_S)
            stack.callback(worker.terminate)
        stack.callback(start.abort)
        try:
            start.wait(START_S)
        except threading.BrokenBarrierError:
            raise BenchError("the terminals did not get ready to press") from None
        began = time.perf_counter()
        for _ in groups:
            try:
                outcome = results.get(timeout=WAIT_S * 10)
            except queue.Empty:
                raise BenchError("a terminals process did not report") from None
            if isinstance(outcome, str):
                raise BenchError(outcome)
            for counter, pressed in outcome.items():
                observer.counters[counter].pressed = pressed
        elapsed = time.perf_counter() - began
        for counter in counter_ids():
            if not observer.wait_for(counter, all_presses):
                raise BenchError(f"counter {counter}: not every press was seen in the lobby")
        return figures(observer, elapsed, floor, sync.latencies)


@dataclass(frozen=True)
class SyncPhase:
    """``bench/sync.py``'s office phase, run here: its reports and latencies."""

    runs: list[PanelRun]
    latencies: list[float]


def sync_phase(
    context: Any,
    accounts: dict[str, MqttSettings],
    directory: Path,
    presses: int,
    think_s: float,
    display: Display,
) -> SyncPhase:
    """Run ``bench/sync.py``'s press → call phase (its panel processes, the same pace).

    Returns once its processes have gone, so the terminals can take their accounts.
    """
    barrier = context.Barrier(PANEL_PROCESSES + 1)
    results = context.Queue()
    groups = panel_groups()
    heard = display.heard
    workers = [
        context.Process(
            target=panel_process,
            args=(accounts, group, directory, [(presses, think_s)], barrier, results),
            daemon=True,
        )
        for group in groups
    ]
    try:
        for worker in workers:
            worker.start()
        try:
            barrier.wait(START_S)
        except threading.BrokenBarrierError:
            raise BenchError("the sync phase's panels did not get ready to press") from None
        runs = [phase_result(results, presses, think_s) for _ in groups]
        display.wait_for(heard + COUNTERS * presses)
        measured = display.phase(runs, WARMUP_PRESSES)
    finally:
        barrier.abort()
        for worker in workers:
            worker.join(WAIT_S)
            worker.terminate()
    return SyncPhase(runs, measured.latencies)


def figures(observer: Observer, elapsed: float, floor: list[float], sync: list[float]) -> Figures:
    """Match each press with its state and call; check they name the same tickets."""
    both, states, calls = [], [], []
    presses = 0
    for counter, seen in observer.counters.items():
        if seen.called[: len(seen.pressed)] != seen.shown[: len(seen.pressed)]:
            raise BenchError(f"counter {counter}: the calls and the states name other tickets")
        presses += len(seen.pressed)
        for index, pressed in enumerate(seen.pressed):
            if index < WARMUP_PRESSES:
                continue
            state, call = seen.states[index] - pressed, seen.calls[index] - pressed
            states.append(state)
            calls.append(call)
            both.append(max(state, call))
    return Figures(both, states, calls, floor, sync, elapsed, presses)


def report(figures: Figures, presses: int, lcd: bool) -> None:
    """Print the figures as text, then as one JSON line."""
    p50, p99 = (ms(v) for v in percentiles(figures.both))
    state_p50, state_p99 = (ms(v) for v in percentiles(figures.states))
    call_p50, call_p99 = (ms(v) for v in percentiles(figures.calls))
    floor_p50, floor_p99 = (ms(v) for v in percentiles(figures.floor))
    sync_p50, sync_p99 = (ms(v) for v in percentiles(figures.sync))
    ratio = p99 / floor_p99
    sync_ratio = p99 / sync_p99
    rate = figures.presses / figures.elapsed
    met = p99 <= TARGET_P99_MS and sync_ratio <= TARGET_SYNC_RATIO

    def line(name: str, p50: float, p99: float, what: str) -> None:
        print(f"{name:7} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  {what}")

    panels = "each with an LCD" if lcd else "Next and a light each"
    line(
        "press:",
        p50,
        p99,
        f"Next pin low → state and call, {COUNTERS} counters ({panels}) × {presses}",
    )
    line("state:", state_p50, state_p99, "→ the counter's retained state names the new ticket")
    line("call:", call_p50, call_p99, "→ the calls message")
    line("sync:", sync_p50, sync_p99, "bench/sync.py's press → call (DeviceLink.send), same run")
    line("floor:", floor_p50, floor_p99, "raw MQTT QoS 1 round trip, one by one")
    print(
        f"ratio: {sync_ratio:.2f}× the sync p99, {ratio:.1f}× the raw floor's p99; "
        f"{rate:.0f} presses/s; targets p99 <= {TARGET_P99_MS:.0f} ms and <= "
        f"{TARGET_SYNC_RATIO:.0f}× the sync p99: {'met' if met else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "bench": "counter",
                "counters": COUNTERS,
                "presses": presses,
                "lcd": lcd,
                "debounce_ms": DEBOUNCE_MS,
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "state_p50_ms": round(state_p50, 3),
                "state_p99_ms": round(state_p99, 3),
                "call_p50_ms": round(call_p50, 3),
                "call_p99_ms": round(call_p99, 3),
                "sync_p50_ms": round(sync_p50, 3),
                "sync_p99_ms": round(sync_p99, 3),
                "ratio_sync_p99": round(sync_ratio, 2),
                "floor_p50_ms": round(floor_p50, 3),
                "floor_p99_ms": round(floor_p99, 3),
                "ratio_p99": round(ratio, 2),
                "presses_per_s": round(rate, 1),
                "target_p99_ms": TARGET_P99_MS,
                "target_sync_ratio": TARGET_SYNC_RATIO,
                "target_met": met,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=50, help="measured presses per counter")
    parser.add_argument(
        "--think-ms", type=float, default=THINK_MS, help="each clerk's mean pause, in ms"
    )
    parser.add_argument(
        "--lcd",
        action="store_true",
        help="give every panel a (simulated) LCD, which hears every queue's state",
    )
    args = parser.parse_args()
    if args.think_ms <= 0:
        parser.error("--think-ms must be more than 0")
    if not 1 <= args.presses <= MAX_COUNTER_PRESSES:
        parser.error(f"--presses must be from 1 to {MAX_COUNTER_PRESSES}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    figures = run_in_tempdir(
        lambda tmp: measure(tmp, args.presses, args.think_ms / 1000, args.lcd),
        "the broker, the hub and the panels",
    )
    report(figures, args.presses, args.lcd)


if __name__ == "__main__":
    main()
