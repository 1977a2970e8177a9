"""The wait estimate, checked against what actually happens on a simulated office day."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from statistics import mean
from zoneinfo import ZoneInfo

from hub.engine import Engine
from hub.model import Counter, Service

TZ = ZoneInfo("Europe/Bratislava")
OPENING = datetime(2026, 3, 2, 8, 0, tzinfo=TZ).astimezone(UTC)


def simulate_day(seed: int) -> list[tuple[float, float]]:
    """Run one busy day (3 counters, a citizen every ~2.2 min, 3-9 min visits).

    Returns, for every ticket, the estimate it was given and the wait it had.
    """
    rng = random.Random(seed)
    engine = Engine(
        timezone=TZ,
        services=[Service("taxes", "A", {"sk": "Dane"}, default_service_time_s=360)],
        counters=[Counter(str(i), f"Okienko {i}", ("taxes",)) for i in (1, 2, 3)],
        day=OPENING.astimezone(TZ).date(),
    )
    for counter in engine.counters.copy():
        engine.apply(engine.resume(counter, OPENING))
    arrivals: list[datetime] = []
    t = OPENING
    while t < OPENING + timedelta(hours=6):
        t += timedelta(seconds=rng.expovariate(1 / 130))
        arrivals.append(t)
    busy_until: dict[str, datetime] = {}
    estimates: dict[str, float] = {}
    waits: list[tuple[float, float]] = []

    def press_next(counter: str, now: datetime) -> None:
        change = engine.call_next(counter, now)
        engine.apply(change)
        busy_until.pop(counter, None)
        if change.subject is not None:
            ticket = change.subject
            waits.append((estimates[ticket.id], (now - ticket.issued_at).total_seconds()))
            busy_until[counter] = now + timedelta(seconds=rng.uniform(180, 540))

    while arrivals or busy_until:
        next_free = min(busy_until.items(), key=lambda kv: kv[1], default=None)
        if next_free is not None and (not arrivals or next_free[1] <= arrivals[0]):
            press_next(next_free[0], next_free[1])
            continue
        now = arrivals.pop(0)
        change = engine.issue("taxes", now)
        engine.apply(change)
        assert change.subject is not None
        estimate = engine.estimate(change.subject)
        assert estimate.estimated_wait_s is not None
        estimates[change.subject.id] = estimate.estimated_wait_s
        idle = [c for c in engine.counters if c not in busy_until]
        if idle:
            press_next(idle[0], now)
    return waits


def test_estimates_track_real_waits_over_a_simulated_day() -> None:
    for seed in (1, 2, 3):
        pairs = simulate_day(seed)
        assert len(pairs) > 120
        actual = [w for _, w in pairs]
        error = mean(abs(e - w) for e, w in pairs)
        naive = mean(abs(mean(actual) - w) for w in actual)
        # Far better than telling everyone the day's average wait, and within a
        # few minutes of the truth on a day whose waits reach tens of minutes.
        assert error < 0.5 * naive, (seed, error, naive)
        assert error < 240, (seed, error)


def test_an_empty_office_promises_no_wait() -> None:
    engine = Engine(
        timezone=TZ,
        services=[Service("taxes", "A", {"sk": "Dane"})],
        counters=[Counter("1", "Okienko 1", ("taxes",))],
        day=OPENING.astimezone(TZ).date(),
    )
    engine.apply(engine.resume("1", OPENING))
    change = engine.issue("taxes", OPENING)
    engine.apply(change)
    assert change.subject is not None
    estimate = engine.estimate(change.subject)
    assert (estimate.people_ahead, estimate.estimated_wait_s) == (0, 0)
