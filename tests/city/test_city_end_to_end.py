"""A whole small city for real: three branch offices bridged to the city, things breaking.

Each branch is a real ``poradovnik hub`` process on its own SQLite database with its
own Mosquitto, configured as ``poradovnik broker config`` writes it from the
``[uplink]`` the city gave it (a real Mosquitto bridge to the city's broker). The city
is its own Mosquitto (configured as ``poradovnik city broker-config`` writes it) and
``poradovnik city`` on a database of its own on the tests' PostgreSQL. Simulated
citizens and clerks work in every branch throughout, through the branch's broker as
real devices do, while the city's broker is stopped for 20 s, the city's process is
restarted and a branch's hub is killed (SIGKILL) and started again. Afterwards the city
holds every branch's history exactly: row for row what the branch's ``events`` table
holds, nothing lost, nothing twice; and the city's live view shows each branch's queues
as the branch last published them.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import ExitStack

import pytest
from city_run_helpers import (
    WAIT_S,
    Activity,
    Branch,
    BranchDevices,
    CityWatch,
    make_branch,
    reachable_root,
    start_city,
)
from process_helpers import Process

from city.verify import city_history, history_differences

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(420)]

SITES = ("stred", "sever", "juh")

CUT_S = 20.0
"""How long the city's broker is away while the branches keep working: long enough for
each branch's bridge to try it again several times (from 5 s, its pause growing)."""

CATCH_UP_S = 150.0
"""How long the city may take to hold everything once the branches stop: a branch's
bridge tries the city's broker again after a growing pause (up to two minutes) during
a long cut, so it may be back only a while after the broker."""


def test_a_city_holds_every_branch_history_exactly_through_cuts_restarts_and_a_killed_hub(
    city_url: str, processes: Callable[..., Process]
) -> None:
    with ExitStack() as stack:
        root = stack.enter_context(reachable_root())
        city = start_city(root / "city", city_url, SITES, processes, stack)
        branches: list[Branch] = []
        for site in SITES:
            branch = make_branch(root / site, site, city.uplinks[site], processes)
            stack.callback(branch.broker.stop)
            branches.append(branch)
        offices = [BranchDevices(branch, root / "devices", stack) for branch in branches]
        for branch, office in zip(branches, offices, strict=True):
            branch.start_hub()
            office.wait_hub_online(0)
            office.open_counters()
        watch = stack.enter_context(CityWatch(city.consumer_mqtt))
        activity = Activity(offices).start()
        stack.callback(activity.stop)
        activity.wait_rounds(10)

        # The city's broker goes away for a while: every branch's uplink is cut, the
        # offices keep working (every press answered), their history waits at home.
        city.broker.stop()
        during = activity.work_for(CUT_S)
        assert all(rounds > 0 for rounds in during.values()), during
        city.broker.start()
        activity.wait_rounds(10)

        # The city's process (its consumer and web pages) restarts meanwhile.
        city.restart()
        activity.wait_rounds(10)

        # A branch's hub dies mid-stream (a power cut) and comes back on its database.
        victim, victim_office = branches[1], offices[1]
        online = victim_office.hub_online
        victim.kill_hub()
        victim.start_hub()
        victim_office.wait_hub_online(online)
        activity.wait_rounds(10)
        activity.stop()

        histories = {branch.site: branch.history() for branch in branches}
        wanted = {site: rows[-1]["seq"] for site, rows in histories.items()}
        watch.wait_acked(wanted, CATCH_UP_S, city.describe)
        assert city.progress() == wanted, city.describe()
        for branch in branches:
            differences = history_differences(
                histories[branch.site], city_history(city.database_url, branch.site)
            )
            assert not differences, f"branch {branch.site}: {differences}"

        # Each branch's retained queue states reached the city's live view.
        for office in offices:
            city.wait_live_queues(office.branch.site, office.queues, WAIT_S)
        assert victim.hub is not None
        assert victim.hub.stop(signal.SIGTERM, timeout=WAIT_S) == 0, victim.hub.describe()
        output = "".join(branch.hub.output() for branch in branches if branch.hub)
        assert "Traceback" not in output
