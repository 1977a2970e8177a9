"""Benchmark: 1,000 citizens' my-ticket notices (web push and e-mail) through a busy hour.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/notify.py [--tickets 1000] [--seconds 60]

The hub's side runs in this process as ``poradovnik hub`` runs it: the service layer on
a temporary SQLite database with the demo office and its five counters open, and the
notices (:class:`hub.notify.Notices`) with their sending process. A local SMTP server
(aiosmtpd) and a local push service (an HTTP server), in a process of their own in
Linux's idle scheduling class, as real ones run on other machines, receive what the hub
sends and note when each message arrived; each push is decrypted after the run
(aes128gcm, with the browser keys made for it) to tell which notice it is.

A busy office hour compressed into ``--seconds``: a fifth of the ``--tickets`` are
issued at once (the morning queue), the rest spread over the first three quarters of
the run, each holder asking for a push and an e-mail as soon as the ticket is issued;
the counters call the next ticket at a pace that empties the queue by the end. Every
ticket is due two notices ("3 ahead", the call) on two channels.

It prints notices per second, the lag from the cause (the queue change or the
subscription) to the arrival at the SMTP server or push service (p50, p99, per
channel), duplicates (a notice arriving twice: must be 0), losses (a notice due that
never arrived and was not dropped as stale: must be 0), what was dropped, the floor
(one raw SMTP message to the same local server, one raw HTTP POST of the same size to
the same push service, p50) and the ratio of the p50 lag to the floor, whether the
target is met (no duplicate, no loss, p99 lag ≤ 1 s), and one JSON line.

Then, in the same run, whether the notices slow the clerks: ``bench/sync.py``'s press →
call phase (its Mosquitto, ``poradovnik hub`` in a process of its own with ``[mail]``
and ``[notify]`` pointed at the same local SMTP server and push service, 20 counter
panels in four processes, ``--presses`` presses each at ``--think-ms``) runs twice on
the same hub: alone, then while the hub sends notices. Before the second phase the
tickets it will call are subscribed to e-mail and push through the portal (``POST
/t/<id>/notify`` and ``/t/<id>/notify/push``), so that each call makes notices due;
during it, a process of citizens subscribes the later tickets the same way. It prints
both press → call p99s, their ratio (the target: at most 1.5×), and the notices delivered during the
second phase.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import json
import logging
import multiprocessing
import os
import queue
import re
import smtplib
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import requests
from aiosmtpd.controller import Controller
from counter import sync_phase
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from harness import BenchError, ms, percentiles, run_in_tempdir
from sqlalchemy import create_engine, func, select
from sync import (
    COUNTERS,
    START_S,
    THINK_MS,
    WARMUP_PRESSES,
    Display,
    hub_settings_file,
    lobby,
    office_broker,
    seed_office,
    start_hub,
)
from sync import WAIT_S as SYNC_WAIT_S

from common.identity import HUB_DEVICE_ID
from common.mail_settings import MailSettings, NotifySettings
from common.settings import DataSettings, Settings, load_settings
from hub.app import open_queue, seed_demo
from hub.broker import LocalBroker, free_port
from hub.mail import Mailer
from hub.model import TicketState
from hub.notify import Notices, load_vapid
from hub.notify_texts import TEXTS
from hub.service import QueueError, QueueService
from hub.store import metadata
from hub.store.tables import TICKETS

TARGET_P99_S = 1.0
SERVICES = ("taxes", "waste", "parking", "info")
FLOOR_SAMPLES = 200
REPORT_S = 0.2
"""How often the sinks' process reports what arrived (each arrival keeps its own time)."""
WAIT_S = 30.0
"""How long the run waits for the last notices after the hour."""

TARGET_SYNC_RATIO = 1.5
"""The press → call p99 while notices run may be at most this many times the one alone."""

MAX_SYNC_PRESSES = 75
"""Presses per counter of each sync phase: 4 × 999 tickets cover both."""

CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


@dataclass
class Sinks:
    """What the local SMTP server and push service received: (key, arrival time).

    The servers run in a process of their own (:func:`sink_process`), as the real ones
    run on other machines: in this process, beside the display that times the calls,
    their parsing and serving would count against the hub's presses. A thread here
    (:meth:`drain`) takes the arrivals from that process's queue, a batch at a time.
    """

    mail: list[tuple[bytes, float]] = field(default_factory=list)
    """Each e-mail as received (its bytes) and when."""
    push: list[tuple[str, bytes, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    count: int = 0
    arrived: threading.Condition = field(default_factory=threading.Condition)
    events: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """When each notice's cause happened (from the hub's queue of notices)."""

    def drain(self, arrivals: Any) -> None:
        """Keep what the sinks' process reports (lists of arrivals), until it reports ``None``."""
        while (batch := arrivals.get()) is not None:
            with self.lock:
                for arrival in batch:
                    if arrival[0] == "mail":
                        self.mail.append((arrival[1], arrival[2]))
                    else:
                        self.push.append((arrival[1], arrival[2], arrival[3]))
            with self.arrived:
                self.count += len(batch)
                self.arrived.notify_all()


class Reports:
    """The sinks' process's arrivals, put on the benchmark's queue a list every
    :data:`REPORT_S`: the process that times the calls wakes a few times a second for
    them, not at each of a hundred notices a second. Each arrival keeps its own time."""

    def __init__(self, arrivals: Any) -> None:
        self.arrivals = arrivals
        self._lock = threading.Lock()
        self._batch: list[tuple[Any, ...]] = []

    def put(self, arrival: tuple[Any, ...]) -> None:
        """Keep ``arrival`` for the next list."""
        with self._lock:
            self._batch.append(arrival)

    def flush(self) -> None:
        """Put what arrived since the last list on the queue."""
        with self._lock:
            batch, self._batch = self._batch, []
        if batch:
            self.arrivals.put(batch)

    def run(self, stop: Any) -> None:
        """Flush every :data:`REPORT_S` until ``stop`` is set, then once more."""
        while not stop.wait(REPORT_S):
            self.flush()
        self.flush()


class MailSink:
    """aiosmtpd's handler: reports each message (not the floor's) with its arrival time."""

    def __init__(self, arrivals: Reports) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        at = time.time()
        if b"X-Floor: 1" not in envelope.content:
            self.arrivals.put(("mail", bytes(envelope.content), at))
        return "250 OK"


def push_server(arrivals: Reports, port: int) -> ThreadingHTTPServer:
    """A local push service on ``port``: reports each push's path, body and arrival."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            at = time.time()
            if not self.path.startswith("/floor"):
                arrivals.put(("push", self.path, body, at))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def sink_process(smtp_port: int, push_port: int, arrivals: Any, stop: Any) -> None:
    """The sinks' process: the SMTP server and push service until ``stop`` is set.

    In Linux's idle scheduling class: the servers it stands for run on other machines,
    so their parsing and serving must not take the hub's or the clerks' share of the
    cores (at nice 19 it still took a share, and the presses waited for it).
    """
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    reports = Reports(arrivals)
    controller = Controller(MailSink(reports), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    server = push_server(reports, push_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    reporter = threading.Thread(target=reports.run, args=(stop,))
    reporter.start()
    arrivals.put("ready")
    stop.wait()
    server.shutdown()
    server.server_close()
    controller.stop()
    reporter.join()
    reports.flush()
    arrivals.put(None)


@contextmanager
def sinks_running(sinks: Sinks) -> Iterator[tuple[int, int]]:
    """Start the sinks' process and the thread that keeps its arrivals; their ports."""
    context = multiprocessing.get_context("spawn")
    smtp_port, push_port = free_port(), free_port()
    arrivals, stop = context.Queue(), context.Event()
    process = context.Process(
        target=sink_process, args=(smtp_port, push_port, arrivals, stop), daemon=True
    )
    process.start()
    try:
        if arrivals.get(timeout=START_S) != "ready":
            raise BenchError("the sinks' process did not start")
    except queue.Empty:
        process.terminate()
        raise BenchError("the sinks' process did not start") from None
    drainer = threading.Thread(target=sinks.drain, args=(arrivals,), daemon=True)
    drainer.start()
    try:
        yield smtp_port, push_port
    finally:
        stop.set()
        drainer.join(WAIT_S)
        process.join(WAIT_S)
        process.terminate()


def b64url(raw: bytes) -> str:
    """``raw`` in unpadded base64url, as Web Push spells keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def floor(smtp_port: int, push_port: int) -> tuple[float, float]:
    """p50 seconds of one raw SMTP message and one raw HTTP POST to the local sinks."""
    mail_times: list[float] = []
    for _ in range(FLOOR_SAMPLES):
        message = EmailMessage()
        message["From"] = "bench@office.example"
        message["To"] = "floor@example.org"
        message["Subject"] = "floor"
        message["X-Floor"] = "1"
        message.set_content("x" * 300)
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.send_message(message)
        mail_times.append(time.perf_counter() - started)
    post_times: list[float] = []
    session = requests.Session()
    body = os.urandom(400)
    for _ in range(FLOOR_SAMPLES):
        started = time.perf_counter()
        session.post(f"http://127.0.0.1:{push_port}/floor", data=body, timeout=10)
        post_times.append(time.perf_counter() - started)
    return percentiles(mail_times)[0], percentiles(post_times)[0]


def hour(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """Run the compressed hour and count what arrived."""
    sinks = Sinks()
    with sinks_running(sinks) as (smtp_port, push_port):
        floor_mail, floor_post = floor(smtp_port, push_port)
        figures = _run(args, directory, sinks, smtp_port, push_port)
        figures.update(beside_sync(args, directory / "sync", sinks, smtp_port, push_port))
    figures.update(floor_smtp_s=floor_mail, floor_post_s=floor_post)
    return figures


def _run(
    args: argparse.Namespace, directory: Path, sinks: Sinks, smtp_port: int, push_port: int
) -> dict[str, Any]:
    settings = Settings(
        role="hub",
        data=DataSettings(dir=directory / "hub"),
        mail=MailSettings(
            host="127.0.0.1", port=smtp_port, sender="poradovnik@office.example", starttls=False
        ),
        notify=NotifySettings(push_hosts=["127.0.0.1"], push_allow_http=True),
    )
    queue = open_queue(settings)
    seed_demo(queue)
    for counter in queue.counters():
        queue.counter_action(counter.id, "resume")
    notices = Notices(
        queue,
        settings.notify,
        mailer=Mailer(settings.mail),
        vapid=load_vapid(settings.data.dir),
        public_url="https://portal.example",
    ).start()
    keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
    tickets = args.tickets
    rush = tickets // 5
    issue_span = args.seconds * 0.75
    call_every = args.seconds * 0.95 / tickets
    counters = [c.id for c in queue.counters()]
    started = time.monotonic()
    issued = called = 0
    next_issue = next_call = started
    try:
        while called < tickets:
            now = time.monotonic()
            if issued < tickets and (issued < rush or now >= next_issue):
                service = SERVICES[issued % len(SERVICES)]
                ticket = queue.issue(service, lang="en").ticket
                key = ec.generate_private_key(ec.SECP256R1())
                auth = os.urandom(16)
                keys[ticket.id] = (key, auth)
                public = key.public_key().public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                )
                endpoint = f"http://127.0.0.1:{push_port}/push/{ticket.id}"
                subscription = {
                    "endpoint": endpoint,
                    "keys": {"p256dh": b64url(public), "auth": b64url(auth)},
                }
                notices.subscribe(ticket.id, "push", json.dumps(subscription), "en")
                notices.subscribe(ticket.id, "email", f"{ticket.id}@citizens.example", "en")
                issued += 1
                if issued >= rush:
                    next_issue = started + (issued - rush + 1) * issue_span / (tickets - rush)
                continue
            if now >= next_call:
                next_call = started + (called + 1) * call_every
                if _call(queue, counters, called):
                    called += 1
                continue
            time.sleep(max(0.0, min(next_call, next_issue) - now, 0.0005))
        hour_s = time.monotonic() - started
        time.sleep(call_every * len(counters))  # the last visits take their time too
        for counter_id in counters:  # the last visits end: every ticket has ended
            for action in ("start", "done"):
                with contextlib.suppress(QueueError):
                    queue.counter_action(counter_id, action)
        expected = _settle(queue, sinks)
    finally:
        notices.stop()
        queue.store.close()
    figures = _count(sinks, keys, expected)
    figures.update(hour_s=hour_s, tickets=tickets)
    return figures


def _call(queue: QueueService, counters: list[str], turn: int) -> bool:
    """Call the next ticket at one of the counters (finishing its current one)."""
    for n in range(len(counters)):
        try:
            change = queue.counter_action(counters[(turn + n) % len(counters)], "next")
        except QueueError:
            continue
        if change.subject is not None and change.subject.state is TicketState.CALLED:
            return True
    return False


def _settle(queue: QueueService, sinks: Sinks) -> dict[tuple[str, str, str], str]:
    """Wait until the notices saw every ticket end and none is pending or being sent.

    Every notice's final state.
    """
    table = metadata.tables["notifications"]
    contacts = metadata.tables["notify_subscriptions"]
    deadline = time.monotonic() + WAIT_S
    while True:
        with queue.store.db.connect() as conn:
            live = conn.execute(
                select(func.count()).select_from(contacts).where(contacts.c.ended_at.is_(None))
            ).scalar()
            rows = conn.execute(
                select(
                    table.c.ticket, table.c.kind, table.c.channel, table.c.state, table.c.event_at
                )
            ).all()
        open_ = [row for row in rows if row.state in ("pending", "sending")]
        if not open_ and not live:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"{len(open_)} notices still not sent {WAIT_S:.0f} s after the hour")
        with sinks.arrived:
            sinks.arrived.wait(0.2)
    sinks.events = {(r.ticket, r.kind, r.channel): r.event_at.timestamp() for r in rows}
    return {(r.ticket, r.kind, r.channel): r.state for r in rows}


def _count(
    sinks: Sinks,
    keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]],
    states: dict[tuple[str, str, str], str],
) -> dict[str, Any]:
    events = sinks.events
    ahead_title = TEXTS["en"]["ahead"][0].split("{number}")[1]
    arrivals: Counter[tuple[str, str, str]] = Counter()
    lags: dict[str, list[float]] = {"email": [], "push": []}
    first: dict[tuple[str, str, str], float] = {}
    for raw, at in sinks.mail:
        message = message_from_bytes(raw, policy=policy.default)
        ticket = str(message["To"]).split("@")[0]
        kind = "ahead" if str(message["Subject"]).endswith(ahead_title) else "called"
        first.setdefault((ticket, kind, "email"), at)
        arrivals[(ticket, kind, "email")] += 1
    for path, body, at in sinks.push:
        ticket = path.rsplit("/", 1)[1]
        key, auth = keys[ticket]
        payload = json.loads(
            http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
        )
        kind = "ahead" if payload["title"].endswith(ahead_title) else "called"
        first.setdefault((ticket, kind, "push"), at)
        arrivals[(ticket, kind, "push")] += 1
    for notice, at in first.items():
        lags[notice[2]].append(at - events[notice])
    duplicates = sum(n - 1 for n in arrivals.values() if n > 1)
    due = {(t, kind, c) for t in keys for kind in ("ahead", "called") for c in ("email", "push")}
    dropped = Counter(key[1] for key in due if states.get(key) == "dropped")
    lost = sum(1 for key in due if key not in arrivals and states.get(key) != "dropped")
    failed = sum(1 for state in states.values() if state == "failed")
    delivered = sum(arrivals.values())
    span = max(at for at in first.values()) - min(events.values()) if first else 0.0
    figures: dict[str, Any] = {
        "delivered": delivered,
        "duplicates": duplicates,
        "lost": lost,
        "dropped": sum(dropped.values()),
        "dropped_ahead": dropped["ahead"],
        "dropped_called": dropped["called"],
        "failed": failed,
        "per_s": delivered / span if span else 0.0,
    }
    for channel, values in lags.items():
        p50, p99 = percentiles(values) if len(values) > 1 else (0.0, 0.0)
        figures[f"{channel}_p50_s"], figures[f"{channel}_p99_s"] = p50, p99
    every = lags["email"] + lags["push"]
    figures["p50_s"], figures["p99_s"] = percentiles(every) if len(every) > 1 else (0.0, 0.0)
    return figures


# -- the clerks' press → call beside the notices -------------------------------------


def waiting_tickets(database_url: str) -> list[str]:
    """The ids of the waiting tickets, oldest first (read beside the running hub)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            query = (
                select(TICKETS.c.id)
                .where(TICKETS.c.state == TicketState.WAITING.value)
                .order_by(TICKETS.c.issued_at)
            )
            return list(conn.execute(query).scalars())
    finally:
        engine.dispose()


def subscribe_all(base: str, tickets: list[str], push_port: int, stop: Any, results: Any) -> None:
    """Citizens at the portal: each ticket's e-mail address, then its browser's push.

    Runs in a process of its own (so that it does not share the display's); puts
    ``"ready"`` on ``results`` once it has the form's token and begins, then
    ``(subscribed, gone)`` (gone: the ticket was called before its holder got to it);
    or the error's text.
    """
    try:
        session = requests.Session()
        page = session.get(f"{base}/t/{tickets[0]}/notify", timeout=SYNC_WAIT_S)
        found = CSRF_RE.search(page.text)
        if found is None:
            raise BenchError(f"the notify page has no CSRF token ({page.status_code})")
        token = found.group(1)
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        public = b64url(
            key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        keys = {"p256dh": public, "auth": b64url(os.urandom(16))}
        subscribed = gone = 0
        results.put("ready")
        for ticket in tickets:
            if stop.is_set():
                break
            url = f"{base}/t/{ticket}/notify"
            form = {"csrf_token": token, "email": f"{ticket}@citizens.example"}
            answer = session.post(url, data=form, allow_redirects=False, timeout=SYNC_WAIT_S)
            if answer.status_code == 404:
                gone += 1
                continue
            push = {"endpoint": f"http://127.0.0.1:{push_port}/push/{ticket}", "keys": keys}
            second = session.post(
                f"{url}/push",
                data=json.dumps(push),
                headers={"Content-Type": "application/json", "X-CSRFToken": token},
                timeout=SYNC_WAIT_S,
            )
            # Called between the two: the ticket is gone (404) or no longer live (400).
            called = second.status_code == 404 or (
                second.status_code == 400 and "no longer live" in second.text
            )
            if answer.status_code != 303 or not (second.status_code == 201 or called):
                raise BenchError(f"subscribing: {answer.status_code}, {second.status_code}")
            subscribed += 1
        results.put((subscribed, gone))
    except Exception as failed:  # reported to the main process, which stops the run
        results.put(f"subscribing: {failed}")


def notify_hub_config(directory: Path, broker: LocalBroker, smtp_port: int, push_port: int) -> Path:
    """``bench/sync.py``'s hub settings, with ``[mail]`` and ``[notify]`` to the local sinks."""
    directory.mkdir(parents=True)
    config = hub_settings_file(directory, broker.accounts[HUB_DEVICE_ID])
    # Plain HTTP from one address: the session cookie, and no rate limit to speak of.
    web = '[web]\nsecure_cookies = false\nlookup_limit = "100000/minute"\n'
    text = config.read_text().replace("[web]\n", web)
    config.write_text(
        f'{text}[mail]\nhost = "127.0.0.1"\nport = {smtp_port}\n'
        'sender = "poradovnik@office.example"\nstarttls = false\n'
        '[notify]\npush_hosts = ["127.0.0.1"]\npush_allow_http = true\n'
    )
    return config


def subscribe_now(base: str, tickets: list[str], push_port: int) -> None:
    """:func:`subscribe_all` in this process, until every one of ``tickets`` is subscribed."""
    answers: queue.Queue[Any] = queue.Queue()
    subscribe_all(base, tickets, push_port, threading.Event(), answers)
    last = None
    while not answers.empty():
        last = answers.get_nowait()
    if not isinstance(last, tuple):
        raise BenchError(f"subscribing before the phase: {last}")


def beside_sync(
    args: argparse.Namespace, directory: Path, sinks: Sinks, smtp_port: int, push_port: int
) -> dict[str, Any]:
    """``bench/sync.py``'s press → call phase alone, then while notices run; both p99s."""
    context = multiprocessing.get_context("spawn")
    presses = WARMUP_PRESSES + args.presses
    calls = COUNTERS * presses
    think_s = args.think_ms / 1000
    with ExitStack() as stack:
        broker = stack.enter_context(office_broker(directory / "broker"))
        config = notify_hub_config(directory / "hub", broker, smtp_port, push_port)
        settings = load_settings(config)
        seed_office(settings, COUNTERS * (2 * presses + 1), broker.logins)
        stack.callback(start_hub(config, directory / "hub" / "notify").stop)
        display = Display()
        lobby(broker.accounts, stack, display.on_call, display.on_counter_state)
        if not display.counter_states.wait(SYNC_WAIT_S):
            raise BenchError("the hub published no counter state")
        gc.freeze()  # as bench/sync.py's display: no collection's pause in a call
        panels = directory / "panels"
        alone = sync_phase(context, broker.accounts, panels, presses, think_s, display)
        # The tickets the second phase will call were subscribed from their issue, as
        # the hour's: each call makes notices due. The later ones subscribe meanwhile.
        waiting = waiting_tickets(settings.database_url)
        base = f"http://127.0.0.1:{settings.web.port}"
        subscribe_now(base, waiting[:calls], push_port)
        stop = context.Event()
        results = context.Queue()
        citizens = context.Process(
            target=subscribe_all,
            args=(base, waiting[calls:], push_port, stop, results),
            daemon=True,
        )
        citizens.start()
        try:
            ready = results.get(timeout=START_S)
            if ready != "ready":
                raise BenchError(str(ready))
            before = sinks.count
            beside = sync_phase(context, broker.accounts, panels, presses, think_s, display)
            delivered = sinks.count - before
            stop.set()
            outcome = results.get(timeout=SYNC_WAIT_S)
        except queue.Empty:
            raise BenchError("the citizens' process did not report") from None
        finally:
            stop.set()
            citizens.join(SYNC_WAIT_S)
            citizens.terminate()
        if isinstance(outcome, str):
            raise BenchError(outcome)
    alone_p99 = percentiles(alone.latencies)[1]
    beside_p99 = percentiles(beside.latencies)[1]
    return {
        "sync_presses": args.presses,
        "sync_alone_p99_s": alone_p99,
        "sync_notify_p99_s": beside_p99,
        "sync_ratio": beside_p99 / alone_p99,
        "sync_subscribed": outcome[0],
        "sync_early": calls,
        "sync_notices": delivered,
    }


def report(figures: dict[str, Any], args: argparse.Namespace) -> bool:
    """Print the figures as text, then as one JSON line; whether the target is met."""
    f = figures
    print(
        f"hour: {f['tickets']} tickets in {f['hour_s']:.1f} s, each with push and e-mail; "
        f"{f['delivered']} notices delivered, {f['per_s']:.1f} /s"
    )
    print(
        f"lag e-mail: p50 {ms(f['email_p50_s']):7.1f} ms  p99 {ms(f['email_p99_s']):7.1f} ms  "
        f"(floor: raw SMTP message {ms(f['floor_smtp_s']):.1f} ms)"
    )
    print(
        f"lag push:   p50 {ms(f['push_p50_s']):7.1f} ms  p99 {ms(f['push_p99_s']):7.1f} ms  "
        f"(floor: raw HTTP POST {ms(f['floor_post_s']):.1f} ms)"
    )
    ratio_mail = f["email_p50_s"] / f["floor_smtp_s"] if f["floor_smtp_s"] else 0.0
    ratio_push = f["push_p50_s"] / f["floor_post_s"] if f["floor_post_s"] else 0.0
    met = f["duplicates"] == 0 and f["lost"] == 0 and f["p99_s"] <= TARGET_P99_S
    sync_met = f["sync_ratio"] <= TARGET_SYNC_RATIO
    print(
        f"duplicates {f['duplicates']}, lost {f['lost']}, dropped as stale {f['dropped']} "
        f"({f['dropped_ahead']} few-ahead, {f['dropped_called']} calls), "
        f"failed {f['failed']}; ratio of p50 lag to the floor: e-mail {ratio_mail:.1f}×, "
        f"push {ratio_push:.1f}×; target (no duplicate, no loss, p99 ≤ "
        f"{TARGET_P99_S:.0f} s): {'met' if met else 'NOT met'}"
    )
    print(
        f"sync: press → call p99 {ms(f['sync_alone_p99_s']):.2f} ms alone, "
        f"{ms(f['sync_notify_p99_s']):.2f} ms while {f['sync_notices']} notices were "
        f"delivered (the {f['sync_early']} oldest tickets subscribed before, "
        f"{f['sync_subscribed']} more during the phase; {COUNTERS} counters × "
        f"{f['sync_presses']} presses each); ratio {f['sync_ratio']:.2f}× (target ≤ "
        f"{TARGET_SYNC_RATIO}×): {'met' if sync_met else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "bench": "notify",
                "tickets": f["tickets"],
                "seconds": args.seconds,
                "hour_s": round(f["hour_s"], 2),
                "delivered": f["delivered"],
                "notices_per_s": round(f["per_s"], 1),
                "p50_ms": round(ms(f["p50_s"]), 1),
                "p99_ms": round(ms(f["p99_s"]), 1),
                "email_p50_ms": round(ms(f["email_p50_s"]), 1),
                "email_p99_ms": round(ms(f["email_p99_s"]), 1),
                "push_p50_ms": round(ms(f["push_p50_s"]), 1),
                "push_p99_ms": round(ms(f["push_p99_s"]), 1),
                "floor_smtp_ms": round(ms(f["floor_smtp_s"]), 2),
                "floor_post_ms": round(ms(f["floor_post_s"]), 2),
                "ratio_email": round(ratio_mail, 1),
                "ratio_push": round(ratio_push, 1),
                "duplicates": f["duplicates"],
                "lost": f["lost"],
                "dropped": f["dropped"],
                "dropped_ahead": f["dropped_ahead"],
                "dropped_called": f["dropped_called"],
                "failed": f["failed"],
                "target_p99_ms": TARGET_P99_S * 1000,
                "target_met": met,
                "sync_presses": f["sync_presses"],
                "sync_alone_p99_ms": round(ms(f["sync_alone_p99_s"]), 3),
                "sync_notify_p99_ms": round(ms(f["sync_notify_p99_s"]), 3),
                "sync_ratio_p99": round(f["sync_ratio"], 2),
                "sync_early": f["sync_early"],
                "sync_subscribed": f["sync_subscribed"],
                "sync_notices": f["sync_notices"],
                "target_sync_ratio": TARGET_SYNC_RATIO,
                "target_sync_met": sync_met,
            }
        )
    )
    return bool(met and sync_met)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1000, help="tickets, each subscribed")
    parser.add_argument("--seconds", type=float, default=60.0, help="the compressed hour")
    parser.add_argument(
        "--presses", type=int, default=50, help="measured presses per counter, each sync phase"
    )
    parser.add_argument(
        "--think-ms", type=float, default=THINK_MS, help="each clerk's mean pause, in ms"
    )
    args = parser.parse_args()
    if not 1 <= args.presses <= MAX_SYNC_PRESSES:
        parser.error(f"--presses must be from 1 to {MAX_SYNC_PRESSES}")
    if args.think_ms <= 0:
        parser.error("--think-ms must be more than 0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    figures = run_in_tempdir(lambda tmp: hour(args, tmp), "the sinks and the hub's notices")
    sys.exit(0 if report(figures, args) else 2)


if __name__ == "__main__":
    main()
