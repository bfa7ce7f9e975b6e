"""The emulator's sense of time, injected so tests can move it instead of sleeping.

Everything that expires or refills (tokens, OAuth codes, result links, staged uploads, fault windows,
leaky buckets) and every stamp the emulator writes (`updatedAt` of changed products, webhook times) reads
one :class:`Clock`. `neanelu emulator` and `python -m shopify_emulator` run on :class:`SystemClock`; a
test passes a :class:`ManualClock` in `EmulatorConfig.clock` and calls `advance(seconds)` where it used
to sleep past a deadline. Waits that exist to let real work happen (a webhook's HTTP delivery, the
`slow` fault's delay) stay on real time: a manual clock would only make them lie.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (what stamps and expiry instants are written in)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (what durations and bucket refills measure)."""
        ...


class SystemClock:
    """Real time: the default."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """Time that moves only when told to. Both readings advance together, so a wall-clock expiry and a
    monotonic duration see the same step. Safe to advance from a test thread while the emulator's
    event loop and bulk writer threads read it."""

    def __init__(self, start: float | None = None) -> None:
        # Starts at the real present by default, so stamps stay after the generated catalog's horizon;
        # on a whole second, so a test's whole-second steps land exactly on a deadline.
        self._wall = float(int(time.time())) if start is None else start
        self._mono = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock advances forward only, not by {seconds} s")
        with self._lock:
            self._wall += seconds
            self._mono += seconds
