"""``poradovnik demo --branches N``: a small city on one machine, its portal live."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from process_helpers import Process, poradovnik_args

from city.demo import BRANCHES

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(240)]

WAIT_S = 90.0
"""An upper bound for waiting on the demo (two offices and a city start on two cores)."""


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=WAIT_S) as answer:
        text: str = answer.read().decode()
        return text


def test_the_demo_runs_a_city_whose_portal_shows_every_branch_live(
    city_url: str, tmp_path: Path, processes: Callable[..., Process]
) -> None:
    env = {
        "DISPLAY": "",
        "WAYLAND_DISPLAY": "",
        "PORADOVNIK_CITY__DATABASE_URL": city_url,
    }
    demo = processes(
        poradovnik_args("demo", "--branches", "2"), name="city demo", env=env, cwd=tmp_path
    )
    sites = [site for site, _, _ in BRANCHES[:2]]
    portal = demo.wait_for_line(lambda line: "city portal at " in line, WAIT_S, what="the portal")
    found = re.search(r"city portal at (http://127\.0\.0\.1:\d+)/", portal)
    assert found is not None, portal
    city = found[1]
    admin = demo.wait_for_line(lambda line: "/admin: sign in as admin, password " in line, WAIT_S)
    assert admin.split("password ")[1].strip()
    for site in sites:
        demo.wait_for_line(
            lambda line, site=site: f"branch {site} (" in line and "portal at http" in line,
            WAIT_S,
            what=f"branch {site}'s portal",
        )
        # A branch's hub has started, its broker bridged its retained queues to the city.
        demo.wait_for_line(
            lambda line, site=site: f"city: hears branch {site} live" in line,
            WAIT_S,
            what=f"the city hearing branch {site}",
        )
    # The city's own live view follows the same messages: the API and the portal show
    # every branch with its services' queues (each look a request, until they do).
    deadline = time.monotonic() + WAIT_S
    live: dict[str, int] = {}
    while time.monotonic() < deadline and set(live) != set(sites):
        branches = json.loads(fetch(f"{city}/api/v1/branches?lang=en"))
        live = {b["site"]: len(b["services"]) for b in branches if b["services"]}
    assert set(live) == set(sites), f"the city shows live queues of {live}: {demo.describe()}"
    page = fetch(f"{city}/")
    for _, name, address in BRANCHES[:2]:
        assert name in page
        assert address in page
    assert "Miestne dane" in page  # the branches' services, live
    assert demo.stop(signal.SIGINT, timeout=WAIT_S) == 0, demo.describe()
    assert "Traceback" not in demo.output()
