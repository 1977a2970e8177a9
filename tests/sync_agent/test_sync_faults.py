"""Fault tests of the MQTT link: the broker away, the hub killed, a device offline.

Each ends with every command applied exactly once, no number issued twice, and
every retained state on the broker matching the database.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import pytest
from office_helpers import OfficeBroker, RunningHub
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from process_helpers import Process, poradovnik_args

from hub.broker import free_port
from hub.model import TicketState
from hub.store import Store, sqlite_url
from sync_agent import protocol as p
from sync_agent.link import DeviceLink, Reply

WAIT_S = 60.0
OUTAGE_S = float(os.environ.get("PORADOVNIK_TEST_OUTAGE_S", "10"))
"""How long the broker stays down in the outage test (the scenario, not a wait): long
enough for the hub's reconnect pause (from 0.5 s, doubling) to grow through several
attempts and the devices' to reach their cap; PORADOVNIK_TEST_OUTAGE_S makes it longer."""

pytestmark = pytest.mark.slow


class Replies:
    """Collects the answers devices get to their durable commands."""

    def __init__(self) -> None:
        self.got: dict[str, list[Reply]] = {}
        self._changed = threading.Condition()

    def watch(self, link: DeviceLink) -> None:
        link.on_reply(self._record)

    def _record(self, command: p.Request, reply: Reply) -> None:
        with self._changed:
            self.got.setdefault(command.msg_id, []).append(reply)
            self._changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self._changed:
            done = self._changed.wait_for(lambda: len(self.got) >= count, timeout=WAIT_S)
        assert done, f"only {len(self.got)} of {count} commands answered within {WAIT_S}s"


def issue(link: DeviceLink, service: str = "taxes") -> str:
    return link.send(
        link.topics.kiosk_issue(link.device_id),
        p.IssueRequest(msg_id=uuid.uuid4().hex, service=service),
    )


def press(link: DeviceLink, counter: str, action: str = "next") -> str:
    return link.send(
        link.topics.counter_cmd(counter),
        p.CounterCommand(msg_id=uuid.uuid4().hex, action=action),  # type: ignore[arg-type]
    )


def retained_state(broker: OfficeBroker, expected_topics: int) -> dict[str, dict[str, object]]:
    """Every retained queue and counter state on the broker, as a display would get it."""
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"check-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.username_pw_set("display-d1", broker.passwords["display-d1"])
    client.on_message = lambda _c, _u, m: got.put((m.topic, m.payload))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    base = p.Topics(broker.site).base
    client.subscribe([(f"{base}/queue/#", 1), (f"{base}/counter/+/state", 1)])
    state: dict[str, dict[str, object]] = {}
    try:
        while len(state) < expected_topics:
            topic, payload = got.get(timeout=WAIT_S)
            state[topic.removeprefix(base + "/")] = json.loads(payload)
    finally:
        client.loop_stop()
        client.disconnect()
    return state


def check_consistent(broker: OfficeBroker, database: Path, replies: Replies, issued: int) -> None:
    """Exactly once, unique numbers, and retained state equal to the database."""
    assert all(len(answers) == 1 for answers in replies.got.values()), "a command answered twice"
    assert not [a for a in replies.got.values() if isinstance(a[0], p.ErrorReply)
                and a[0].error.code == "internal"]  # fmt: skip
    with Store(sqlite_url(database)) as store:
        today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Bratislava")).date()
        snapshot = store.load_snapshot(today, 1)
        assert store.count_tickets() == issued, "an issue was lost or applied twice"
        issues = [e for e in store.events(limit=100_000) if e.action.value == "issue"]
        assert len(issues) == issued
        with store.db.connect() as conn:
            receipts = conn.exec_driver_sql("SELECT count(*) FROM receipts").scalar_one()
        assert receipts == len(replies.got)
    live = [t.number for t in snapshot.tickets]
    assert len(live) == len(set(live)), "two live tickets share a number"
    state = retained_state(broker, len(snapshot.services) + len(snapshot.counters))
    for service in snapshot.services:
        waiting = sum(
            1
            for t in snapshot.tickets
            if t.service == service.code and t.state is TicketState.WAITING
        )
        assert state[f"queue/{service.code}"]["waiting"] == waiting, service.code
    tickets = {t.id: t.number for t in snapshot.tickets}
    for counter in snapshot.counters:
        shown = state[f"counter/{counter.id}/state"]
        assert shown["state"] == counter.state.value, counter.id
        number = tickets.get(counter.current) if counter.current else None
        assert (shown["ticket"] or {}).get("number") == number, counter.id


def test_broker_away_for_a_while_loses_nothing(
    hub: RunningHub, broker: OfficeBroker, device: Callable[..., DeviceLink], tmp_path: Path
) -> None:
    replies = Replies()
    kiosk, panel = device("kiosk-k1"), device("panel-p1")
    replies.watch(kiosk)
    replies.watch(panel)
    sent = [issue(kiosk), issue(kiosk, "waste"), press(panel, "1")]
    replies.wait_for(len(sent))
    broker.process.stop()
    down = threading.Event()
    # While the broker is away, the office goes on: every action waits in an outbox.
    for _ in range(5):
        sent += [issue(kiosk), press(panel, "1"), press(panel, "2")]
    assert kiosk.queued + panel.queued == 15
    down.wait(OUTAGE_S)  # the outage itself, as long as the scenario says
    broker.process.start()
    replies.wait_for(len(sent))
    assert sorted(replies.got) == sorted(sent)
    check_consistent(broker, tmp_path / "hub" / "hub.sqlite3", replies, issued=7)


def test_hub_killed_mid_stream_applies_everything_once(
    broker: OfficeBroker,
    device: Callable[..., DeviceLink],
    processes: Callable[..., Process],
    tmp_path: Path,
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        f'role = "hub"\n[data]\ndir = "{tmp_path / "hub"}"\n'
        f'[mqtt]\nport = {broker.port}\nusername = "hub"\npassword = "{broker.passwords["hub"]}"\n'
        f"[web]\nport = {free_port()}\n"
    )
    seed = subprocess.run(
        poradovnik_args("--config", str(config), "db", "seed", "--demo"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert seed.returncode == 0, seed.stdout + seed.stderr
    store = Store(sqlite_url(tmp_path / "hub" / "hub.sqlite3"))
    try:  # the hub answers each device on its account's reply topic
        for account in broker.accounts:
            store.save_account(account, at=datetime.now(UTC))
    finally:
        store.close()

    def start_hub() -> Process:
        hub = processes(poradovnik_args("--config", str(config), "hub"), name="hub")
        hub.wait_for_line(lambda line: "web pages on http" in line, WAIT_S)
        return hub

    replies = Replies()
    kiosk, panel = device("kiosk-k1"), device("panel-p1")
    replies.watch(kiosk)
    replies.watch(panel)
    hub = start_hub()
    try:
        sent = []
        for _ in range(20):
            sent += [issue(kiosk), press(panel, "1")]
        replies.wait_for(10)
        hub.kill()
        hub = start_hub()
        replies.wait_for(len(sent))
    finally:
        hub.stop()
    assert sorted(replies.got) == sorted(sent)
    check_consistent(broker, tmp_path / "hub" / "hub.sqlite3", replies, issued=20)


def test_one_device_offline_while_the_others_act(
    hub: RunningHub, broker: OfficeBroker, device: Callable[..., DeviceLink], tmp_path: Path
) -> None:
    replies = Replies()
    statuses: queue.Queue[str] = queue.Queue()
    hub.bridge.on_device(
        lambda view: (
            statuses.put(view.status.state) if view.device_id == "p2" and view.status else None
        )
    )
    kiosk, panel = device("kiosk-k1"), device("panel-p2")
    replies.watch(kiosk)
    assert statuses.get(timeout=WAIT_S) == "online"
    panel.stop()
    assert statuses.get(timeout=WAIT_S) == "offline"
    # The clerk at counter 3 keeps pressing on a panel that cannot reach the broker.
    offline = device("panel-p2", start=False)
    replies.watch(offline)
    sent = [press(offline, "3"), press(offline, "3", "recall")]
    for service in ("waste", "parking", "waste"):
        sent.append(issue(kiosk, service))
    replies.wait_for(3)
    offline.start()
    assert statuses.get(timeout=WAIT_S) == "online"
    replies.wait_for(len(sent))
    assert isinstance(replies.got[sent[0]][0], p.CommandReply)
    check_consistent(broker, tmp_path / "hub" / "hub.sqlite3", replies, issued=3)
