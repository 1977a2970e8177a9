"""How long to wait before the next attempt to reach the broker.

After a broker restart or a network outage every device of the office tries to
reconnect. With plain exponential backoff they would all retry in the same
instants; *full jitter* (a delay drawn uniformly between zero and the capped
exponential bound) spreads them out, so the broker is not stormed when it comes
back. See https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]

_MAX_EXPONENT = 60
"""Above this the bound is far past any sensible cap; it keeps ``2**n`` a small float."""


class Backoff:
    """Capped exponential backoff with full jitter: the delays between reconnect attempts.

    The *n*-th delay (counted from 0 since the last :meth:`reset`) is drawn uniformly
    from ``[0, min(cap_s, base_s * 2**n)]``. Pure and not thread-safe: one owner
    (the network thread) draws the delays.
    """

    def __init__(
        self, base_s: float = 0.5, cap_s: float = 30.0, *, rng: random.Random | None = None
    ) -> None:
        if base_s <= 0:
            raise ValueError(f"base_s must be positive, not {base_s!r}")
        if cap_s < base_s:
            raise ValueError(f"cap_s ({cap_s!r}) must be at least base_s ({base_s!r})")
        self.base_s = base_s
        """The bound of the first delay."""
        self.cap_s = cap_s
        """No delay is ever longer than this."""
        self._rng = rng if rng is not None else random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """How many delays were drawn since the last :meth:`reset`."""
        return self._attempt

    def bound(self, attempt: int) -> float:
        """The upper bound of the delay before attempt number ``attempt`` (from 0)."""
        return min(self.cap_s, self.base_s * 2.0 ** min(attempt, _MAX_EXPONENT))

    def next_delay(self) -> float:
        """Draw the next delay in seconds and count the attempt."""
        delay = self._rng.uniform(0.0, self.bound(self._attempt))
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from the shortest bound (after a successful connection)."""
        self._attempt = 0
