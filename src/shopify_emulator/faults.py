"""Switchable faults, per shop, set at run time through the control API.

A fault fires at most `count` times (None = until cleared) and only until `duration_s` has passed since it
was set. Each consumer asks `take(kind)` at the one place the fault applies, so a fault never leaks into an
unrelated path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from shopify_emulator.clock import Clock, SystemClock

FAULT_KINDS: dict[str, str] = {
    "http_429": "Admin API answers 429 with Retry-After (params: retry_after)",
    "throttled": "GraphQL answers THROTTLED whatever the bucket holds",
    "http_5xx": "Admin API answers a 5xx (params: status, default 503)",
    "slow": "Admin API answers after a delay (params: delay_s)",
    "reset_download": (
        "each file response is cut after N bytes (params: after_bytes); without a count, a"
        " download resumed with Range is cut again every N bytes"
    ),
    "truncated_jsonl": "the next bulk file loses the end of its last line",
    "bulk_failed": "the next bulk run FAILS with partial data (params: after_lines, error_code)",
    "bulk_timeout": "the next bulk run FAILS with errorCode TIMEOUT (params: after_lines of "
    "partial data, 0 for none)",
    "bulk_expired": "the next bulk run COMPLETES, then reads EXPIRED with url null",
    "null_url": "the next bulk run COMPLETES with url null",
    "expired_url": "bulk URLs are issued already expired",
    "operation_in_progress": "bulkOperationRunQuery answers OPERATION_IN_PROGRESS",
    "access_denied": "GraphQL answers ACCESS_DENIED; bulk runs FAIL with ACCESS_DENIED",
}


@dataclass(slots=True)
class Fault:
    kind: str
    count: int | None = None
    duration_s: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Share of the calls it may apply to that it fires on (None: every one), drawn from a
    # generator seeded per fault, so a drill that sets the same faults sees the same pattern.
    ratio: float | None = None
    seed: int = 0
    set_at: float = 0.0  # the board's monotonic reading when it took the fault
    fired: int = 0
    _draws: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.ratio is not None and not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"fault {self.kind}: ratio must be in (0, 1], not {self.ratio}")
        self._draws = random.Random(f"{self.kind}:{self.seed}")

    def live(self, now: float) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        return self.duration_s is None or now - self.set_at < self.duration_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "duration_s": self.duration_s,
            "params": self.params,
            "ratio": self.ratio,
            "fired": self.fired,
        }


class FaultBoard:
    def __init__(self, clock: Clock | None = None) -> None:
        self._faults: dict[str, Fault] = {}
        self._clock: Clock = clock or SystemClock()

    def set(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {fault.kind!r}; known: {', '.join(FAULT_KINDS)}")
        # A fault's window opens when the board takes it, on the board's clock.
        fault.set_at = self._clock.monotonic()
        self._faults[fault.kind] = fault

    def clear(self, kind: str | None = None) -> None:
        if kind is None:
            self._faults.clear()
        else:
            self._faults.pop(kind, None)

    def peek(self, kind: str) -> Fault | None:
        fault = self._faults.get(kind)
        if fault is None or not fault.live(self._clock.monotonic()):
            return None
        return fault

    def take(self, kind: str) -> Fault | None:
        """The live fault of this kind, counted as fired; None when it does not apply."""
        fault = self.peek(kind)
        if fault is None:
            return None
        if fault.ratio is not None and fault._draws.random() >= fault.ratio:
            return None
        fault.fired += 1
        return fault

    def listing(self) -> list[dict[str, Any]]:
        return [fault.as_dict() for fault in self._faults.values()]
